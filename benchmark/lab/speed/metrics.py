"""Speed of the metric core against MONAI, scikit-image and scipy, in one run on this machine.

    python -m benchmark.lab.speed.metrics results/speed_metrics.json [--device cpu|cuda] [--repeats 3] [--threads 2]

Prints a markdown table (seconds as the best of `repeats` runs, ratio = reference / ours, and the largest
absolute difference of the values) and writes the same numbers as JSON. Takes 1-3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
from monai.metrics import SSIMMetric
from skimage.metrics import structural_similarity

from benchmark.metrics import StreamingFID, frechet_distance, ssim


def best_time(function: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Smallest wall time over `repeats` calls (the least disturbed by other load) and the last value."""
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = function()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times), value


def skimage_ssim(x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    return np.array(
        [
            structural_similarity(
                a[0].numpy(), b[0].numpy(), data_range=1.0, gaussian_weights=True, sigma=1.5,
                use_sample_covariance=False,
            )
            for a, b in zip(x, y, strict=True)
        ]
    )  # fmt: skip


def ssim_rows(shape: tuple[int, ...], device: torch.device, repeats: int) -> list[dict]:
    """Our SSIM vs MONAI SSIMMetric and scikit-image on one pair of batches."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=generator)
    y = (0.8 * x + 0.2 * torch.rand(shape, generator=generator)).clamp(0, 1)
    xd, yd = x.to(device), y.to(device)
    ours_s, ours = best_time(lambda: ssim(xd, yd).cpu(), repeats)
    monai_metric = SSIMMetric(spatial_dims=len(shape) - 2, data_range=1.0)
    monai_s, monai = best_time(lambda: monai_metric(xd, yd).flatten().cpu(), max(1, repeats - 1))
    sk_s, sk = best_time(lambda: skimage_ssim(x, y), max(1, repeats - 1))
    task = f"SSIM {'x'.join(map(str, shape[2:]))} x {shape[0]}"
    return [
        row(task, "MONAI SSIMMetric", ours_s, monai_s, float((ours - monai).abs().max())),
        row(task, "scikit-image structural_similarity", ours_s, sk_s, float(np.abs(ours.numpy() - sk).max())),
    ]


def frechet_row(dim: int, n: int, repeats: int) -> dict:
    """Our eigh-based Fréchet distance vs the scipy.linalg.sqrtm formula (pytorch-fid / MONAI)."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(n, dim)) @ (np.eye(dim) + 0.05 * rng.normal(size=(dim, dim)))
    b = a[: n // 2] * 1.1 + 0.05
    mu1, mu2, s1, s2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)

    def scipy_fd() -> float:
        root = scipy.linalg.sqrtm(s1 @ s2).real
        return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))

    tensors = [torch.from_numpy(t) for t in (mu1, s1, mu2, s2)]
    ours_s, ours = best_time(lambda: frechet_distance(*tensors), repeats)
    scipy_s, reference = best_time(scipy_fd, 1)
    return row(f"Fréchet distance d={dim} (n={n} / {n // 2})", "scipy.linalg.sqrtm", ours_s, scipy_s,
               abs(ours - reference), relative=abs(ours - reference) / abs(reference))  # fmt: skip


def resident_mib() -> float:
    """Current resident memory of this process (Linux /proc), MiB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def streaming_row(total: int, batch: int, dim: int) -> dict:
    """StreamingFID over `total` feature vectors: time, and resident memory at checkpoints (flat)."""
    generator = torch.Generator().manual_seed(0)
    stream = StreamingFID()
    checkpoints = {}
    start = time.perf_counter()
    for index in range(total // batch):
        features = torch.randn(batch, dim, generator=generator)
        stream.update(features, real=True)
        stream.update(features * 1.05 + 0.01, real=False)
        seen = (index + 1) * batch
        if seen in (total // 10, total // 2, total):
            checkpoints[seen] = resident_mib()
    value = stream.compute()
    seconds = time.perf_counter() - start
    state_mb = 2 * (stream.real.scatter.numel() + stream.real.mean.numel()) * 8 / 2**20
    return {
        "task": f"Streaming FID, {total} + {total} samples of {dim}-d features in batches of {batch}",
        "versus": "resident memory (MiB) after 10% / 50% / 100% of the stream",
        "ours_s": seconds,
        "reference_s": None,
        "ratio": None,
        "max_abs_diff": None,
        "resident_mib": checkpoints,
        "state_mib": state_mb,
        "all_features_mib": 2 * total * dim * 4 / 2**20,
        "value": value,
    }


def row(task: str, versus: str, ours: float, reference: float, diff: float, relative: float | None = None) -> dict:
    entry = {"task": task, "versus": versus, "ours_s": ours, "reference_s": reference, "ratio": reference / ours,
             "max_abs_diff": diff}  # fmt: skip
    if relative is not None:
        entry["relative_diff"] = relative
    return entry


def markdown(rows: list[dict]) -> str:
    lines = ["| task | compared with | ours (s) | theirs (s) | speed-up | max abs diff |", "|---|---|---|---|---|---|"]
    for entry in rows:
        if entry["ratio"] is None:
            rss = " / ".join(f"{v:.0f}" for v in entry["resident_mib"].values())
            lines.append(
                f"| {entry['task']} | {entry['versus']}: {rss} (state {entry['state_mib']:.0f} MiB vs "
                f"{entry['all_features_mib']:.0f} MiB to keep all features) | {entry['ours_s']:.2f} | | | |"
            )
            continue
        relative = f" (relative {entry['relative_diff']:.1e})" if "relative_diff" in entry else ""
        lines.append(
            f"| {entry['task']} | {entry['versus']} | {entry['ours_s']:.3f} | {entry['reference_s']:.3f} | "
            f"{entry['ratio']:.1f}x | {entry['max_abs_diff']:.1e}{relative} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json_path", type=Path, help="where to write the results as JSON")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the Fréchet rows always run in float64 on CPU)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    parser.add_argument("--stream-total", type=int, default=10_000)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    rows = ssim_rows((2, 1, 128, 128, 128), device, args.repeats)
    rows += ssim_rows((64, 1, 128, 128), device, args.repeats)
    rows.append(frechet_row(2048, 3000, args.repeats))
    rows.append(streaming_row(args.stream_total, 1000, 2048))
    table = markdown(rows)
    print(table)
    machine = {"platform": platform.platform(), "processor": platform.processor(), "threads": torch.get_num_threads(),
               "device": str(device), "torch": torch.__version__}  # fmt: skip
    args.json_path.parent.mkdir(parents=True, exist_ok=True)
    args.json_path.write_text(json.dumps({"machine": machine, "rows": rows, "markdown": table}, indent=2))


if __name__ == "__main__":
    main()
