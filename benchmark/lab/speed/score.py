"""Time and peak memory of `mribench score` on N real + N generated 128 x 128 slices of real patients, then
a rescore after one generated file changed (the feature cache recomputes only that file).

    python -m benchmark.lab.speed.score --sizes 250 500 1000 --work /tmp/score-speed [--json out.json]
        [--root /path/to/brats2018-thirteen] [--rescore 1000]

Slices: every axial slice with at least 5 % brain of the BraTS patients under `--root` (FLAIR, the study's
preprocessing at 128 x 128, exported as 16-bit PNG). The real folder holds N of them, the training folder
N/4 others; the generated folder holds N slices drawn from the whole pool and perturbed (Gaussian noise of
std 0.01-0.05 inside the brain and a shift of up to 3 pixels), so every generated file is new. Each run is
a fresh process with the default suite (Inception, radiomics FRD, NIQE, ...) and an empty feature cache;
peak memory is its maximum resident set size. Memory flat in N means the per-image state is features, not
images.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO.parent / "shared" / "data" / "brats2018-thirteen"
ALL_SLICES = 155  # a BraTS volume's axial slices: every slice with enough brain enters the pool


def slice_pool(root: Path, per_subject: int, seed: int = 0):
    """Every prepared slice of the patients under `root` (train, val and test splits together)."""
    from hydra import compose, initialize_config_dir

    from benchmark.data.imageset import ImageSet
    from benchmark.data.prepare import prepare_data

    overrides = ["data=brats", f"data.root={root}", "data.size=[128,128]", f"data.slices.per_subject={per_subject}",
                 "data.slices.policy=brain", "data.slices.min_brain_fraction=0.05"]
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides).data
    data = prepare_data(cfg, seed=seed)
    return ImageSet.concatenate([data.train, data.val, data.test])


def perturbed(images: torch.Tensor, brains: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Each image with Gaussian noise (std 0.01-0.05) inside its brain and shifted by up to 3 pixels."""
    out = images.clone()
    for k in range(len(images)):
        noise = rng.uniform(0.01, 0.05) * torch.from_numpy(rng.standard_normal(tuple(images[k].shape))).float()
        shifted = torch.roll(images[k] + noise * brains[k], tuple(rng.integers(-3, 4, 2).tolist()), dims=(-2, -1))
        out[k] = shifted.clamp(0, 1)
    return out


def write_slices(work: Path, n: int, root: Path, seed: int = 0) -> dict[str, Path]:
    """real/ (N slices), train/ (N/4 others) and generated/ (N perturbed slices) under `work`/n<N>."""
    from benchmark.score.export import write_png_slices

    needed = n + n // 4
    pool = slice_pool(root, per_subject=ALL_SLICES, seed=seed)
    if len(pool) < needed:
        raise SystemExit(f"{root} gives {len(pool)} slices, {needed} needed for N={n}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pool))
    drawn = rng.choice(len(pool), n, replace=n > len(pool))
    folders = {}
    for name, chosen in (("real", order[:n]), ("train", order[n:needed]), ("generated", drawn)):
        part = pool.subset(chosen.tolist())
        if name == "generated":
            part = part.with_images(perturbed(part.images, part.brain_masks.float(), rng))
        folders[name] = work / f"n{n}" / name
        shutil.rmtree(folders[name], ignore_errors=True)
        write_png_slices(part, folders[name], names=[f"{name}_{k:05d}" for k in range(len(part))])
    return folders


PEAK = ("import resource, runpy, sys\nsys.argv = ['benchmark.score', *sys.argv[1:]]\ntry:\n"
        "    runpy.run_module('benchmark.score', run_name='__main__')\nfinally:\n"
        "    print('PEAK_RSS_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n")


def timed_score(folders: dict[str, Path], output: Path, cache: Path) -> dict[str, float]:
    """One `python -m benchmark.score` run in a fresh process: wall seconds, peak RSS (GiB), stage times."""
    start = time.perf_counter()
    process = subprocess.run([sys.executable, "-c", PEAK, f"real={folders['real']}",
                              f"generated={folders['generated']}", f"train={folders['train']}",
                              f"output_dir={output}", f"feature_cache={cache}"], cwd=REPO, capture_output=True,
                             text=True)
    elapsed = time.perf_counter() - start
    if process.returncode:
        raise SystemExit(process.stderr[-3000:])
    peak = int(process.stderr.rsplit("PEAK_RSS_KIB", 1)[1].split()[0])
    written = json.loads((output / "score.json").read_text())
    return {"wall_s": elapsed, "peak_rss_gib": peak / 2**20,
            **{f"{k}_s": v for k, v in written["elapsed_s"].items()},
            **{f"{k}_peak_rss_mib": v for k, v in written["peak_rss_mib"].items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--root", type=Path, default=SHARED, help="folder of BraTS patients (NIfTI)")
    parser.add_argument("--rescore", type=int, nargs="*", help="sizes to rescore after one change (default: largest)")
    args = parser.parse_args()
    rescore_sizes = set(args.rescore if args.rescore is not None else [max(args.sizes)])
    results = []
    for n in args.sizes:
        folders = write_slices(args.work, n, args.root)
        cache = args.work / f"n{n}" / "cache"
        shutil.rmtree(cache, ignore_errors=True)
        row = {"n_real": n, "n_generated": n, "n_train": n // 4,
               "first": timed_score(folders, args.work / f"n{n}" / "out", cache)}
        if n in rescore_sizes:
            changed = sorted((folders["generated"] / "images").iterdir())[0]
            from PIL import Image

            pixels = np.asarray(Image.open(changed)).copy()
            pixels[:8, :8] = 65535
            Image.fromarray(pixels).save(changed)
            row["rescore_one_changed"] = timed_score(folders, args.work / f"n{n}" / "out", cache)
        print(json.dumps(row), flush=True)
        results.append(row)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
