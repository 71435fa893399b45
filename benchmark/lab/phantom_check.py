"""Generate the default phantom, time it, and draw a montage to look at (not a test).

Usage: OMP_NUM_THREADS=2 python -m benchmark.lab.phantom_check --cache /tmp/phantom_cache --png /tmp/phantom_check.png
Prints the generation time (only meaningful on a quiet machine) and per-subject tumour facts; the PNG
shows, per subject, the axial slice with the largest tumour area in T1, T1ce, T2 and FLAIR with the
tumour outline (yellow: whole tumour, red: enhancing, cyan: necrotic core), and the label map.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np

from benchmark.data.phantom import MODALITIES
from benchmark.data.phantom_files import ensure_phantom


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--png", type=Path, default=Path("/tmp/phantom_check.png"))
    parser.add_argument("--subjects", type=int, default=24)
    parser.add_argument("--voxel-size-mm", type=float, default=1.5)
    parser.add_argument("--show", type=int, default=6, help="subjects drawn in the montage")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.perf_counter()
    root = ensure_phantom(args.cache, n_subjects=args.subjects, voxel_size_mm=args.voxel_size_mm, max_tumours=2,
                          tumour_free_fraction=0.2, seed=args.seed)
    print(f"{root}: {time.perf_counter() - start:.1f} s for {args.subjects} subjects (incl. template load)")
    manifest = json.loads((root / "phantom.json").read_text())
    for case, facts in manifest["subjects"].items():
        whole = [round(t["volumes_ml"]["whole"], 1) for t in facts["tumours"]]
        print(case, facts["n_tumours"], "tumours, whole-tumour ml", whole, "labels ml", facts["label_volumes_ml"])

    cases = sorted(manifest["subjects"])[: args.show]
    fig, axes = plt.subplots(len(cases), 5, figsize=(15, 3.2 * len(cases)), squeeze=False)
    for row, case in zip(axes, cases, strict=True):
        seg = np.asarray(nib.load(root / case / f"{case}_seg.nii.gz").dataobj)
        z = int(np.argmax((seg > 0).sum((0, 1)))) if seg.any() else seg.shape[2] // 2 + 10
        for ax, modality in zip(row, MODALITIES, strict=False):
            image = np.asarray(nib.load(root / case / f"{case}_{modality}.nii.gz").dataobj)[:, :, z].T
            ax.imshow(image, cmap="gray", origin="lower", vmin=0, vmax=np.percentile(image[image > 0], 99.5))
            for value, colour in (((1, 2, 4), "yellow"), ((1, 4), "red"), ((1,), "cyan")):
                region = np.isin(seg[:, :, z], value).T
                if region.any():
                    ax.contour(region, levels=[0.5], colors=colour, linewidths=0.5)
            ax.set_title(f"{case} {modality} z={z}", fontsize=8)
            ax.axis("off")
        row[4].imshow(seg[:, :, z].T, origin="lower", vmin=0, vmax=4)
        row[4].axis("off")
    fig.tight_layout()
    fig.savefig(args.png, dpi=70)
    print("montage:", args.png)


if __name__ == "__main__":
    main()
