"""Radiomics against pyradiomics' own baseline values on real brain MR, and on masks with isolated voxels.

pyradiomics' baseline (../shared/data/pyradiomics, brain1/brain2: real MR with a tumour ROI, 3D, binWidth 25,
voxelArrayShift 2000, native 0.78 x 0.78 x 6.5 mm spacing) is what pyradiomics' own test-suite asserts.
Measured: every first-order and texture feature within relative 2.4e-14 of the CSV; asserted at 1e-10.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.metrics.radiomics import radiomics_features
from benchmark.metrics.radiomics.discretise import DEFAULT_BIN_WIDTH
from tests._pyradiomics import assert_features_match, pyradiomics_features
from tests.real_data import shared_data

CLASSES = ("firstorder", "glcm", "glrlm", "glszm", "ngtdm")


def _read_case(root, case: str) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Image and ROI of a pyradiomics test case cropped to the ROI's bounding box plus one voxel (z, y, x)."""
    sitk = pytest.importorskip("SimpleITK")
    image = sitk.ReadImage(str(root / f"{case}_image.nrrd"))
    array = sitk.GetArrayFromImage(image).astype(np.float64)
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(root / f"{case}_label.nrrd"))) == 1
    box = tuple(slice(max(int(i.min()) - 1, 0), int(i.max()) + 2) for i in np.nonzero(mask))
    return array[box], mask[box], tuple(image.GetSpacing())[::-1]


@pytest.mark.parametrize("case", ["brain1", "brain2"])
def test_features_match_pyradiomics_baseline_csv(case):
    pandas = pytest.importorskip("pandas")
    root = shared_data("pyradiomics")
    baseline = {c: pandas.read_csv(root / "baseline" / f"baseline_{c}.csv", index_col=0)[case] for c in CLASSES}
    image, mask, spacing = _read_case(root, case)
    ours, names = radiomics_features(torch.from_numpy(image)[None, None], torch.from_numpy(mask)[None, None],
                                     image_types=("original",), bin_width=25, spacing=spacing,
                                     voxel_array_shift=2000)  # fmt: skip
    reference = {name: float(baseline[name.split("_")[1]][name]) for name in names}
    assert_features_match(ours[0].numpy(), names, reference, rtol=1e-10, atol=0)


def _ragged_mask(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Two blobs with holes plus isolated single voxels (no neighbour in the mask, even diagonally)."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"))
    mask = np.zeros(shape, bool)
    for centre, radius in ((0.3, 0.22), (0.7, 0.18)):
        mask |= (((grid - np.array(shape).reshape(-1, *([1] * len(shape))) * centre) ** 2).sum(0)) < (
            radius * min(shape)) ** 2  # fmt: skip
    mask &= rng.random(shape) > 0.1  # holes
    for corner in ((0,) * len(shape), tuple(s - 1 for s in shape), (0,) * (len(shape) - 1) + (shape[-1] - 1,)):
        mask[corner] = True  # isolated: the blobs stay away from the corners
    return mask


@pytest.mark.parametrize("shape", [(28, 28), (10, 14, 14)], ids=["2d", "3d"])
def test_isolated_voxels_holes_and_components_match_pyradiomics(shape):
    """NGTDM counts a voxel without in-mask neighbours with a zero difference, as pyradiomics' C code does."""
    pytest.importorskip("radiomics")
    rng = np.random.default_rng(7)
    image = rng.normal(0.5, 0.2, size=shape)  # crosses 0 and 1: negative intensities included
    mask = _ragged_mask(shape, 3)
    ours, names = radiomics_features(torch.from_numpy(image)[None, None], torch.from_numpy(mask)[None, None],
                                     image_types=("original",), voxel_array_shift=300)  # fmt: skip
    reference = pyradiomics_features(image, mask, DEFAULT_BIN_WIDTH, {"Original": {}}, voxel_array_shift=300)
    assert_features_match(ours[0].numpy(), names, reference, rtol=1e-9, atol=1e-12)
