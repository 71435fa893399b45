"""External generated sets (PNG slices, 2D NIfTI slices, 3D NIfTI volumes) read like a perturbed set."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
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


def _png_variants(grey8: np.ndarray) -> dict[str, np.ndarray]:
    """The same slice as each PNG flavour a generator may write."""
    grey16 = grey8.astype(np.uint16) * 257  # 255 -> 65535: the same [0, 1] values
    opaque = np.full_like(grey8, 255)
    return {
        "grey8": grey8, "grey16": grey16, "rgb": np.stack([grey8] * 3, -1),
        "rgba": np.stack([grey8] * 3 + [opaque], -1), "grey_alpha": np.stack([grey8, opaque], -1),
    }


@pytest.mark.parametrize("flavour", ["grey8", "grey16", "rgb", "rgba", "grey_alpha"])
def test_every_png_flavour_reads_as_the_same_grey_slice(tmp_path: Path, reference, flavour: str) -> None:
    """RGB, RGBA and grey+alpha used to stay in 0..255 (FID 6031 instead of 156): all must match grey."""
    cfg, ref = reference
    grey8 = np.random.default_rng(0).integers(0, 256, size=(24, 24)).astype(np.uint8)
    (tmp_path / "images").mkdir()
    imsave(tmp_path / "images" / "a.png", _png_variants(grey8)[flavour], check_contrast=False)
    generated = load_generated_set(tmp_path, cfg, ref, seed=0)
    np.testing.assert_allclose(generated.images[0, 0].numpy(), grey8 / 255.0, atol=1e-6)


@pytest.mark.parametrize(
    ("pixels", "message"),
    [
        (np.dstack([np.full((24, 24), 200, np.uint8), np.zeros((24, 24), np.uint8), np.zeros((24, 24), np.uint8)]),
         "colour PNG"),
        (np.dstack([np.full((24, 24), 200, np.uint8), np.full((24, 24), 100, np.uint8)]), "transparent pixels"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "cannot read this PNG"),
    ],
)
def test_colour_transparent_or_corrupt_png_is_refused_naming_it(tmp_path: Path, reference, pixels, message) -> None:
    cfg, ref = reference
    (tmp_path / "images").mkdir()
    path = tmp_path / "images" / "bad.png"
    if isinstance(pixels, bytes):
        path.write_bytes(pixels)
    else:
        imsave(path, pixels, check_contrast=False)
    with pytest.raises(DataError, match=message) as error:
        load_generated_set(tmp_path, cfg, ref, seed=0)
    assert str(path) in str(error.value)


def test_mixed_sizes_and_16_bit_are_reported(tmp_path: Path, reference, caplog) -> None:
    cfg, ref = reference
    (tmp_path / "images").mkdir()
    imsave(tmp_path / "images" / "a.png", np.full((24, 24), 128, np.uint8), check_contrast=False)
    imsave(tmp_path / "images" / "b.png", np.full((48, 48), 128 * 257, np.uint16), check_contrast=False)
    with caplog.at_level("WARNING"):
        generated = load_generated_set(tmp_path, cfg, ref, seed=0)
    assert "1 of 2 PNGs are 16-bit" in caplog.text and "48x48 (1) resized" in caplog.text
    np.testing.assert_allclose(generated.images[:, 0, 8:16, 8:16].numpy(), 128 / 255, atol=1e-3)


def _grey(value: int) -> np.ndarray:
    return np.full((24, 24), value, np.uint8)


def test_labels_are_matched_by_the_exact_name(tmp_path: Path, reference) -> None:
    cfg, ref = reference
    for folder in ("images", "labels"):
        (tmp_path / folder).mkdir()
    imsave(tmp_path / "images" / "s1.png", _grey(100), check_contrast=False)
    imsave(tmp_path / "images" / "s1.v2.png", _grey(200), check_contrast=False)
    one, two = np.zeros((24, 24), np.uint8), np.zeros((24, 24), np.uint8)
    one[2:6, 2:6], two[10:20, 10:20] = 1, 2
    imsave(tmp_path / "labels" / "s1.v2.png", two, check_contrast=False)  # listed first: s1.* used to find it
    imsave(tmp_path / "labels" / "s1.png", one, check_contrast=False)
    generated = load_generated_set(tmp_path, cfg, ref, seed=0)
    by_name = dict(zip(generated.subject_ids, generated.labels[:, 0].numpy(), strict=True))
    np.testing.assert_array_equal(by_name["s1"], one)
    np.testing.assert_array_equal(by_name["s1.v2"], two)


def test_without_its_own_label_an_image_is_refused_even_beside_a_longer_name(tmp_path: Path, reference) -> None:
    cfg, ref = reference
    for folder in ("images", "labels"):
        (tmp_path / folder).mkdir()
    imsave(tmp_path / "images" / "s1.png", _grey(100), check_contrast=False)
    imsave(tmp_path / "labels" / "s1.v2.png", np.zeros((24, 24), np.uint8), check_contrast=False)
    with pytest.raises(DataError, match=r"s1\.png: no label file named s1 "):
        load_generated_set(tmp_path, cfg, ref, seed=0)


def test_every_accepted_image_type_is_read_in_any_case_and_the_rest_is_listed(tmp_path: Path, reference,
                                                                              caplog) -> None:
    cfg, ref = reference
    (tmp_path / "images").mkdir()
    imsave(tmp_path / "images" / "a.png", _grey(50), check_contrast=False)
    Image.fromarray(_grey(100)).save(tmp_path / "images" / "b.PNG", format="PNG")
    Image.fromarray(_grey(150)).save(tmp_path / "images" / "c.jpg", format="JPEG", quality=100)
    Image.fromarray(_grey(200)).save(tmp_path / "images" / "d.JPEG", format="JPEG", quality=100)
    plane = np.random.default_rng(0).random((24, 24)).astype(np.float32) + 1
    nib.save(nib.Nifti1Image(plane, np.diag([-1.0, 1.0, 1.0, 1.0])), tmp_path / "images" / "e.NII.GZ")
    (tmp_path / "images" / "notes.txt").write_text("seed 3")
    (tmp_path / "images" / ".DS_Store").write_bytes(b"\0")
    with caplog.at_level("WARNING"):
        generated = load_generated_set(tmp_path, cfg, ref, seed=0)
    assert generated.subject_ids == ["a", "b", "c", "d", "e"]
    means = generated.images[:4, 0].mean(dim=(1, 2)).numpy()
    np.testing.assert_allclose(means, np.array([50, 100, 150, 200]) / 255, atol=2 / 255)  # JPEG: lossless grey
    assert generated.meta["not_read"] == {"images": [".DS_Store", "notes.txt"], "labels": [],
                                          "volumes_without_slices": []}
    assert "2 file(s) in" in caplog.text and "notes.txt" in caplog.text


def test_two_images_of_one_name_or_jpeg_labels_are_refused(tmp_path: Path, reference) -> None:
    cfg, ref = reference
    (tmp_path / "images").mkdir()
    imsave(tmp_path / "images" / "a.png", _grey(50), check_contrast=False)
    imsave(tmp_path / "images" / "a.jpg", _grey(50), check_contrast=False)
    with pytest.raises(DataError, match=r"two image files named a: a.jpg and a.png"):
        load_generated_set(tmp_path, cfg, ref, seed=0)
    (tmp_path / "images" / "a.jpg").unlink()
    (tmp_path / "labels").mkdir()
    imsave(tmp_path / "labels" / "a.jpg", np.zeros((24, 24), np.uint8), check_contrast=False)
    with pytest.raises(DataError, match=r"a.jpg: label cannot be .jpg files"):
        load_generated_set(tmp_path, cfg, ref, seed=0)
