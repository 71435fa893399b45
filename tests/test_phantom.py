"""The synthetic phantom: determinism, anatomical plausibility, tumour nesting, files and cache.

Generated at a coarse 4 mm grid (50 x 59 x 48 voxels) to stay fast; the default 1.5 mm grid is looked at
by eye and timed in scripts/phantom_montage.py.
"""

from __future__ import annotations

import json
import os

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from benchmark.data import phantom_files
from benchmark.data.phantom import MODALITIES, generate_phantom_subject, load_mni_template
from benchmark.data.phantom_files import ensure_phantom, subject_rng
from benchmark.data.tumour import TumourSpec, mass_effect_displacement
from benchmark.errors import ConfigError

VOXEL_MM = 4.0
SIX_NEIGHBOURS = ndimage.generate_binary_structure(3, 1)


@pytest.fixture(scope="module")
def template():
    return load_mni_template(VOXEL_MM)


@pytest.fixture(scope="module")
def subjects(template):
    """Three subjects that all carry tumours (tumour_free_fraction 0)."""
    return [generate_phantom_subject(template, subject_rng(7, i), max_tumours=2, tumour_free_fraction=0.0)
            for i in range(3)]


def test_same_seed_same_subject_and_different_seed_differs(template, subjects):
    again = generate_phantom_subject(template, subject_rng(7, 0), max_tumours=2, tumour_free_fraction=0.0)
    for m in MODALITIES:
        np.testing.assert_array_equal(again.images[m], subjects[0].images[m])
    np.testing.assert_array_equal(again.label, subjects[0].label)
    assert again.facts == subjects[0].facts
    other = generate_phantom_subject(template, subject_rng(8, 0), max_tumours=2, tumour_free_fraction=0.0)
    assert not np.array_equal(other.images["flair"], subjects[0].images["flair"])
    assert not np.array_equal(other.label, subjects[0].label)


def test_grid_and_brain_volume(template, subjects):
    assert template.shape == (50, 59, 48)  # 1 + floor(((197, 233, 189) - 1) / 4)
    for s in subjects:
        assert s.label.shape == s.brain.shape == template.shape
        # the MNI mask (T1 > 0.2) holds ~1.88 l incl. brainstem and outer CSF; +-5 % scaling per axis
        assert 1.4 < s.facts["brain_volume_ml"] / 1000 < 2.4


def test_tissue_fractions_are_brain_like(subjects):
    for s in subjects:
        vol = s.facts["tissue_volumes_ml"]
        brain = s.facts["brain_volume_ml"]
        assert 0.40 < vol["gm"] / brain < 0.65
        assert 0.25 < vol["wm"] / brain < 0.45
        assert 0.05 < vol["csf"] / brain < 0.20


def test_labels_are_brats2021_values_inside_the_brain(subjects):
    for s in subjects:
        assert s.label.dtype == np.uint8
        assert set(np.unique(s.label)) <= {0, 1, 2, 4}
        assert {2, 4} <= set(np.unique(s.label))
        assert not (s.label > 0)[~s.brain].any()


def test_compartments_are_nested(subjects):
    """Necrotic core is surrounded by enhancing tumour (or itself), the core by oedema or core."""
    for s in subjects:
        necrotic = s.label == 1
        core = np.isin(s.label, (1, 4))
        ring = ndimage.binary_dilation(necrotic, SIX_NEIGHBOURS) & ~necrotic
        assert np.isin(s.label[ring], (4,)).all()
        shell = ndimage.binary_dilation(core, SIX_NEIGHBOURS) & ~core
        assert (s.label[shell] == 2).all()


def test_tumour_facts_match_label_map_and_ranges(template, subjects):
    ml = VOXEL_MM**3 / 1000
    for s in subjects:
        assert 1 <= s.facts["n_tumours"] <= 2
        for value in (1, 2, 4):
            assert s.facts["label_volumes_ml"][str(value)] == pytest.approx((s.label == value).sum() * ml)
        for t in s.facts["tumours"]:
            assert 8 <= t["radii_mm"]["core"] <= 20
            assert t["radii_mm"]["core"] + 6 <= t["radii_mm"]["oedema"] <= t["radii_mm"]["core"] + 18
            # sphere of the oedema radius enlarged by the 22 % boundary noise and the white-matter reach
            assert 1.0 < t["volumes_ml"]["whole"] < 4 / 3 * np.pi * (1.6 * t["radii_mm"]["oedema"]) ** 3 / 1000
            centre = np.round(t["centre_voxel"]).astype(int)
            assert s.brain[tuple(centre)]


def test_contrasts_have_the_expected_tissue_order(subjects):
    """T1: CSF < GM < WM; T2: WM < GM < CSF; FLAIR: CSF darkest, oedema bright; T1ce: rim brightest."""
    for s in subjects:
        healthy = s.brain & (s.label == 0)
        pure = {k: healthy & (p > 0.9) for k, p in s.tissues.items()}
        med = {m: {k: np.median(s.images[m][region]) for k, region in pure.items()} for m in MODALITIES}
        assert med["t1"]["csf"] < med["t1"]["gm"] < med["t1"]["wm"]
        assert med["t2"]["wm"] < med["t2"]["gm"] < med["t2"]["csf"]
        assert med["flair"]["csf"] < med["flair"]["wm"] < med["flair"]["gm"]
        flair, t1ce = s.images["flair"], s.images["t1ce"]
        assert np.median(flair[s.label == 2]) > np.percentile(flair[healthy], 90)
        assert np.median(t1ce[s.label == 4]) > np.percentile(t1ce[healthy], 95)
        assert np.median(s.images["t1"][s.label == 2]) < med["t1"]["wm"]
        for image in s.images.values():
            assert image.dtype == np.float32 and np.isfinite(image).all()
            assert (image[~s.brain] == 0).all() and (image[s.brain] > 0).all()


def test_tumour_free_fraction_and_max_tumours(template):
    assert not generate_phantom_subject(template, subject_rng(1, 0), tumour_free_fraction=1.0).label.any()
    assert not generate_phantom_subject(template, subject_rng(1, 0), max_tumours=0).label.any()


def test_mass_effect_pushes_outward_without_folding():
    spec = TumourSpec((0.0, 0.0, 0.0), 10.0, 5.0, 20.0, 3.0, 3.0)
    r = np.linspace(0.0, 60.0, 601, dtype=np.float64)
    grid = np.stack([r, np.zeros_like(r), np.zeros_like(r)]).reshape(3, -1, 1, 1)
    shift = mass_effect_displacement(grid, [spec], np.ones((601, 1, 1)))[:, :, 0, 0]
    u = shift[0]
    assert np.allclose(shift[1:], 0) and (u >= 0).all()
    assert u.max() == pytest.approx(3.0, rel=1e-3) and r[u.argmax()] == pytest.approx(12.0, abs=0.1)
    assert (np.diff(r - u) > 0).all()  # the sampled position increases with r: no folding


def test_files_layout_affine_and_manifest(tmp_path):
    root = ensure_phantom(tmp_path, n_subjects=2, voxel_size_mm=VOXEL_MM, max_tumours=2,
                          tumour_free_fraction=0.0, seed=3)
    manifest = json.loads((root / "phantom.json").read_text())
    assert manifest["parameters"]["seed"] == 3 and set(manifest["subjects"]) == {"Phantom_0000", "Phantom_0001"}
    for case in ("Phantom_0000", "Phantom_0001"):
        seg = nib.load(root / case / f"{case}_seg.nii.gz")
        assert seg.get_data_dtype() == np.uint8 and set(np.unique(np.asarray(seg.dataobj))) <= {0, 1, 2, 4}
        for m in MODALITIES:
            img = nib.load(root / case / f"{case}_{m}.nii.gz")
            assert img.get_data_dtype() == np.float32 and img.shape == seg.shape
            assert img.header.get_zooms() == (VOXEL_MM,) * 3
            np.testing.assert_allclose(img.affine[:3, :3], np.eye(3) * VOXEL_MM)
            np.testing.assert_allclose(img.affine[:3, 3], [-98.0, -134.0, -72.0])
            assert nib.aff2axcodes(img.affine) == ("R", "A", "S")
    same = generate_phantom_subject(load_mni_template(VOXEL_MM), subject_rng(3, 1), tumour_free_fraction=0.0)
    np.testing.assert_array_equal(np.asarray(nib.load(root / "Phantom_0001" / "Phantom_0001_seg.nii.gz").dataobj),
                                  same.label)


def test_cache_reuses_complete_folder_and_keys_on_parameters(tmp_path, monkeypatch):
    kwargs = dict(n_subjects=1, voxel_size_mm=VOXEL_MM, max_tumours=1, tumour_free_fraction=0.0, seed=0)
    root = ensure_phantom(tmp_path, **kwargs)
    stamp = (root / "phantom.json").stat().st_mtime_ns

    def must_not_run(*args, **kw):
        raise AssertionError("regenerated a cached phantom")

    monkeypatch.setattr(phantom_files, "write_phantom", must_not_run)
    assert ensure_phantom(tmp_path, **kwargs) == root
    assert (root / "phantom.json").stat().st_mtime_ns == stamp
    with pytest.raises(AssertionError, match="regenerated"):
        ensure_phantom(tmp_path, **{**kwargs, "seed": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == [root.name]  # no half folder left behind


def test_interrupted_generation_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    kwargs = dict(n_subjects=2, voxel_size_mm=VOXEL_MM, max_tumours=1, tumour_free_fraction=1.0, seed=0)
    calls = []
    real_write = phantom_files.write_subject

    def crash_on_second(folder, case, subject, affine):
        calls.append(case)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_write(folder, case, subject, affine)

    monkeypatch.setattr(phantom_files, "write_subject", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        ensure_phantom(tmp_path, **kwargs)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(phantom_files, "write_subject", real_write)
    root = ensure_phantom(tmp_path, **kwargs)
    assert (root / "Phantom_0001" / "Phantom_0001_flair.nii.gz").is_file()


@pytest.mark.parametrize(
    ("field", "value"),
    [("n_subjects", 0), ("voxel_size_mm", 0.1), ("max_tumours", -1), ("tumour_free_fraction", 1.5), ("seed", "x")],
)
def test_bad_parameters_raise_config_error_naming_them(tmp_path, field, value):
    kwargs = dict(n_subjects=1, voxel_size_mm=VOXEL_MM, max_tumours=1, tumour_free_fraction=0.0, seed=0)
    with pytest.raises(ConfigError, match=field):
        ensure_phantom(tmp_path, **{**kwargs, field: value})


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_damaged_cache_is_detected_and_rebuilt(tmp_path, damage):
    """A cached phantom counts only when every file matches its checksum; otherwise it is generated again."""
    kwargs = dict(n_subjects=2, voxel_size_mm=VOXEL_MM, max_tumours=1, tumour_free_fraction=0.0, seed=0)
    root = ensure_phantom(tmp_path, **kwargs)
    listed = json.loads((root / "phantom.json").read_text())["files"]
    assert len(listed) == 2 * (len(MODALITIES) + 1)
    seg = root / "Phantom_0001" / "Phantom_0001_seg.nii.gz"
    original = seg.read_bytes()
    if damage == "truncate":
        seg.write_bytes(original[: len(original) // 2])
    else:
        seg.unlink()
    assert phantom_files.verify_phantom(root) is not None
    assert ensure_phantom(tmp_path, **kwargs) == root
    assert seg.read_bytes() == original and phantom_files.verify_phantom(root) is None


def test_partial_folders_of_killed_runs_are_removed(tmp_path):
    dead_pid = 2**22 + 12345  # above the default pid_max: no process has it
    dead = tmp_path / f".phantom_abc.partial-{dead_pid}-deadbeef"
    live = tmp_path / f".phantom_abc.partial-{os.getpid()}-cafecafe"
    for folder in (dead, live):
        (folder / "Phantom_0000").mkdir(parents=True)
    phantom_files.remove_stale_partials(tmp_path)
    assert not dead.exists() and live.exists()
