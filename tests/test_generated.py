"""External generated sets (PNG slices, 2D NIfTI slices, 3D NIfTI volumes) read like a perturbed set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skimage.io import imsave

from benchmark.data.generated import load_generated_set
from benchmark.data.prepare import prepare_data
from benchmark.errors import DataError
from tests import niftis
from tests.test_data_readers import SMALL, data_config


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory):
    root = niftis.write_brats(tmp_path_factory.mktemp("brats"), n_cases=3)
    cfg = data_config("data=brats", f"data.root={root}", *SMALL)
    return cfg, prepare_data(cfg, seed=0).test


def test_png_slices_with_masks(tmp_path: Path, reference) -> None:
    cfg, ref = reference
    image, labels = niftis.synthetic_case(0, shape=(24, 24, 3))
    for k in range(3):
        (tmp_path / "images").mkdir(exist_ok=True)
        imsave(tmp_path / "images" / f"s{k}.png",
               (np.clip(image[..., k] / image.max(), 0, 1) * 65535).astype(np.uint16), check_contrast=False)
        (tmp_path / "labels").mkdir(exist_ok=True)
        imsave(tmp_path / "labels" / f"s{k}.png", labels[..., k].astype(np.uint8), check_contrast=False)
    generated = load_generated_set(tmp_path, cfg, ref, seed=0)
    assert generated.images.shape == (3, 1, 24, 24) and generated.meta["has_labels"]
    np.testing.assert_array_equal(generated.labels[1, 0].numpy(), labels[..., 1])
    assert float(generated.images.max()) == pytest.approx(1.0, abs=1e-3)


def test_png_of_another_size_is_resized_and_labels_optional(tmp_path: Path, reference) -> None:
    cfg, ref = reference
    (tmp_path / "images").mkdir()
    imsave(tmp_path / "images" / "a.png", np.full((48, 40), 128, np.uint8), check_contrast=False)
    generated = load_generated_set(tmp_path, cfg, ref, seed=0)
    assert generated.images.shape == (1, 1, 24, 24) and not generated.meta["has_labels"]
    assert int(generated.labels.sum()) == 0


def test_3d_nifti_volumes_go_through_the_real_preprocessing(tmp_path: Path, reference) -> None:
    cfg, ref = reference
    image, labels = niftis.synthetic_case(7)
    niftis.save(image, tmp_path / "images" / "gen0.nii.gz")
    niftis.save(labels, tmp_path / "labels" / "gen0.nii.gz")
    generated = load_generated_set(tmp_path, cfg, ref, seed=0)
    assert generated.images.shape[1:] == ref.images.shape[1:]
    assert bool(generated.tumour_present.any())


def test_missing_label_file_is_named(tmp_path: Path, reference) -> None:
    cfg, ref = reference
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    imsave(tmp_path / "images" / "a.png", np.zeros((24, 24), np.uint8), check_contrast=False)
    with pytest.raises(DataError, match=r"a\.png: no label file"):
        load_generated_set(tmp_path, cfg, ref, seed=0)
