"""Vessel scores on hand-made trees: clDice against the reference formula (Shit et al. 2021, the authors'
numpy code re-typed here), the component (Betti-0) error, the per-subject vessel table and its result rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from skimage.morphology import skeletonize

from benchmark.study.runner import dice_rows
from segmentation.checks import check_config
from segmentation.evaluation import score_label_maps
from segmentation.vessel_scores import cldice, component_error, piece_count
from tests.vessel_trees import CONF, tube, vessel_imageset, y_tree


def reference_cldice(v_p: np.ndarray, v_l: np.ndarray) -> float:
    """clDice as in github.com/jocpae/clDice (cldice_metric/cldice.py): cl_score(v, s) = sum(v s) / sum(s)."""
    def cl_score(v, s):
        return np.sum(v * s) / np.sum(s)
    tprec = cl_score(v_p, skeletonize(v_l))
    tsens = cl_score(v_l, skeletonize(v_p))
    return 2 * tprec * tsens / (tprec + tsens)


def pairs(spatial_dims: int):
    label, parts = y_tree(48, spatial_dims)
    ref = label > 0
    shape = ref.shape
    yield "identical", ref, ref
    yield "narrow branch missing", ref & ~(parts["narrow"] & ~parts["trunk"]), ref
    yield "shifted by 2", np.roll(ref, 2, axis=-1), ref
    yield "thicker", ref | tube(shape, (24,) * spatial_dims, (44,) * spatial_dims, 1.0), ref
    yield "trunk only vs tree", parts["trunk"], ref
    cut = ref.copy()
    cut[..., 30:33, :] = False
    yield "gap across both branches", cut, ref


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_cldice_matches_the_reference_formula_on_hand_made_trees(spatial_dims):
    seen = set()
    for name, pred, ref in pairs(spatial_dims):
        ours, theirs = cldice(pred, ref), reference_cldice(pred.astype(float), ref.astype(float))
        assert ours == pytest.approx(theirs, abs=1e-12), name
        seen.add(round(ours, 6))
    assert len(seen) >= 5  # the pairs give different values: the comparison is not trivially 1 == 1


def test_cldice_hand_values_and_empty_masks():
    label, parts = y_tree(48, 2)
    ref = label > 0
    assert cldice(ref, ref) == 1.0
    trunk = parts["trunk"]
    # every voxel of the trunk's centreline lies in the tree: precision 1, sensitivity = the reference share
    line = skeletonize(ref)
    sensitivity = (line & trunk).sum() / line.sum()
    assert cldice(trunk, ref) == pytest.approx(2 * sensitivity / (1 + sensitivity))
    empty = np.zeros_like(ref)
    assert cldice(empty, empty) == 1.0 and cldice(empty, ref) == 0.0 and cldice(ref, empty) == 0.0
    assert cldice(np.roll(ref, 30, axis=0) & ~ref, ref) == 0.0


def test_component_error_counts_gaps_and_specks():
    label, _ = y_tree(48, 3)
    ref = label > 0
    assert piece_count(ref) == 1 and component_error(ref, ref) == 0
    cut = ref.copy()
    cut[:, 30:33, :] = False  # across both branches: trunk+fork piece, two branch ends, the twig
    assert component_error(cut, ref) == piece_count(cut) - 1 >= 2
    speck = ref.copy()
    speck[2, 2, 2] = True
    assert component_error(speck, ref) == 1
    diagonal = np.zeros((5, 5, 5), bool)
    diagonal[1, 1, 1] = diagonal[2, 2, 2] = True  # corner-joined: one piece with full connectivity
    assert piece_count(diagonal) == 1


def test_vessel_table_pools_items_per_subject_and_scores_every_label_above_zero():
    data = vessel_imageset(n=2, size=40, spatial_dims=3)
    data.subject_ids[:] = ["a", "a"]
    data.labels[1, 0][data.labels[1, 0] > 0] = 3  # another artery class: still vessel
    predicted = data.labels.clone().long()
    predicted[1] = 0  # the second item missed entirely
    table = score_label_maps(predicted, data, structures="vessel")
    assert list(table.columns) == ["subject_id", "n_items", "dice_vessel", "cldice_vessel", "hd95_vessel",
                                   "components_vessel", "ref_voxels_vessel"]
    ref = (data.labels > 0).numpy()
    assert table.loc[0, "dice_vessel"] == pytest.approx(2 * ref[0].sum() / (ref[0].sum() + ref.sum()))
    assert table.loc[0, "cldice_vessel"] == pytest.approx(2 * 1.0 * 0.5 / 1.5, abs=1e-9)  # items alike: half the line
    assert table.loc[0, "components_vessel"] == 0.5  # |0 - 1| on item 2, 0 on item 1
    perfect = score_label_maps(data.labels.long(), data, structures="vessel")
    assert perfect.loc[0, ["dice_vessel", "cldice_vessel"]].tolist() == [1.0, 1.0]
    assert perfect.loc[0, "hd95_vessel"] == 0.0


def test_vessel_rows_are_dice_targets_and_component_error_is_lower_better():
    per_case = pd.DataFrame({"subject_id": ["a", "b"], "dice_vessel": [0.8, 0.6], "cldice_vessel": [0.9, 0.7],
                             "hd95_vessel": [1.0, 2.0], "components_vessel": [0.0, 2.0], "ref_voxels_vessel": [5, 6]})
    rows, cases = dice_rows(per_case, "robustness", 2, 2)
    kinds = {r["quantity"]: (r["kind"], r["higher_is_better"]) for r in rows}
    assert kinds == {"robustness/dice_vessel": ("dice", True), "robustness/cldice_vessel": ("dice", True),
                     "robustness/hd95_vessel": ("hd95", False), "robustness/components_vessel": ("components", False)}
    assert len(cases) == 8


def test_structures_key_is_checked(tmp_path):
    cfg = OmegaConf.load(CONF / "segmentation" / "unet2d.yaml")
    cfg.structures = "vessel"
    check_config(cfg)
    from tests.test_bad_config import call  # the choice is the schema's (benchmark.config_schema)

    code, err = call("segmentation.structures=arteries", f"output_dir={tmp_path / 'out'}",
                     f"data.cache_dir={tmp_path / 'cache'}")
    assert code == 2 and "segmentation.structures=arteries is not one of tumour, vessel" in err, err


def test_tumour_scores_are_unchanged_by_default():
    data = vessel_imageset(n=1, size=32, spatial_dims=3)
    table = score_label_maps(data.labels.long(), data)
    assert "dice_WT" in table.columns and "cldice_vessel" not in table.columns
