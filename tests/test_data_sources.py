"""Any layout (glob patterns, manifest files), provided brain masks, field of view in mm, already
normalised or integer intensities, and results keyed on the content of the data."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from benchmark.data.labels import PRESETS, resolve_label_map
from benchmark.data.prepare import prepare_data
from benchmark.errors import ConfigError, DataError
from tests import niftis
from tests.test_data_readers import SMALL, data_config


def write_deepmedic(root: Path, n_cases: int = 5, background: float = -2.5) -> Path:
    """DeepMedic's layout: <split>/<case>/Flair_subtrMeanDivStd.nii.gz (z-scored inside the brain, a constant
    negative background), brainmask.nii.gz (0 / 0.99999997) and OTMultiClass.nii.gz (BRATS 2015 labels)."""
    for i in range(n_cases):
        image, labels = niftis.synthetic_case(i)
        brain = image > 0
        inside = image[brain]
        zscored = np.where(brain, (image - inside.mean()) / inside.std(), background).astype(np.float32)
        brats2015 = np.where(labels == 3, 4, labels).astype(np.uint8)
        brats2015[(labels == 2) & (np.indices(labels.shape)[0] % 2 == 0)] = 3  # some non-enhancing tumour
        case = root / ("train" if i < 3 else "test") / f"pat{i:04d}_1"
        niftis.save(zscored, case / "Flair_subtrMeanDivStd.nii.gz")
        niftis.save(brain.astype(np.float64) * 0.9999999701976776, case / "brainmask.nii.gz")
        niftis.save(brats2015.astype(np.float32), case / "OTMultiClass.nii.gz")
    return root


def test_deepmedic_layout_loads_with_one_preset(tmp_path: Path) -> None:
    root = write_deepmedic(tmp_path / "dm")
    cfg = data_config("data=deepmedic", f"data.root={root}", *SMALL)
    data = prepare_data(cfg, seed=0)
    ids = set(data.train.subject_ids) | set(data.val.subject_ids) | set(data.test.subject_ids)
    assert ids == {f"pat{i:04d}_1" for i in range(5)}
    labels = torch.cat([data.train.labels, data.val.labels, data.test.labels])
    assert set(labels.unique().tolist()) == {0, 1, 2, 3}  # BRATS 2015's 3 joined the core, 4 became 3
    # the provided mask is the brain (threshold 0.5 on 0.99999997), not the z-scored background
    assert bool(data.train.brain_masks.any()) and not bool((data.train.images[~data.train.brain_masks] != 0).any())


def test_provided_brain_mask_is_used_instead_of_the_derived_one(tmp_path: Path) -> None:
    root = write_deepmedic(tmp_path / "dm", n_cases=3)
    for mask in root.glob("*/*/brainmask.nii.gz"):  # keep only the left half of each brain
        volume = nib.load(mask)
        data = np.asarray(volume.dataobj).copy()
        data[data.shape[0] // 2:] = 0
        nib.save(nib.Nifti1Image(data, volume.affine), mask)
        labels = nib.load(mask.parent / "OTMultiClass.nii.gz")
        cut = np.asarray(labels.dataobj).copy()
        cut[cut.shape[0] // 2:] = 0
        nib.save(nib.Nifti1Image(cut, labels.affine), mask.parent / "OTMultiClass.nii.gz")
    half = prepare_data(data_config("data=deepmedic", f"data.root={root}", *SMALL), seed=0)
    derived = prepare_data(data_config("data=deepmedic", f"data.root={root}", "data.patterns.brain_mask=null",
                                       *SMALL), seed=0)
    assert half.train.brain_masks.float().mean() < 0.7 * derived.train.brain_masks.float().mean()


def test_manifest_lists_cases_with_relative_paths(tmp_path: Path) -> None:
    root = write_deepmedic(tmp_path / "dm", n_cases=4)
    rows = ["subject\tflair\tlabel\tbrain_mask"]
    for case in sorted(root.glob("*/*")):
        rel = case.relative_to(tmp_path).as_posix()
        rows.append(f"{case.name}\t{rel}/Flair_subtrMeanDivStd.nii.gz\t{rel}/OTMultiClass.nii.gz\t{rel}/brainmask.nii.gz")
    manifest = tmp_path / "cases.tsv"
    manifest.write_text("\n".join(rows) + "\n")
    by_manifest = prepare_data(data_config("data=manifest", f"data.manifest={manifest}", "data.label_map=brats2015",
                                           *SMALL), seed=0)
    by_pattern = prepare_data(data_config("data=deepmedic", f"data.root={root}", *SMALL), seed=0)
    assert by_manifest.fingerprint == by_pattern.fingerprint  # same content, whatever the layout


@pytest.mark.parametrize(
    ("text", "message"),
    [("subject,flair\na,x.nii.gz\nb,x.nii.gz\nc,x.nii.gz\n", "x.nii.gz: the image file does not exist"),
     ("subject,t1\na,x.nii.gz\n", "columns ['flair'] are missing"),
     ("subject,flair\na,x.nii.gz\na,y.nii.gz\n", "subject 'a' is empty or listed twice")],
)
def test_bad_manifest_names_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    manifest = tmp_path / "cases.csv"
    manifest.write_text(text)
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        prepare_data(data_config("data=manifest", f"data.manifest={manifest}", "data.missing_label=empty", *SMALL), 0)


def test_pattern_without_subject_placeholder_is_a_config_error(tmp_path: Path) -> None:
    root = write_deepmedic(tmp_path / "dm", n_cases=3)
    with pytest.raises(ConfigError, match=r"must hold \{subject\} exactly once"):
        prepare_data(data_config("data=deepmedic", f"data.root={root}", "data.patterns.label=seg.nii.gz", *SMALL), 0)


def test_field_of_view_sets_the_pixel_grid(tmp_path: Path) -> None:
    """The same brain at 1.5 mm and at 1 mm fills the same share of a 48 mm field of view."""
    coarse = niftis.write_folder(tmp_path / "coarse", n_cases=3)
    fine = tmp_path / "fine"
    for path in coarse.glob("*/*.nii.gz"):
        volume = nib.load(path)
        affine = volume.affine.copy()
        affine[:3, :3] *= 2 / 3  # same voxels, 1 mm: the head is 2/3 the size
        niftis.save(np.asarray(volume.dataobj), fine / path.relative_to(coarse), spacing=(1.0, 1.0, 4 / 3))
    common = ["data=folder", "data.modality=image", "data.size=[24,24]", "data.fov_mm=48", "data.slices.policy=brain",
              "data.slices.per_subject=20", "data.slices.min_brain_fraction=0"]  # every slice of both
    a = prepare_data(data_config(*common, f"data.root={coarse}"), 0)
    b = prepare_data(data_config(*common, f"data.root={fine}"), 0)
    assert a.train.spacing == pytest.approx((2.0, 2.0)) and b.train.spacing == pytest.approx((2.0, 2.0))
    share = [float(d.train.brain_masks.float().mean()) for d in (a, b)]
    assert share[1] == pytest.approx(share[0] * (2 / 3) ** 2, rel=0.2)


@pytest.mark.parametrize("dtype", ["int16", "uint8", "zscored"])
def test_integer_and_negative_intensities_prepare_the_same_anatomy(tmp_path: Path, dtype: str) -> None:
    """Raw int16, uint8 and z-scored (negative, constant background) versions of one dataset give the same
    brain masks and nearly the same [0, 1] images as the float original."""
    reference = niftis.write_folder(tmp_path / "float", n_cases=3)
    other = tmp_path / dtype
    for path in reference.glob("*/*.nii.gz"):
        data = np.asarray(nib.load(path).dataobj)
        if path.parent.name == "images":
            brain = data > 0
            if dtype == "int16":
                data = np.round(data * 1000).astype(np.int16)
            elif dtype == "uint8":
                data = np.round(data / data.max() * 255).astype(np.uint8)
            else:
                data = np.where(brain, (data - data[brain].mean()) / data[brain].std(), -3.0).astype(np.float32)
        niftis.save(data, other / path.relative_to(reference))
    common = ["data=folder", "data.modality=image", *SMALL]
    a = prepare_data(data_config(*common, f"data.root={reference}"), 0)
    b = prepare_data(data_config(*common, f"data.root={other}"), 0)
    assert torch.equal(a.train.brain_masks, b.train.brain_masks) and torch.equal(a.train.labels, b.train.labels)
    assert float((a.train.images - b.train.images).abs().max()) < (0.02 if dtype == "uint8" else 1e-3)


def test_label_map_presets_and_plain_mappings() -> None:
    assert resolve_label_map("brats2015") == {0: 0, 1: 1, 2: 2, 3: 1, 4: 3}
    assert resolve_label_map({"0": 0, "1": "2"}) == {0: 0, 1: 2}
    assert resolve_label_map(None) is None and set(PRESETS) == {"brats2015", "brats2021", "brats2023", "msd", "binary",
                                                                             "brats2012"}


def test_changed_file_changes_the_fingerprint_and_the_cells_recompute(tmp_path: Path) -> None:
    """A cell's hash covers the prepared content: an edited image file (same name, same config) recomputes
    its cells; an unchanged rerun reads the prepared subjects from the cache and keeps the same hash."""
    from benchmark.data.cache import SubjectCache

    root = niftis.write_folder(tmp_path / "data", n_cases=3)
    cfg = data_config("data=folder", "data.modality=image", f"data.root={root}", f"data.cache_dir={tmp_path / 'c'}",
                      *SMALL)
    first = prepare_data(cfg, 0)
    entries = sorted(SubjectCache(tmp_path / "c").root.glob("*/*.npz"))
    assert len(entries) == 3
    again = prepare_data(cfg, 0)
    assert again.fingerprint == first.fingerprint
    assert sorted(SubjectCache(tmp_path / "c").root.glob("*/*.npz")) == entries  # nothing prepared again
    image, _ = niftis.synthetic_case(0)
    niftis.save(image * 0.5 + 0.3 * (image > 0), root / "images" / "case0.nii.gz")  # edited in place
    edited = prepare_data(cfg, 0)
    assert edited.fingerprint != first.fingerprint
    assert len(sorted(SubjectCache(tmp_path / "c").root.glob("*/*.npz"))) == 4


def test_cell_hashes_follow_the_data_content_not_the_data_config(tmp_path: Path) -> None:
    from dataclasses import replace

    from hydra import compose, initialize_config_dir

    from benchmark.cli import CONFIG_DIR
    from benchmark.data.imageset import PreparedData
    from benchmark.study.runner import StudyRunner
    from perturbations import instantiate_perturbations

    root = niftis.write_folder(tmp_path / "data", n_cases=3)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=["data=folder", "data.modality=image", f"data.root={root}", *SMALL,
                                           "perturbation=[gaussian_noise]", f"data.cache_dir={tmp_path / 'c'}"])
    data = prepare_data(cfg.data, 0)
    brighter = replace(data.test, images=data.test.images * 0.9)
    changed = PreparedData(data.train, data.val, brighter, summary={})
    perturbations = instantiate_perturbations(cfg.perturbation)

    def hashes(prepared: PreparedData) -> list[str]:
        runner = StudyRunner(cfg, prepared, torch.device("cpu"), tmp_path / "out", perturbations, None)
        return [cell.config_hash for cell in runner.cells()]

    assert hashes(data) == hashes(PreparedData(data.train, data.val, data.test, summary={}))
    assert all(a != b for a, b in zip(hashes(data), hashes(changed), strict=True))
