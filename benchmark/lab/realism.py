"""`python -m benchmark.lab.realism`: does a localised tumour edit look like real MRI? Numbers per edit and severity.

For every tumour edit (conf/perturbation/tumour_*.yaml, `label: follow` variants) at severities 1..5, on 2D
slices, in the region where tumour became "healthy" tissue (F = lesion before and not after):
- `wasserstein`: 1-D Wasserstein distance between F's intensities and the same slice's healthy tissue in the
  ring `margin`..`margin + max(8, r_F)` voxels from the lesions (before and after; the edits leave it alone),
  in units of that ring's standard deviation; median over slices.
- `local_std_p10`, `local_std_p90`: ratio of the median 5x5 local standard deviation inside F (voxels more
  than CLEAR = 4 from tumour after the edit: windows hold fill, not the tumour's soft edge) to the ring's,
  10th / 90th percentile over slices (target p10 >= 0.7: no flat fill). F's voxels 3 or more inside the brain.
- `seam_p90`: mean gradient magnitude on F's border (both sides, one voxel; 3 or more inside the brain, more
  than CLEAR from tumour after the edit) over the ring's, 90th percentile over slices (target <= 1.8).
- `outside_brain`: edited voxels (image or label) outside the brain mask, summed over slices (target 0).
- `auc`: a logistic regression on statistics of 32x32 patches (mean, std, percentiles, gradient, local std;
  tumour after the edit and non-brain masked out) telling patches centred in F from healthy patches far from
  any lesion (> 20 voxels) at the same depth below the brain's edge as the F patch (within 2 voxels),
  cross-validated by patient (GroupKFold); 0.5 = indistinguishable. `auc_far`: the same against healthy
  patches deep in the brain (8 or more voxels from its edge), the first definition: it also separates a
  cortical site from deep white matter, edit or not.
Slices with fewer than 20 filled voxels are left out of the F-based numbers (`slices` says how many count).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from scipy.ndimage import binary_dilation, binary_erosion, distance_transform_edt, uniform_filter
from scipy.stats import wasserstein_distance

from benchmark.data.imageset import ImageSet
from perturbations.config import build_one

CONF = Path(__file__).resolve().parent.parent / "conf" / "perturbation"
EDITS = ("tumour_remove", "tumour_shrink", "tumour_grow", "tumour_move", "tumour_deform")
PATCH = 32
CLEAR = 4  # voxels from tumour after the edit left out of F's numbers: 5x5 window + the pasted tumour's edge


def local_std(image: np.ndarray, size: int = 5) -> np.ndarray:
    """Standard deviation in a size x size window around each pixel."""
    mean = uniform_filter(image, size)
    return np.sqrt(np.clip(uniform_filter(image * image, size) - mean * mean, 0, None))


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    return np.hypot(*np.gradient(image))


def slice_regions(before: np.ndarray, after: np.ndarray, brain: np.ndarray, margin: int):
    """(filled F, healthy ring H, F's border band, interior brain) boolean maps of one slice."""
    filled = before & ~after
    inner = binary_erosion(brain, iterations=3)
    distance = distance_transform_edt(~(before | after))
    radius = max(8.0, float(np.sqrt(filled.sum() / np.pi)))
    ring = inner & ~(before | after) & (distance > margin) & (distance <= margin + radius)
    border = (binary_dilation(filled) & ~binary_erosion(filled)) & inner
    border &= distance_transform_edt(~after) > CLEAR if after.any() else border
    return filled, ring, border, inner


def slice_numbers(image: np.ndarray, clean_label: np.ndarray, label: np.ndarray, brain: np.ndarray,
                  margin: int) -> dict[str, float] | None:
    """The F-based numbers of one edited slice, or None when too little was filled (or no healthy ring)."""
    filled, ring, border, inner = slice_regions(clean_label > 0, label > 0, brain, margin)
    core = filled & inner & (distance_transform_edt(label == 0) > CLEAR)  # windows clear of the tumour's soft edge
    if core.sum() < 20 or ring.sum() < 20:
        return None
    spread = local_std(image)
    gradient = gradient_magnitude(image)
    scale = max(float(image[ring].std()), 1e-6)
    return {
        "wasserstein": wasserstein_distance(image[core], image[ring]) / scale,
        "local_std": float(np.median(spread[core]) / max(np.median(spread[ring]), 1e-6)),
        "seam": float(gradient[border].mean() / max(gradient[ring].mean(), 1e-6)) if border.any() else np.nan,
    }


def patch_features(image: np.ndarray, valid: np.ndarray, centre: np.ndarray) -> np.ndarray | None:
    """Statistics of the valid pixels of the 32x32 patch centred at `centre` (None when < 100 are valid)."""
    lo = np.clip(centre - PATCH // 2, 0, np.array(image.shape) - PATCH)
    window = (slice(lo[0], lo[0] + PATCH), slice(lo[1], lo[1] + PATCH))
    keep = valid[window]
    if keep.sum() < 100:
        return None
    values = image[window][keep]
    return np.array([values.mean(), values.std(), *np.percentile(values, [10, 50, 90]),
                     gradient_magnitude(image)[window][keep].mean(), local_std(image)[window][keep].mean()])


def item_patches(image, clean_label, label, brain, rng, count: int = 4, matched_rng=None):
    """([features of patches centred in F], [features of healthy patches far from any lesion, deep in the brain],
    [features of healthy patches far from any lesion at F's patches' depths]). The depth-matched controls lie
    as far from the brain's edge as the filled patches (within 2 voxels; the nearest depth when none does): a
    tumour's site is often cortical, and FLAIR cortex is brighter than deep white matter, so deep controls let a
    detector find the site rather than the edit."""
    before, after = clean_label > 0, label > 0
    valid = binary_erosion(brain, iterations=2) & (distance_transform_edt(~after) > 2 if after.any() else True)
    away = distance_transform_edt(~(before | after)) > PATCH // 2 + 4
    far = binary_erosion(brain, iterations=8) & away
    out, centres = [], []
    for region in (before & ~after & binary_erosion(brain, iterations=3), far):
        points = np.argwhere(region)
        picks = points[rng.choice(len(points), size=min(count, len(points)), replace=False)] if len(points) else []
        centres.append(picks)
        out.append([f for f in (patch_features(image, valid, p) for p in picks) if f is not None])
    pool = binary_erosion(brain, iterations=3) & away
    controls = matched_centres(centres[0], pool, distance_transform_edt(brain), matched_rng)
    return out[0], out[1], [f for f in (patch_features(image, valid, p) for p in controls) if f is not None]


def matched_centres(centres, pool: np.ndarray, depth: np.ndarray, rng=None) -> list[np.ndarray]:
    """For each centre, a random voxel of `pool` whose `depth` is within 2 voxels of the centre's (the nearest
    depth when none is); [] when the pool is empty."""
    points = np.argwhere(pool)
    rng = np.random.default_rng(0) if rng is None else rng
    out = []
    for centre in centres if len(points) else []:
        gap = np.abs(depth[tuple(points.T)] - depth[tuple(centre)])
        near = points[gap <= max(2.0, float(gap.min()))]
        out.append(near[rng.integers(len(near))])
    return out


def detector_auc(features: list[np.ndarray], targets: list[int], groups: list[str]) -> float:
    """Out-of-fold ROC AUC of a logistic regression, folds by patient (GroupKFold, up to 5); a fold whose training
    part holds one class predicts its share. NaN with < 2 patients or one class."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y, groups_array = np.array(features), np.array(targets), np.array(groups)
    if len(set(groups)) < 2 or len(set(targets)) < 2:
        return float("nan")
    scores = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=min(5, len(set(groups)))).split(x, y, groups_array):
        if len(set(y[train])) < 2:
            scores[test] = y[train].mean()
            continue
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x[train], y[train])
        scores[test] = model.predict_proba(x[test])[:, 1]
    return float(roc_auc_score(y, scores))


def measure(edit, clean: ImageSet, severity: int, seed: int = 0) -> dict[str, float]:
    """Every realism number of one edit at one severity on a 2D ImageSet (see the module docstring)."""
    start = time.perf_counter()
    out = edit.apply(clean, severity, seed=seed)
    seconds = time.perf_counter() - start
    rows, outside = [], 0
    patches = {"far": ([], [], []), "matched": ([], [], [])}  # (features, targets, groups) per control kind
    rng, matched_rng = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    for i in range(len(clean)):
        image, before = out.data.images[i, 0].numpy().astype(np.float64), clean.labels[i, 0].numpy()
        label, brain = out.data.labels[i, 0].numpy(), clean.brain_masks[i, 0].numpy()
        changed = (out.data.images[i, 0] != clean.images[i, 0]).numpy() | (label != before)
        outside += int((changed & ~brain).sum())
        numbers = slice_numbers(image, before, label, brain, edit.margin)
        if numbers is None:
            continue
        rows.append(numbers)
        filled, far, matched = item_patches(image, before, label, brain, rng, matched_rng=matched_rng)
        for kind, controls in (("far", far), ("matched", matched)):
            features, targets, groups = patches[kind]
            for value, found in ((1, filled), (0, controls)):
                features += found
                targets += [value] * len(found)
                groups += [clean.subject_ids[i]] * len(found)
    column = {k: np.array([r[k] for r in rows], dtype=float) for k in ("wasserstein", "local_std", "seam")}
    quantile = lambda k, q: float(np.nanquantile(column[k], q)) if len(rows) else float("nan")  # noqa: E731
    return {"slices": len(rows), "wasserstein": quantile("wasserstein", 0.5),
            "local_std_p10": quantile("local_std", 0.1), "local_std_p90": quantile("local_std", 0.9),
            "seam_p90": quantile("seam", 0.9), "outside_brain": outside,
            "auc": detector_auc(*patches["matched"]), "auc_far": detector_auc(*patches["far"]), "seconds": seconds}


def load_edit(name: str):
    """The edit of conf/perturbation/<name>.yaml."""
    return build_one(name, OmegaConf.load(CONF / f"{name}.yaml"))


def phantom_test_set(seed: int = 0) -> ImageSet:
    """The default study's phantom test split (2D 128x128 FLAIR slices), as `python -m benchmark` prepares it."""
    from hydra import compose, initialize_config_dir

    from benchmark.data.prepare import prepare_data

    with initialize_config_dir(str(CONF.parent), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"seed={seed}"])
    return prepare_data(cfg.data, seed=seed).test


def realism_table(datasets: dict[str, ImageSet], edits: tuple[str, ...], severities=(1, 2, 3, 4, 5)) -> list[dict]:
    """One row per (data set, edit, severity)."""
    rows = []
    for data_name, data in datasets.items():
        for name in edits:
            edit = load_edit(name)
            for severity in severities:
                rows.append({"data": data_name, "edit": name, "severity": severity, **measure(edit, data, severity)})
                print(format_row(rows[-1]), flush=True)
    return rows


COLUMNS = ("data", "edit", "severity", "slices", "wasserstein", "local_std_p10", "local_std_p90", "seam_p90",
           "outside_brain", "auc", "auc_far", "seconds")


def format_row(row: dict) -> str:
    cells = [f"{row[c]:.2f}" if isinstance(row[c], float) else str(row[c]) for c in COLUMNS]
    return "| " + " | ".join(cells) + " |"


def markdown(rows: list[dict]) -> str:
    header = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    return header + "\n".join(format_row(r) for r in rows) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", default="../shared/data/brats2015-deepmedic", help="DeepMedic-layout folder")
    parser.add_argument("--data", nargs="+", default=["real", "phantom"], choices=["real", "phantom"])
    parser.add_argument("--edits", nargs="+", default=list(EDITS))
    parser.add_argument("--out", default="reports/realism.md")
    args = parser.parse_args(argv)
    datasets = {}
    if "real" in args.data:
        from perturbations.real_patients import real_tumour_slices

        datasets["real"] = real_tumour_slices(Path(args.real))
    if "phantom" in args.data:
        datasets["phantom"] = phantom_test_set()
    table = markdown(realism_table(datasets, tuple(args.edits)))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
