"""The report's copy-detection section: which detector finds copies of training images, image by image.

Shown when the study wrote `copy_detection.csv` (`study.copy_detection=true`; the table of
`benchmark.score.copy_detection`): AUC / AP per detector and near-copy kind at 5 / 15 / 30 % duplication,
and the figure `figures/copy_detection.png`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from reports.document import Block, Heading, Image, Paragraph, format_table, insert_before_examples


def draw_figure(table: pd.DataFrame, path: Path) -> None:
    """AUC and AP against the duplication rate, one panel per near-copy kind, one line per detector."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(dict.fromkeys(table["near_copy"]))
    figure, axes = plt.subplots(2, len(kinds), figsize=(3.2 * len(kinds), 5.6), sharex=True, sharey=True,
                                squeeze=False)
    for column, kind in enumerate(kinds):
        for row, measure in enumerate(("auc", "ap")):
            axis = axes[row][column]
            for detector, rows in table[table["near_copy"] == kind].groupby("detector", sort=False):
                axis.plot(100 * rows["rate"], rows[measure], marker="o", label=detector)
            axis.set_ylim(0, 1.02)
            axis.set_title(f"{kind}: {measure.upper()}", fontsize=10)
            axis.set_xlabel("duplication rate (%)" if row else "")
    axes[0][0].legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def pivot(table: pd.DataFrame) -> pd.DataFrame:
    """"AUC / AP" per detector (rows) and near-copy kind x rate (columns)."""
    cells = table.assign(column=[f"{k} {100 * r:.0f} %" for k, r in zip(table["near_copy"], table["rate"],
                                                                          strict=True)],
                         value=[f"{a:.2f} / {p:.2f}" for a, p in zip(table["auc"], table["ap"], strict=True)])
    wide = cells.pivot(index="detector", columns="column", values="value")
    order = list(dict.fromkeys(cells["column"]))
    return wide.reindex(index=list(dict.fromkeys(table["detector"])), columns=order).reset_index()


def copy_detection_section(output_dir: Path) -> list[Block]:
    """The section's blocks, or none when the study wrote no copy_detection.csv."""
    path = Path(output_dir) / "copy_detection.csv"
    if not path.is_file():
        return []
    table = pd.read_csv(path)
    figure = Path(output_dir) / "figures" / "copy_detection.png"
    figure.parent.mkdir(parents=True, exist_ok=True)
    draw_figure(table, figure)
    return [
        Heading("Copy detection: which detector finds copies, image by image"),
        Paragraph("Each memorisation set replaces 5, 15 or 30 % of the clean held-out images by exact copies or "
                  "near-copies (noise, rotation, blend, blur) of training images; every detector scores every "
                  "image (nearest training image in pixels, SSIM, feature spaces; authenticity's radius ratio) and "
                  "the table gives the per-image AUC / average precision of telling the planted images apart. "
                  "Deo et al.'s follow-up (Mem-index) reports the same measures at the same rates on other data."),
        format_table(pivot(table), "Copy detection: AUC / AP per detector (rows) and near-copy kind at each rate"),
        Image(figure.relative_to(output_dir).as_posix(), "Copy detection: AUC (top) and AP (bottom) against the "
              "duplication rate, one panel per near-copy kind, one line per detector."),
    ]


def with_copy_detection_section(blocks: list[Block], output_dir: Path) -> list[Block]:
    """`blocks` with the section inserted before the Examples / Failed cells headings."""
    section = copy_detection_section(output_dir)
    return insert_before_examples(blocks, section)
