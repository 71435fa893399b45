"""report.md: the report's blocks as GitHub-flavoured Markdown, figures linked from figures/."""

from __future__ import annotations

from reports.document import VERDICT_MARKS, Block, Bullets, Heading, Image, Paragraph, Table


def render_markdown(blocks: list[Block]) -> str:
    """The blocks as Markdown text."""
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            parts.append(block.text)
        elif isinstance(block, Bullets):
            parts.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Table):
            parts.append(_table(block))
        elif isinstance(block, Image):
            parts.append(f"![{_escape(block.caption)}]({block.path})\n\n*{block.caption}*")
    return "\n\n".join(parts) + "\n"


def _table(table: Table) -> str:
    frame = table.frame
    if frame.empty:
        return f"*{table.caption}: none.*" if table.caption else "*none*"
    header = "| " + " | ".join(_escape(str(c)) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    marks = VERDICT_MARKS if table.verdicts else {}
    rows = ["| " + " | ".join(_escape(marks.get(v, v)) for v in row) + " |" for row in frame.itertuples(index=False)]
    caption = f"*{table.caption}*\n\n" if table.caption else ""
    return caption + "\n".join([header, rule, *rows])


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
