"""report.html: one self-contained file (figures inlined as base64 PNG, CSS inline, no scripts, no
external links), so it opens offline in any browser and can be mailed as it is."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from reports.document import Block, Bullets, Heading, Image, Paragraph, Table

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1200px;
       margin: 2em auto; padding: 0 1.5em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { border-bottom: 1px solid #eee; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0 1.6em; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; }
th.text, td.text { text-align: left; }
td.text:last-child { white-space: normal; min-width: 16em; }
div.scroll { overflow-x: auto; }
tr:nth-child(even) td { background: #fafafa; }
caption { caption-side: top; text-align: left; font-style: italic; padding-bottom: .3em; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; }
code { background: #f4f4f4; padding: 0 3px; }
td.v-yes { background: #c8e6c9 !important; color: #1b5e20; font-weight: 600; text-align: center; }
td.v-no { background: #ffcdd2 !important; color: #b71c1c; font-weight: 600; text-align: center; }
td.v-inconclusive { background: #fff3c4 !important; color: #7a5c00; text-align: center; }
"""


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
    """A scrollable table; text columns left-aligned and wrapping, number columns right-aligned."""
    frame = table.frame
    if frame.empty:
        return f"<p><em>{html.escape(table.caption)}: none.</em></p>"
    text = [not frame[column].map(_is_number).all() for column in frame.columns]
    attrs = [' class="text"' if is_text else "" for is_text in text]
    head = "".join(f"<th{a}>{html.escape(str(c))}</th>" for c, a in zip(frame.columns, attrs, strict=True))
    def cell(value: str, attr: str) -> str:
        if table.verdicts and value in ("yes", "no", "inconclusive"):
            attr = f' class="v-{value}"'
        return f"<td{attr}>{html.escape(value)}</td>"

    rows = "".join(
        "<tr>" + "".join(cell(v, a) for v, a in zip(row, attrs, strict=True)) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    caption = f"<caption>{html.escape(table.caption)}</caption>" if table.caption else ""
    return f'<div class="scroll"><table>{caption}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'


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
