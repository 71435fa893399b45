"""Time and peak memory of `mribench score` on N real + N generated 128 x 128 slices, then a rescore after
one generated file changed (the feature cache recomputes only that file).

    python -m benchmark.lab.speed.score --sizes 250 1000 --work /tmp/score-speed [--json out.json]

Slices: every axial brain slice of the phantom's subjects (data.slices.policy=brain), written as 16-bit
PNG; the first N are the real folder, the next N (with 0.01 Gaussian noise, so every file is new) the
generated folder, and a further N/4 the training folder. Each run is a fresh process with the default
suite (Inception, radiomics FRD, NIQE, ...) and an empty feature cache; peak memory is its maximum resident
set size. Memory flat in N means the per-image state is features, not the network or the whole images.
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

REPO = Path(__file__).resolve().parents[2]


def write_slices(work: Path, n: int, seed: int = 0) -> dict[str, Path]:
    """real/, generated/ and train/ folders of N, N and N/4 distinct phantom slices under `work`."""
    from hydra import compose, initialize_config_dir

    from benchmark.data.imageset import ImageSet
    from benchmark.data.prepare import prepare_data
    from benchmark.score.export import write_png_slices

    needed = 2 * n + n // 4
    per_subject = -(-needed // 24) + 2
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"data.slices.per_subject={per_subject}", "data.slices.policy=brain",
                                           "data.slices.min_brain_fraction=0.05"]).data
    data = prepare_data(cfg, seed=seed)
    pool = ImageSet.concatenate([data.train, data.val, data.test])
    if len(pool) < needed:
        raise SystemExit(f"the phantom gives {len(pool)} slices, {needed} needed")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pool))
    folders = {}
    for name, chosen in (("real", order[:n]), ("generated", order[n:2 * n]), ("train", order[2 * n:needed])):
        part = pool.subset(chosen.tolist())
        if name == "generated":
            noise = 0.01 * np.random.default_rng(seed + 1).standard_normal(tuple(part.images.shape))
            part = part.with_images((part.images + torch.from_numpy(noise).float()).clamp(0, 1))
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
    stages = json.loads((output / "score.json").read_text())["elapsed_s"]
    return {"wall_s": elapsed, "peak_rss_gib": peak / 2**20, **{f"{k}_s": v for k, v in stages.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 1000])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    for n in args.sizes:
        folders = write_slices(args.work, n)
        cache = args.work / f"n{n}" / "cache"
        shutil.rmtree(cache, ignore_errors=True)
        first = timed_score(folders, args.work / f"n{n}" / "out", cache)
        changed = sorted((folders["generated"] / "images").iterdir())[0]
        from PIL import Image

        pixels = np.asarray(Image.open(changed)).copy()
        pixels[:8, :8] = 65535
        Image.fromarray(pixels).save(changed)
        rescore = timed_score(folders, args.work / f"n{n}" / "out", cache)
        row = {"n_real": n, "n_generated": n, "n_train": n // 4, "first": first, "rescore_one_changed": rescore}
        print(json.dumps(row))
        results.append(row)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
