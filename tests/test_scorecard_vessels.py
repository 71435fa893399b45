"""The scorecard in vessel terms: vessel Dice and clDice as (c) targets, harm by either for (a) and (b), and the
tumour scorecard unchanged."""

from __future__ import annotations

import pandas as pd

from reports.scorecard import TARGETS, VESSEL_TARGETS, dice_harm, harm_targets, question_keys, targets_for
from reports.sections import verdict_findings


def intervals() -> pd.DataFrame:
    rows = []
    for quantity, cells in {
        "robustness/dice_vessel": {("clean", 0): (0.80, 0.84), ("occlusion", 5): (0.79, 0.83),
                                   ("aneurysm", 5): (0.60, 0.70), ("noise", 5): (0.79, 0.85)},
        "robustness/cldice_vessel": {("clean", 0): (0.85, 0.90), ("occlusion", 5): (0.60, 0.70),
                                     ("aneurysm", 5): (0.84, 0.88), ("noise", 5): (0.86, 0.90)},
    }.items():
        rows += [{"quantity": quantity, "perturbation": p, "severity": s, "boot_lo": lo, "boot_hi": hi}
                 for (p, s), (lo, hi) in cells.items()]
    return pd.DataFrame(rows)


def results() -> pd.DataFrame:
    return pd.DataFrame({"perturbation": ["clean", "occlusion", "aneurysm", "noise"],
                         "family": ["", "morphological", "morphological", "noise"],
                         "quantity": ["robustness/dice_vessel"] * 4})


def test_vessel_studies_get_vessel_targets_and_tumour_studies_keep_theirs():
    assert targets_for(["ssim", "robustness/dice_vessel", "robustness/cldice_vessel"]) == VESSEL_TARGETS
    assert targets_for(["ssim", "robustness/dice_WT"]) == TARGETS
    assert harm_targets(["robustness/dice_vessel"]) == ("robustness/dice_vessel", "robustness/cldice_vessel")
    assert harm_targets(["robustness/dice_WT"]) == ("robustness/dice_WT",)


def test_an_edit_is_harmful_when_either_vessel_dice_or_cldice_drops():
    harm = dice_harm(intervals(), results(), harm_targets(["robustness/dice_vessel"])).set_index("perturbation")
    assert harm.loc["occlusion", "harmed"] and harm.loc["aneurysm", "harmed"]  # clDice only / Dice only
    assert not harm.loc["noise", "harmed"] and harm.loc["noise", "unharmed"]
    assert not harm.loc["occlusion", "unharmed"]
    alone = dice_harm(intervals(), results(), "robustness/dice_vessel").set_index("perturbation")
    assert not alone.loc["occlusion", "harmed"]  # Dice alone misses the occlusion


def test_findings_name_the_cldice_questions_of_a_vessel_card():
    card = pd.DataFrame({"metric": ["fid", "vessel_cnr"], "kind": ["distribution", "no_reference"],
                         **{key: ["no", "yes"] for key in ["a", "b", *VESSEL_TARGETS, "d"]}})
    assert question_keys(card) == ["a", "b", "c_robustness", "c_robustness_cldice", "c_utility",
                                   "c_utility_cldice", "d"]
    findings = " ".join(verdict_findings(card))
    assert "Track robustness clDice: vessel_cnr; do not: fid." in findings
    assert "Yes to all four questions: vessel_cnr." in findings
    tumour_card = card.drop(columns=["c_robustness_cldice", "c_utility_cldice"])
    assert "clDice" not in " ".join(verdict_findings(tumour_card))
