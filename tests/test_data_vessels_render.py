"""Rendering real vessel masks: only the column the study crops is rendered, and a rendering worker that dies
leaves the other subjects rendered and its own rendered in the calling process."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from benchmark.data.vessels.anatomy import coarse_grid
from benchmark.data.vessels.real import head_column, render_mask_file
from benchmark.data.vessels.sources import render_all, rendered_extent_mm
from tests.test_data_readers import data_config


@dataclass
class DyingRenderer:
    """Writes `<index>.txt`; case `dies` kills its worker process (as the system does when memory runs out)."""

    parent: int
    dies: int

    def __call__(self, folder: Path, index: int) -> dict[str, int]:
        if index == self.dies and os.getpid() != self.parent:
            os._exit(1)
        (folder / f"{index}.txt").write_text(str(os.getpid()))
        return {"index": index}


def test_a_dead_worker_leaves_its_subjects_to_the_calling_process(tmp_path: Path) -> None:
    facts = render_all(DyingRenderer(os.getpid(), dies=1), tmp_path, 4, workers=2)
    assert facts == [{"index": i} for i in range(4)]
    assert sorted(p.name for p in tmp_path.glob("*.txt")) == ["0.txt", "1.txt", "2.txt", "3.txt"]
    assert (tmp_path / "1.txt").read_text() == str(os.getpid())


def test_render_all_in_process_with_one_worker(tmp_path: Path) -> None:
    assert render_all(DyingRenderer(-1, dies=-1), tmp_path, 3, workers=1) == [{"index": i} for i in range(3)]


def _grid(shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> np.ndarray:
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = (-50.0, -60.0, -20.0)
    return affine


@pytest.mark.parametrize("centre", [(100, 80), (60, 110)])
def test_head_column_is_the_extent_around_the_heads_centre(centre: tuple[int, int]) -> None:
    shape, spacing = (200, 180, 12), (0.5, 0.5, 0.8)
    affine = _grid(shape, spacing)
    x, y = np.indices(shape[:2])
    fine_head = np.repeat((((x - centre[0]) / 50.0) ** 2 + ((y - centre[1]) / 40.0) ** 2 <= 1)[:, :, None], 12, 2)
    coarse_shape, coarse_affine = coarse_grid(shape, affine)
    factor = np.round(np.diag(coarse_affine)[:3] / np.array(spacing)).astype(int)
    coarse_head = fine_head[::factor[0], ::factor[1], ::factor[2]][:, :, : coarse_shape[2]]
    box = head_column(coarse_head, coarse_affine, affine, shape, 40.0)
    assert box[2] == slice(0, 12)
    for axis in (0, 1):
        assert box[axis].stop - box[axis].start in (81, 82)  # 40 mm at 0.5 mm, both edges kept
        middle = (box[axis].start + box[axis].stop - 1) / 2
        assert abs(middle - centre[axis]) <= 1.5 * factor[axis]  # within a coarse voxel of the head's centre
    assert head_column(coarse_head, coarse_affine, affine, shape, None) == (slice(0, 200), slice(0, 180), slice(0, 12))


def test_rendered_extent_follows_the_field_of_view() -> None:
    assert rendered_extent_mm(data_config("data=vessel_phantom")) == 90.0  # fov_mm 80 + 5 mm a side
    assert rendered_extent_mm(data_config("data=vessel_phantom", "data.fov_mm=null")) is None
    assert rendered_extent_mm(data_config("data=vessel_phantom", "data.fov_mm=[40,100,60]")) == 110.0


@pytest.mark.slow
def test_column_render_matches_the_whole_render_inside_it(tmp_path: Path) -> None:
    """A 120 x 120 mm tree rendered whole and as a 50 mm column: the column holds the same vessels at the same
    world positions, as bright (the inflow path is traced through the whole mask: the branch entering the
    column from outside keeps its brightness)."""
    shape, spacing = (240, 240, 20), (0.5, 0.5, 0.8)
    mask = np.zeros(shape, np.uint8)
    x, y = np.indices(shape[:2])
    for cx, cy in ((120, 150), (30, 100), (200, 200)):
        mask[(x - cx) ** 2 + (y - cy) ** 2 <= 9] = 1  # vertical arteries, inflow from the lowest slice
    mask[30:130, 97:104, 10:13] = 1  # a branch from the artery outside the column into it
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = (-60.0, -60.0, -40.0)
    path = tmp_path / "tree.nii.gz"
    nib.save(nib.Nifti1Image(mask, affine), path)
    whole = render_mask_file(path, None, np.random.default_rng(0))
    column = render_mask_file(path, None, np.random.default_rng(0), extent_mm=50.0)
    box = tuple(slice(*b) for b in column.facts["rendered_box"])
    assert column.tof.shape == column.vessels.shape == column.head.shape == mask[box].shape
    assert column.tof.shape[0] < 120 and column.tof.shape[2] == 20
    assert np.array_equal(column.vessels, whole.vessels[box])
    corner = np.array([b.start for b in box] + [1.0])
    assert np.allclose(column.affine @ np.array([0, 0, 0, 1.0]), whole.affine @ corner)
    inside = column.vessels.astype(bool)
    assert np.median(column.tof[inside]) == pytest.approx(np.median(whole.tof[box][inside]), rel=0.05)
    branch = np.zeros(shape, bool)
    branch[80:130, 98:103, 11] = True  # the branch's core inside the column, reached from outside it
    assert np.median(column.tof[branch[box]]) == pytest.approx(np.median(whole.tof[branch]), rel=0.05)
    tissue = column.head & ~inside
    assert np.median(column.tof[tissue]) == pytest.approx(np.median(whole.tof[box][tissue]), rel=0.05)


def test_vessel_scores_count_for_every_source_of_real_masks() -> None:
    """Real masks come as a named source whose label map (0/1) rules out the tumour regions ET, NCR and ED: it
    must not rule out the vessel, which every subject with a label has."""
    from benchmark.data.labels import scored_structures
    from benchmark.study.runner import SubjectSources, dice_rows

    per_case = pd.DataFrame({"subject_id": ["kdxf", "topcow"], "dice_vessel": [0.8, 0.6],
                             "cldice_vessel": [0.7, 0.5], "dice_ET": [0.0, 0.0]})
    structures = frozenset(scored_structures({0: 0, 1: 1}))
    sources = SubjectSources({"kdxf": "vessels", "topcow": "vessels"}, {"vessels": structures})
    rows, cases = dice_rows(per_case, "robustness", 2, 2, sources)
    values = {row["quantity"]: row["value"] for row in rows}
    assert values["robustness/dice_vessel"] == pytest.approx(0.7)
    assert values["robustness/cldice_vessel"] == pytest.approx(0.6)
    assert np.isnan(values["robustness/dice_ET"])  # the source still cannot contain enhancing tumour
    assert {c["case_id"] for c in cases if c["quantity"] == "robustness/dice_vessel"} == {"kdxf", "topcow"}
