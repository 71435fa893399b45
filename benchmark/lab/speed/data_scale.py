"""Data preparation at BraTS scale: first run and cached rerun on N BraTS-layout cases, with peak memory.

    python -m benchmark.lab.speed.data_scale --cases 1251 --work /tmp/scale [--real DIR] [--json out.json]

Builds N case folders `<work>/cases/Case_NNNN/Case_NNNN_{flair,seg}.nii.gz` as symlinks to the phantom's
subjects (1.5 mm, BraTS 2021 labels) and, when `--real` points at DeepMedic's BRATS 2015 folder, to the real
patients (1 mm, z-scored, labels 0-4), under distinct ids, so every case is prepared on its own. Then
prepares them twice in fresh processes with the default 2D settings (`data.label_map=brats2015`, which
reads both label conventions): the first run decodes every NIfTI file, the rerun reads the prepared
subjects from the content-addressed cache. Peak memory is the peak of the summed proportional set size
(PSS) of the whole process tree (preparing process, forkserver, workers), sampled from /proc.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]  # the checkout root: python -m benchmark runs its code
PREPARE = """
import resource, sys, time
from hydra import compose, initialize_config_dir
from benchmark.data.prepare import prepare_data
overrides = sys.argv[1:]
with initialize_config_dir(config_dir="{conf}", version_base="1.3"):
    cfg = compose("config", overrides=overrides).data
start = time.perf_counter()
data = prepare_data(cfg, seed=0)
elapsed = time.perf_counter() - start
items = len(data.train) + len(data.val) + len(data.test)
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
print("RESULT", elapsed, items, own, workers, data.fingerprint)
"""


def phantom_sources(cache: Path, n_subjects: int) -> list[tuple[Path, Path]]:
    """(flair, seg) of every phantom subject (generated once into `cache`)."""
    from benchmark.data.phantom_files import ensure_phantom

    root = ensure_phantom(cache, n_subjects=n_subjects, voxel_size_mm=1.5, max_tumours=2,
                          tumour_free_fraction=0.2, seed=0)
    return [(case / f"{case.name}_flair.nii.gz", case / f"{case.name}_seg.nii.gz")
            for case in sorted(p for p in root.iterdir() if p.is_dir())]


def real_sources(root: Path | None) -> list[tuple[Path, Path]]:
    """(FLAIR, labels) of DeepMedic's BRATS 2015 patients."""
    if root is None:
        return []
    return [(case / "Flair_subtrMeanDivStd.nii.gz", case / "OTMultiClass.nii.gz")
            for case in sorted(root.glob("*/*")) if (case / "OTMultiClass.nii.gz").is_file()]


def build_cases(folder: Path, sources: list[tuple[Path, Path]], n_cases: int) -> None:
    """`n_cases` BraTS-layout folders of symlinks, cycling through `sources`."""
    shutil.rmtree(folder, ignore_errors=True)
    for index in range(n_cases):
        flair, seg = sources[index % len(sources)]
        case = folder / f"Case_{index:04d}"
        case.mkdir(parents=True)
        (case / f"{case.name}_flair{''.join(flair.suffixes[-2:])}").symlink_to(flair)
        (case / f"{case.name}_seg{''.join(seg.suffixes[-2:])}").symlink_to(seg)


def process_tree(root: int) -> list[int]:
    """`root` and every process descending from it (read from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack += parents.get(pid, [])
    return tree


def memory_and_cpu(pid: int) -> tuple[int, float]:
    """Proportional set size (bytes; shared pages split between their users, so sums over processes do not
    count them twice) and CPU seconds (user + system) of one process; (0, 0) once it has gone."""
    try:
        rollup = (Path("/proc") / str(pid) / "smaps_rollup").read_text()
        stat = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0, 0.0
    pss = next((int(line.split()[1]) * 1024 for line in rollup.splitlines() if line.startswith("Pss:")), 0)
    return pss, (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def prepare_once(cases: Path, cache: Path, workers: int, every_s: float = 0.5) -> dict[str, float | str]:
    """Prepare the cases in a fresh process while sampling its process tree (the preparing process, the
    forkserver and the workers) every `every_s` seconds: wall time, items, fingerprint, the peak of the
    summed memory of the tree and of the preparing process alone (GiB), and the tree's CPU seconds (a
    process's last `every_s` before it exits is missed)."""
    overrides = ["data=brats", f"data.root={cases}", f"data.cache_dir={cache}", "data.size=[128,128]",
                 "data.label_map=brats2015", f"data.workers={workers}", "data.duplicate_scans=allow"]
    code = PREPARE.replace("{conf}", str(REPO / "conf"))
    load_before = os.getloadavg()[0]
    process = subprocess.Popen([sys.executable, "-c", code, *overrides], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    peak_tree = peak_parent = 0
    cpu: dict[int, float] = {}
    reader = ThreadPoolExecutor(1).submit(process.communicate)  # drains the pipes while we sample
    while process.poll() is None:
        usage = {pid: memory_and_cpu(pid) for pid in process_tree(process.pid)}
        peak_tree = max(peak_tree, sum(memory for memory, _ in usage.values()))
        peak_parent = max(peak_parent, usage.get(process.pid, (0, 0.0))[0])
        cpu.update({pid: max(cpu.get(pid, 0.0), seconds) for pid, (_, seconds) in usage.items()})
        time.sleep(every_s)
    stdout, stderr = reader.result()
    line = next((row for row in stdout.splitlines() if row.startswith("RESULT")), None)
    if line is None:
        raise SystemExit(f"preparation failed:\n{stderr[-3000:]}")
    _, elapsed, items, _, _, fingerprint = line.split()
    return {"seconds": float(elapsed), "items": int(items), "cpu_seconds": sum(cpu.values()),
            "peak_tree_gib": peak_tree / 2**30, "peak_parent_gib": peak_parent / 2**30,
            "processes": len(cpu), "load_average_1min": [load_before, os.getloadavg()[0]],
            "fingerprint": fingerprint}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1251)
    parser.add_argument("--work", type=Path, required=True, help="scratch folder (cases, caches)")
    parser.add_argument("--real", type=Path, default=None, help="DeepMedic's brats2015TrainingData folder")
    parser.add_argument("--phantom-subjects", type=int, default=24)
    parser.add_argument("--workers", type=int, default=0, help="0: every available core")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--rerun-only", action="store_true",
                        help="keep the cache of an earlier run in --work and measure one cached run")
    args = parser.parse_args()
    sources = phantom_sources(args.work / "phantom", args.phantom_subjects) + real_sources(args.real)
    cases, cache = args.work / "cases", args.work / "cache"
    build_cases(cases, sources, args.cases)
    if args.rerun_only:
        rerun = prepare_once(cases, cache, args.workers)
        print(json.dumps({"cases": args.cases, "cached_rerun": rerun, "date": time.strftime("%Y-%m-%d %H:%M")}))
        return
    shutil.rmtree(cache, ignore_errors=True)
    first = prepare_once(cases, cache, args.workers)
    print("first run", json.dumps(first), flush=True)
    rerun = prepare_once(cases, cache, args.workers)
    print("cached rerun", json.dumps(rerun), flush=True)
    report = {"cases": args.cases, "sources": len(sources), "cpus": len(os.sched_getaffinity(0)),
              "load_average": os.getloadavg(), "first_run": first, "cached_rerun": rerun,
              "speed_up": first["seconds"] / rerun["seconds"],
              "same_data": first["fingerprint"] == rerun["fingerprint"],
              "date": time.strftime("%Y-%m-%d %H:%M")}
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
