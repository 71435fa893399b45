"""report.html: one self-contained file (figures inlined as base64 PNG, CSS inline, no scripts, no
external links), so it opens offline in any browser and can be mailed as it is."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from reports.document import Block, Bullets, Heading, Image, Paragraph, Table

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1200px;
       margin: 2em auto; padding: 0 1.5em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { border-bottom: 1px solid #eee; padding-bottom: .2em; margin-top: 2em; }
div.scroll { overflow-x: auto; max-width: 100%; margin: .8em 0 1.6em; }
table { border-collapse: collapse; font-size: 0.8em; line-height: 1.3; }
th, td { border: 1px solid #ddd; padding: 3px 6px; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; white-space: normal; vertical-align: bottom; }
th.text, td.text { text-align: left; }
td.text { white-space: normal; }
tr:nth-child(even) td { background: #fafafa; }
caption { caption-side: top; text-align: left; font-style: italic; padding-bottom: .3em; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; }
code { background: #f4f4f4; padding: 0 3px; overflow-wrap: anywhere; }
td.v-yes { background: #c8e6c9 !important; color: #1b5e20; font-weight: 600; text-align: center; }
td.v-no { background: #ffcdd2 !important; color: #b71c1c; font-weight: 600; text-align: center; }
td.v-inconclusive { background: #fff3c4 !important; color: #7a5c00; text-align: center; }
@media (max-width: 1000px) {
  body { padding: 0 .6em; margin: 1em auto; }
  table { font-size: 0.6em; }
  th, td { padding: 2px 1px; }
}
"""


TEXT_CLASS = ' class="text"'


def render_html(blocks: list[Block], output_dir: Path, title: str) -> str:
    """The blocks as one HTML page; images are read from `output_dir` and embedded."""
    body = [_block(block, output_dir) for block in blocks]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _block(block: Block, output_dir: Path) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{html.escape(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        return f"<p>{_inline(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Image):
        data = base64.b64encode((output_dir / block.path).read_bytes()).decode()
        caption = html.escape(block.caption)
        return (f'<figure><img alt="{caption}" src="data:image/png;base64,{data}">'
                f"<figcaption>{caption}</figcaption></figure>")
    raise TypeError(f"unknown report block {block!r}")


def _table(table: Table) -> str:
    """A table in a box that scrolls sideways only where even wrapped it is wider than the page: headers
    and text columns wrap (also after `_` and `/`), number columns stay on one line, right-aligned."""
    frame = table.frame
    if frame.empty:
        return f"<p><em>{html.escape(table.caption)}: none.</em></p>"
    text = [not frame[column].map(_is_number).all() for column in frame.columns]
    attrs = [TEXT_CLASS if is_text else "" for is_text in text]
    head = "".join(f"<th{a}>{_breakable(str(c))}</th>" for c, a in zip(frame.columns, attrs, strict=True))

    def cell(value: str, attr: str) -> str:
        if table.verdicts and value in ("yes", "no", "inconclusive"):
            attr = f' class="v-{value}"'
        return f"<td{attr}>{_breakable(value) if attr == TEXT_CLASS else html.escape(value)}</td>"

    rows = "".join(
        "<tr>" + "".join(cell(v, a) for v, a in zip(row, attrs, strict=True)) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    caption = f"<caption>{html.escape(table.caption)}</caption>" if table.caption else ""
    return f'<div class="scroll"><table>{caption}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'


def _breakable(text: str) -> str:
    """Escaped text with line-break opportunities after `_` and `/`, so long identifiers
    (robustness/dice_WT, tumour_remove_keep) wrap inside narrow columns instead of widening the table."""
    return re.sub(r"([_/])", r"\1<wbr>", html.escape(text))


def _is_number(cell: str) -> bool:
    if cell in ("–", "∞", "−∞", "yes", "no"):
        return True
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _inline(text: str) -> str:
    """Escape, then render `code` spans (the only inline markup the report's paragraphs use)."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts))
