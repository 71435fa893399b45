"""Time our batched radiomics features against pyradiomics 3.0.1 on brain-sized 2D slices.

`python -m benchmark.lab.speed.radiomics [--n 64] [--size 128] [--reference-n 8] [--threads 1] [--out PATH]`
`python -m benchmark.lab.speed.radiomics --volume 155 240 240` times original-image features of one BraTS-sized
3D volume instead (a textured ellipsoid "brain" in the middle), with the process's peak resident memory.
Images: smoothed noise of varied grain in [0, 1] with an elliptical "brain" mask, seeded. Settings as the
FRD default: original + LoG (sigma 2, 3, 4, 5 mm at 1.5 mm spacing) + 4 wavelet bands, binWidth 1/32,
711 features. pyradiomics (single-threaded by design) runs on the first `reference-n` images only and is
reported per image. Prints a markdown table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from benchmark.metrics.radiomics import radiomics_features
from benchmark.metrics.radiomics.discretise import DEFAULT_BIN_WIDTH
from benchmark.metrics.radiomics.extractor import DEFAULT_SIGMAS

SPACING = 1.5


def brain_like_slices(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 1, size, size) textured images in [0, 1] and elliptical bool masks."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    images, masks = [], []
    for k in range(n):
        mask = (x / rng.uniform(0.6, 0.8)) ** 2 + (y / rng.uniform(0.7, 0.9)) ** 2 < 1
        image = gaussian_filter(rng.random((size, size)), 1 + k % 3) * mask
        images.append(image / image.max())
        masks.append(mask)
    return torch.from_numpy(np.stack(images)[:, None].astype(np.float32)), torch.from_numpy(np.stack(masks)[:, None])


def time_ours(images: torch.Tensor, masks: torch.Tensor) -> tuple[float, int]:
    """Seconds for all images (after one warm-up call on two images) and the feature count."""
    radiomics_features(images[:2], masks[:2], spacing=(SPACING, SPACING))
    start = time.perf_counter()
    features, _ = radiomics_features(images, masks, spacing=(SPACING, SPACING))
    return time.perf_counter() - start, features.shape[1]


def time_pyradiomics(images: torch.Tensor, masks: torch.Tensor) -> tuple[float, int]:
    """Seconds for pyradiomics on all given images, one at a time, and its feature count."""
    import radiomics
    import SimpleITK as sitk
    from radiomics import featureextractor

    radiomics.setVerbosity(logging.ERROR)
    extractor = featureextractor.RadiomicsFeatureExtractor(binWidth=DEFAULT_BIN_WIDTH)
    extractor.disableAllFeatures()
    for feature_class in ("firstorder", "glcm", "glrlm", "glszm", "ngtdm"):
        extractor.enableFeatureClassByName(feature_class)
    extractor.enableImageTypes(Original={}, LoG={"sigma": list(DEFAULT_SIGMAS)}, Wavelet={})
    start, count = time.perf_counter(), 0
    for image, mask in zip(images[:, 0].double().numpy(), masks[:, 0].numpy(), strict=True):
        sitk_image = sitk.GetImageFromArray(image)
        sitk_image.SetSpacing((SPACING, SPACING))
        sitk_mask = sitk.GetImageFromArray(mask.astype(np.uint8))
        sitk_mask.CopyInformation(sitk_image)
        result = extractor.execute(sitk_image, sitk_mask)
        count = sum(not key.startswith("diagnostics") for key in result)
    return time.perf_counter() - start, count


def time_volume(shape: tuple[int, int, int]) -> dict:
    """Original-image features of one textured 3D volume with an ellipsoid mask: seconds and peak RSS (GB)."""
    import resource

    rng = np.random.default_rng(0)
    grid = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    mask = sum((axis / 0.8) ** 2 for axis in grid) < 1
    image = gaussian_filter(rng.random(shape), 1.0) * mask
    image = torch.from_numpy((image / image.max()).astype(np.float32))[None, None]
    start = time.perf_counter()
    features, _ = radiomics_features(image, torch.from_numpy(mask)[None, None], image_types=("original",))
    seconds = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux
    print(f"| {'x'.join(map(str, shape))} volume, {features.shape[1]} original-image features | {seconds:.2f} s | "
          f"peak RSS {peak_gb:.2f} GB |")
    return {"shape": list(shape), "seconds": seconds, "peak_rss_gb": peak_gb, "features": features.shape[1]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="slices timed for our implementation")
    parser.add_argument("--size", type=int, default=128, help="slice side in pixels")
    parser.add_argument("--reference-n", type=int, default=8, help="slices timed for pyradiomics")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for ours (1: fair on a shared machine)")
    parser.add_argument("--out", type=Path, default=Path("outputs/speed/radiomics.json"))
    parser.add_argument("--volume", type=int, nargs=3, default=None, help="time one 3D volume of this shape")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.volume is not None:
        return time_volume(tuple(args.volume))
    images, masks = brain_like_slices(args.n, args.size, seed=0)
    ours_s, ours_d = time_ours(images, masks)
    ref_s, ref_d = time_pyradiomics(images[: args.reference_n], masks[: args.reference_n])
    result = {
        "images": args.n, "size": args.size, "threads": args.threads, "features": ours_d,
        "ours_s_per_image": ours_s / args.n, "pyradiomics_images": args.reference_n,
        "pyradiomics_features": ref_d, "pyradiomics_s_per_image": ref_s / args.reference_n,
        "speedup": (ref_s / args.reference_n) / (ours_s / args.n),
    }  # fmt: skip
    print("| implementation | images | features | s / image |\n|---|---|---|---|")
    print(f"| ours (batched torch, {args.threads} threads) | {args.n} | {ours_d} | {result['ours_s_per_image']:.4f} |")
    print(f"| pyradiomics 3.0.1 | {args.reference_n} | {ref_d} | {result['pyradiomics_s_per_image']:.4f} |")
    print(f"\nspeed-up: {result['speedup']:.1f}x on {args.size}x{args.size} slices")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
