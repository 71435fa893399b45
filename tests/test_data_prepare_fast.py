"""The faster data preparation gives the arrays the straightforward whole-volume computations give: holes
filled by labelling (scipy's iterative fill), brain mask and intensity scaling inside the brain's box,
label values by bincount; prepared labels are uint8 and the fingerprint hashes the same bytes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.filters import threshold_otsu

from benchmark.data import readers
from benchmark.data.imageset import content_fingerprint
from benchmark.data.labels import present_values
from benchmark.data.prepare import prepare_data
from benchmark.data.preprocess import brain_mask_from_image, fill_holes, normalise_intensity
from benchmark.lab.speed.data_scale import memory_and_cpu, process_tree
from tests import niftis
from tests.test_data_readers import SMALL, data_config


def whole_volume_brain_mask(image: np.ndarray) -> np.ndarray:
    """The Otsu branch as first written: scipy's fill and component sizes on the whole volume."""
    mean = image.mean(axis=0)
    mask = ndimage.binary_fill_holes(mean > threshold_otsu(mean))
    components, count = ndimage.label(mask)
    if count > 1:
        sizes = ndimage.sum(mask, components, index=range(1, count + 1))
        mask = components == (1 + int(np.argmax(sizes)))
    return mask


def whole_volume_normalise(image: np.ndarray, brain: np.ndarray, percentiles: tuple[float, float]) -> np.ndarray:
    out = np.zeros_like(image, dtype=np.float32)
    for channel, data in enumerate(image):
        low, high = np.percentile(data[brain] if brain.any() else data.ravel(), percentiles)
        out[channel] = np.clip((data - low) / (high - low if high > low else 1.0), 0.0, 1.0) * brain
    return out


def noisy_head(shape: tuple[int, int, int], seed: int, *, touch_border: bool = False) -> np.ndarray:
    """(1, X, Y, Z) volume with a noisy (non-constant) background, a bright ellipsoid with a dark hole
    inside, and a smaller bright blob apart: the Otsu branch, with holes and two components."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    radius = 1.05 if touch_border else 0.6  # 1.05: cut by the array's faces
    head = (grid**2).sum(0) < radius**2
    hole = ((grid - 0.1) ** 2).sum(0) < 0.15**2
    blob = ((grid - np.array([0.8, -0.8, 0.8])[:, None, None, None]) ** 2).sum(0) < 0.12**2
    image = rng.normal(0.0, 0.05, shape) + 1.0 * (head & ~hole) + 0.9 * blob
    return image[None].astype(np.float32)


@pytest.mark.parametrize("seed", range(6))
def test_fill_holes_equals_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = [(30, 40, 20), (50, 60), (12, 12, 12)][seed % 3]
    mask = ndimage.binary_opening(rng.random(shape) < [0.5, 0.65, 0.8][seed % 3])  # holes, islands, border
    np.testing.assert_array_equal(fill_holes(mask), ndimage.binary_fill_holes(mask))
    for edge in (np.zeros(shape, bool), np.ones(shape, bool)):
        np.testing.assert_array_equal(fill_holes(edge), ndimage.binary_fill_holes(edge))


@pytest.mark.parametrize("touch_border", [False, True])
def test_otsu_brain_mask_equals_the_whole_volume_computation(touch_border: bool) -> None:
    image = noisy_head((40, 44, 36), seed=3, touch_border=touch_border)
    mask = brain_mask_from_image(image)
    np.testing.assert_array_equal(mask, whole_volume_brain_mask(image))
    assert mask[21, 24, 19] and not (image[0, 21, 24, 19] > 0.5)  # the dark hole is filled
    assert image[0, 35, 4, 31] > 0.5 and not mask[35, 4, 31]  # the smaller blob is left out


def test_normalise_inside_the_box_equals_the_whole_volume_formula() -> None:
    rng = np.random.default_rng(0)
    image = np.round(rng.normal(-0.5, 1.0, (2, 30, 34, 26)), 1).astype(np.float32)  # negative, many ties
    brain = np.zeros(image.shape[1:], bool)
    brain[6:25, 4:20, 3:22] = rng.random((19, 16, 19)) < 0.9
    for mask in (brain, np.zeros_like(brain)):
        expected = whole_volume_normalise(image, mask, (1.0, 99.0))
        np.testing.assert_array_equal(normalise_intensity(image, mask, (1.0, 99.0)), expected)


@pytest.mark.parametrize("data", [
    np.array([[0, 2], [4, 4]], np.uint8), np.array([0, 70000, 3], np.int64), np.array([-1, 0, 2], np.int16),
    np.array([], np.int64), np.array([3.0, 1.0]), np.array([1, 2], np.uint64),
])
def test_present_values_equals_unique(data: np.ndarray) -> None:
    np.testing.assert_array_equal(present_values(data), np.unique(data))


def test_present_values_of_a_reoriented_view() -> None:
    volume = np.asfortranarray(np.random.default_rng(1).integers(0, 5, (9, 7, 5)))[::-1, :, ::-1]
    np.testing.assert_array_equal(present_values(volume), np.unique(volume))


def test_a_4d_file_is_decoded_once_for_all_its_modalities(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = niftis.write_msd(tmp_path, n_cases=1)
    case = readers.find_msd_cases(root, ["flair", "t1", "t1ce", "t2"])[0]
    decoded, original = [], readers.load_volume
    monkeypatch.setattr(readers, "load_volume", lambda path, **kw: decoded.append(path) or original(path, **kw))
    image, _, _, _ = readers.load_case(case, ["flair", "t1", "t1ce", "t2"])
    assert image.shape[0] == 4 and decoded.count(case.images["flair"]) == 1


def test_prepared_labels_are_uint8_with_the_values_and_fingerprint_of_the_bytes(tmp_path: Path) -> None:
    root = niftis.write_brats(tmp_path / "data", n_cases=4, version=2021)
    data = prepare_data(data_config("data=brats", f"data.root={root}", f"data.cache_dir={tmp_path / 'c'}", *SMALL),
                        seed=0)
    labels = torch.cat([data.train.labels, data.val.labels, data.test.labels])
    assert labels.dtype == torch.uint8 and set(labels.unique().tolist()) == {0, 1, 2, 3}  # 2021's 4 -> 3
    digest = hashlib.sha256()
    for split in (data.train, data.val, data.test):
        for tensor in (split.images, split.labels, split.brain_masks):
            array = tensor.numpy()
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(array.tobytes())
        digest.update(repr((split.subject_ids, split.slice_indices, split.modalities, split.spacing)).encode())
    assert data.fingerprint == content_fingerprint((data.train, data.val, data.test)) == digest.hexdigest()[:16]


def test_process_tree_memory_and_cpu_of_this_process() -> None:
    assert os.getpid() in process_tree(os.getpid())
    memory, cpu = memory_and_cpu(os.getpid())
    assert 10 * 2**20 < memory < 64 * 2**30 and cpu > 0
    assert memory_and_cpu(2**22 + 7) == (0, 0.0)  # no such process


def test_workers_and_a_partly_cached_rerun_stream_the_same_data(tmp_path: Path) -> None:
    """8 subjects: the process pool (in order, streamed into the splits), one process, and a rerun with
    half the subjects from the cache and half prepared again give the same arrays."""
    root = niftis.write_brats(tmp_path / "data", n_cases=8)
    base = ["data=brats", f"data.root={root}", *SMALL]
    serial = prepare_data(data_config(*base, "data.workers=1", "data.prepared_cache=false",
                                      f"data.cache_dir={tmp_path / 'none'}"), seed=0)
    cfg = data_config(*base, "data.workers=2", f"data.cache_dir={tmp_path / 'cache'}")
    parallel = prepare_data(cfg, seed=0)
    entries = sorted((tmp_path / "cache" / "prepared").rglob("*.npz"))
    for entry in entries[::2]:
        entry.unlink()
    mixed = prepare_data(cfg, seed=0)
    assert len(entries) == 8 and len(list((tmp_path / "cache" / "prepared").rglob("*.npz"))) == 8
    assert serial.fingerprint == parallel.fingerprint == mixed.fingerprint
    assert serial.train.subject_ids == mixed.train.subject_ids and serial.test.labels.dtype == torch.uint8
