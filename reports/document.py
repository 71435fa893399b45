"""The report as a list of plain blocks, rendered once to Markdown and once to self-contained HTML."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    frame: pd.DataFrame  # already formatted: every cell a string
    caption: str = ""
    verdicts: bool = False  # cells reading yes / no / inconclusive are colour-coded (HTML) or marked (Markdown)


VERDICT_MARKS = {"yes": "🟢 yes", "no": "🔴 no", "inconclusive": "🟡 inconclusive"}


@dataclass
class Image:
    path: str  # relative to the output folder, e.g. figures/severity_effects.png
    caption: str


Block = Heading | Paragraph | Bullets | Table | Image


def format_table(frame: pd.DataFrame, caption: str = "", index: bool = False) -> Table:
    """Numbers to short strings (3 significant digits, p-values in scientific form), booleans to yes/no."""
    frame = frame.reset_index() if index else frame.reset_index(drop=True)
    text = pd.DataFrame({column: [_cell(column, value) for value in frame[column]] for column in frame.columns})
    return Table(text, caption)


INTEGER_COLUMNS = frozenset({"rank", "rank_lo", "rank_hi", "n_splits", "n_subjects", "separates_at_n", "largest_n",
                             "n_cells", "severity", "seed", "first_detected", "n_levels", "n_seeds"})


def _cell(column: str, value: object) -> str:
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()  # numpy scalars to Python
    if value is None or value is pd.NA:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        if column in INTEGER_COLUMNS and value.is_integer():
            return str(int(value))
        return f"{value:.2g}" if column.endswith("_p") else f"{value:.3g}"
    return str(value)


def insert_before_examples(blocks: list[Block], section: list[Block]) -> list[Block]:
    """`blocks` with `section` inserted before the Examples / Failed cells headings (at the end without them)."""
    anchor = next((i for i, b in enumerate(blocks)
                   if isinstance(b, Heading) and b.text in ("Examples", "Failed cells")), len(blocks))
    return [*blocks[:anchor], *section, *blocks[anchor:]]
