"""Calibrate the TOF renderer against a real TOF-MRA crop: the same three measurements (`measure`) on the
real crop, on phantom subjects cropped around their Circle of Willis and on real Circle-of-Willis masks
rendered with the renderer; a table (CSV and Markdown), a side-by-side figure (axial slice and MIP) and a
preview of one phantom's whole slab.

    python -m benchmark.data.vessels.calibrate --out calibration/

Each rendered figure should lie within a factor `TOLERANCE` of the real one.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from benchmark.data.vessels.anatomy import CIRCLE_OF_WILLIS_MNI
from benchmark.data.vessels.masks import read_tof
from benchmark.data.vessels.measure import measure_tof
from benchmark.errors import BenchmarkError, DataError, report_error

TOLERANCE = 1.5
FIGURES = ("contrast", "noise", "edge_width_mm")
SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "vessels"
REAL_CROP = SHARED / "topcow-tof-crop" / "example_input_dummy_mra.mha"
COW_MASKS = SHARED / "topcow-eval-roi"
CROP_HALF_MM = np.array([21.0, 18.0, 10.0])  # the real crop's extent (41.6 x 36.5 x 20.4 mm), halved
TOPCOW_VESSELS = {value: int(value > 0) for value in range(16)}


def phantom_crops(n_subjects: int, seed: int, out: Path) -> list[tuple[str, np.ndarray, tuple[float, ...]]]:
    """Phantom subjects cropped like the real crop around their Circle of Willis (and the first one's whole
    slab previewed under `out`)."""
    from benchmark.data.vessels.phantom import render_phantom_subject
    from benchmark.data.vessels.sources import VesselPhantom

    settings = VesselPhantom(n_subjects=max(n_subjects, 3), seed=seed)
    _, affine = settings.grid()
    spacing = tuple(float(s) for s in np.diag(affine)[:3])
    low = np.maximum(np.round((CIRCLE_OF_WILLIS_MNI - CROP_HALF_MM - affine[:3, 3]) / spacing).astype(int), 0)
    high = np.round((CIRCLE_OF_WILLIS_MNI + CROP_HALF_MM - affine[:3, 3]) / spacing).astype(int)
    crops = []
    for index in range(n_subjects):
        tof = render_phantom_subject(settings, index).tof
        crops.append((f"phantom {index}", tof[low[0]:high[0], low[1]:high[1], low[2]:high[2]], spacing))
        if index == 0:
            write_slab_preview(tof, spacing, out)
    return crops


def write_slab_preview(tof: np.ndarray, spacing: tuple[float, ...], out: Path) -> None:
    """phantom_slab.png: one phantom subject's whole slab as radiologists read TOF: axial MIP (anterior up)
    and coronal MIP (superior up), beside the middle axial slice."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = float(np.percentile(tof, 99.95))
    views = [("axial MIP", np.rot90(tof.max(axis=2)), spacing[1] / spacing[0]),
             ("axial slice", np.rot90(tof[:, :, tof.shape[2] // 2]), spacing[1] / spacing[0]),
             ("coronal MIP", np.rot90(tof.max(axis=1)), spacing[2] / spacing[0])]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.6), gridspec_kw={"width_ratios": [1, 1, 1.1]})
    for axis, (title, plane, aspect) in zip(axes, views, strict=True):
        axis.imshow(plane, cmap="gray", vmin=0, vmax=top, aspect=aspect)
        axis.set_title(f"vessel phantom 0: {title}", fontsize=9)
        axis.axis("off")
    fig.tight_layout()
    fig.savefig(out / "phantom_slab.png", dpi=100)
    plt.close(fig)


def rendered_masks(folder: Path, seed: int) -> list[tuple[str, np.ndarray, tuple[float, ...]]]:
    """Every Circle-of-Willis mask in `folder` rendered on its own grid."""
    from benchmark.data.vessels.real import render_mask_file

    out = []
    for index, path in enumerate(sorted(folder.glob("*.nii.gz"))):
        subject = render_mask_file(path, TOPCOW_VESSELS, np.random.default_rng([seed, index]))
        spacing = tuple(float(s) for s in np.linalg.norm(subject.affine[:3, :3], axis=0))
        out.append((path.name.removesuffix(".nii.gz"), subject.tof, spacing))
    return out


def table_rows(real: dict[str, float], groups: dict[str, list[dict[str, float]]]) -> list[dict[str, str]]:
    """One row per figure and rendered group: real value, median rendered value, their ratio, within tolerance."""
    rows = []
    for figure in FIGURES:
        for group, measured in groups.items():
            values = [m[figure] for m in measured]
            median = float(np.nanmedian(values))
            ratio = median / real[figure]
            rows.append({"figure": figure, "rendered": group, "n": str(len(values)),
                         "real": f"{real[figure]:.3f}", "rendered_median": f"{median:.3f}",
                         "rendered_range": f"{min(values):.3f}-{max(values):.3f}", "ratio": f"{ratio:.2f}",
                         f"within_x{TOLERANCE:g}": str(1 / TOLERANCE <= ratio <= TOLERANCE).lower()})
    return rows


def write_table(rows: list[dict[str, str]], out: Path) -> None:
    with (out / "calibration.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    header = "| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]) + "\n"
    body = "".join("| " + " | ".join(row.values()) + " |\n" for row in rows)
    (out / "calibration.md").write_text(header + body)


def write_figure(images: list[tuple[str, np.ndarray, tuple[float, ...]]], out: Path) -> None:
    """Rows: each image; columns: the middle axial slice and the axial MIP (anterior up, patient left on the
    right), each scaled to its own 99.9th percentile."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(images), 2, figsize=(6.4, 3.0 * len(images)), squeeze=False)
    for row, (name, volume, spacing) in enumerate(images):
        top = float(np.percentile(volume, 99.9))
        aspect = spacing[1] / spacing[0]
        for col, (title, plane) in enumerate((("axial slice", volume[:, :, volume.shape[2] // 2]),
                                               ("axial MIP", volume.max(axis=2)))):
            axes[row, col].imshow(np.rot90(plane), cmap="gray", vmin=0, vmax=top, aspect=aspect)
            axes[row, col].set_title(f"{name}: {title}", fontsize=9)
            axes[row, col].axis("off")
    fig.tight_layout()
    fig.savefig(out / "calibration.png", dpi=110)
    plt.close(fig)


def calibrate(out: Path, real_path: Path = REAL_CROP, masks: Path | None = COW_MASKS, n_phantom: int = 3,
              seed: int = 0) -> list[dict[str, str]]:
    """Measure, write calibration.csv / .md / .png under `out`, and return the table's rows."""
    if not Path(real_path).is_file():
        raise DataError(f"{real_path}: the real TOF crop is absent; pass --real /path/to/a/TOF/crop (.mha or .nii.gz, "
                        "a few cm around the Circle of Willis).")
    out.mkdir(parents=True, exist_ok=True)
    real = read_tof(Path(real_path))
    real_figures = measure_tof(real.data, real.spacing)
    phantom = phantom_crops(n_phantom, seed, out)
    groups = {"phantom": [measure_tof(v, s) for _, v, s in phantom]}
    shown = [("real TOF crop", real.data, real.spacing), phantom[0]]
    if masks is not None and Path(masks).is_dir():
        rendered = rendered_masks(Path(masks), seed)
        if rendered:
            groups["TopCoW masks"] = [measure_tof(v, s) for _, v, s in rendered]
            shown.append((f"rendered {rendered[0][0]}", rendered[0][1], rendered[0][2]))
    rows = table_rows(real_figures, groups)
    write_table(rows, out)
    write_figure(shown, out)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for calibration.csv, .md and .png")
    parser.add_argument("--real", type=Path, default=REAL_CROP, help="the real TOF crop (.mha or NIfTI)")
    parser.add_argument("--masks", type=Path, default=COW_MASKS, help="folder of Circle-of-Willis masks to render")
    parser.add_argument("--phantom-subjects", type=int, default=3, help="phantom subjects measured (1-20)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        rows = calibrate(args.out, args.real, args.masks, int(np.clip(args.phantom_subjects, 1, 20)), args.seed)
    except BenchmarkError as error:
        report_error(error)
        return 2
    print((args.out / "calibration.md").read_text())
    return 0 if all(row[f"within_x{TOLERANCE:g}"] == "true" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
