"""The perturbation interface's contract, checked on two small perturbations defined here: severity
validation, end-point schedules, seeding by item identity, identity at severity 0, skipped items, clamping,
provenance of set perturbations and the training-set checks. Exact values (no tolerance): the schedule is
linear between the end points, rounded to 10 decimals so that recorded parameters print cleanly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from benchmark.data.imageset import ImageSet
from benchmark.errors import ConfigError, DataError
from perturbations.base import (
    PerturbedSet,
    SamplePerturbation,
    SetPerturbation,
    at_severity,
    check_severities,
    check_severity,
    end_points,
    item_keys,
    item_rng,
    item_seed,
)
from perturbations.synthetic import synthetic_imageset


class AddNoise(SamplePerturbation):
    """Adds `amount` x uniform noise in the brain; skips items without tumour; marks label 9 -> 1 where noisy."""

    family = "noise"

    def __init__(self, amount=(0.2, 1.0)) -> None:
        super().__init__()
        self.amount = end_points("amount", amount, low=0.0)

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"amount": at_severity(self.amount, severity)}

    def perturb_item(self, image, label, mask, params, rng, spacing):
        if not bool((label > 0).any()):
            return None
        noise = torch.from_numpy(rng.uniform(size=tuple(image.shape))).to(image)
        return image + params["amount"] * noise * mask, torch.where(mask, label, torch.zeros_like(label))


class Shuffle(SetPerturbation):
    """Replaces the first `count` items by training items (needs the training set), shuffles the rest."""

    family = "memorisation"
    needs_train = True

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"count": severity}

    def build_set(self, clean, params, rng, train):
        order = torch.from_numpy(rng.permutation(len(clean)))
        count = params["count"]
        data = ImageSet.concatenate([train.subset(range(count)), clean.subset(order[count:])])
        reference = torch.cat([torch.full((count,), -1), order[count:]]).int()
        sources = [f"train:{i}" for i in range(count)] + [f"clean:{i}" for i in order[count:].tolist()]
        return data, reference, sources


@pytest.fixture(scope="module")
def clean() -> ImageSet:
    return synthetic_imageset(n=6, size=24, seed=0, tumour_free=(2,))


@pytest.mark.parametrize("severity", [0, 1, 5, np.int64(3)])
def test_valid_severities(severity):
    assert check_severity(severity) == int(severity) and type(check_severity(severity)) is int


@pytest.mark.parametrize("severity", [-1, 6, True, 2.0, "3", None])
def test_invalid_severities_are_config_errors(severity):
    with pytest.raises(ConfigError, match=rf"^severity must be an integer from 0 \(identity\) to 5, got {severity!r}$"):
        check_severity(severity)
    with pytest.raises(ConfigError):
        check_severities([1, severity])
    assert check_severities([0, 3, 5]) == [0, 3, 5]


def test_end_points_forms_and_linear_schedule():
    assert end_points("a", 0.3) == (0.3, 0.3)
    assert end_points("a", [1, 5]) == (1.0, 5.0)
    assert end_points("a", (1, 2, 4, 8, 16)) == (1.0, 2.0, 4.0, 8.0, 16.0)
    assert [at_severity((1.0, 5.0), s) for s in range(1, 6)] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert [at_severity((1.0, 2.0, 4.0, 8.0, 16.0), s) for s in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert [at_severity((0.2, 1.3), s) for s in (2, 4)] == [0.475, 1.025]  # unrounded: 0.47500000000000003
    assert at_severity((0.1, 0.7), 4) == 0.55 and at_severity((0.05, 0.25), 3) == 0.15
    assert at_severity((5.0, 1.0), 2) == 4.0  # decreasing schedules too


def test_end_points_bounds_are_inclusive_and_errors_name_the_parameter():
    assert end_points("p", [0.0, 1.0], low=0.0, high=1.0) == (0.0, 1.0)
    assert end_points("n", [2, 4], integer=True) == (2.0, 4.0)
    cases = [
        ((-0.01, 1), {"low": 0.0}, r"^parameter 'p' = \[-0.01, 1\]: every value must lie in \[0.0, inf\], got -0.01$"),
        ((0.5, 1.5), {"high": 1.0}, r"^parameter 'p' = \[0.5, 1.5\]: every value must lie in \[-inf, 1.0\], got 1.5$"),
        ((0.5, float("nan")), {}, r"^parameter 'p' = \[0.5, nan\]: every value must lie in \[-inf, inf\], got nan$"),
        ((1, 2.5), {"integer": True}, r"^parameter 'p' = \[1, 2.5\] must hold whole numbers$"),
        (1, {"low": 2}, r"^parameter 'p' = 1: every value must lie in \[2, inf\], got 1.0$"),  # one number, as in YAML
        (1.5, {"high": 1.0}, r"^parameter 'p' = 1.5: every value must lie in \[-inf, 1.0\], got 1.5$"),
        (2.5, {"integer": True}, r"^parameter 'p' = 2.5 must hold whole numbers$"),
        ((1, 2, 3), {}, r"^parameter 'p' needs 2 end points or 5 per-level values, got 3: \(1, 2, 3\)$"),
        ("high", {}, r"^parameter 'p' must be a number, \[at severity 1, at severity 5\] or five values, got 'high'$"),
        (True, {}, r"^parameter 'p' must be a number"),
        (None, {}, r"^parameter 'p' must be a number"),
    ]
    for value, bounds, message in cases:
        with pytest.raises(ConfigError, match=message):
            end_points("p", value, **bounds)


def test_item_seeds_are_stable_63_bit_and_depend_on_every_part():
    # Recorded once: stored results and cached perturbations depend on these streams staying the same.
    assert item_seed(0, "gaussian_noise", "syn000/0#0") == 5652773413912456956
    assert item_seed(7, "ghosting", "BraTS-001/42#1") == 6575924404227984358
    seeds = {item_seed(s, n, k) for s in (0, 1, 2**32) for n in ("a", "b") for k in ("x/0#0", "x/0#1")}
    assert len(seeds) == 12 - 4  # the seed is taken modulo 2**32: seeds 0 and 2**32 share their 4 streams
    assert all(0 <= s < 2**63 for s in seeds)
    assert item_rng(3, "a", "k").random() == np.random.default_rng(item_seed(3, "a", "k")).random()


def test_item_keys_count_repeats_of_the_same_item(clean):
    repeated = clean.subset([0, 1, 0, 0, 1])
    assert item_keys(repeated) == ["syn000/0#0", "syn001/0#0", "syn000/0#1", "syn000/0#2", "syn001/0#1"]


def test_severity_zero_is_the_identity(clean):
    out = AddNoise().apply(clean, 0, seed=1)
    assert isinstance(out, PerturbedSet)
    assert torch.equal(out.data.images, clean.images) and out.data.images is not clean.images
    assert torch.equal(out.reference_index, torch.arange(6)) and out.skipped == []
    assert out.sources == [f"clean:{i}" for i in range(6)]
    assert out.parameters == {"perturbation": "AddNoise", "family": "noise", "scope": "sample", "severity": 0}


def test_sample_perturbation_clamps_skips_and_records(clean):
    perturbation = AddNoise(amount=[0.5, 2.0])
    out = perturbation.apply(clean, 3, seed=1)
    assert out.parameters == {"perturbation": "AddNoise", "family": "noise", "scope": "sample", "severity": 3,
                              "amount": 1.25}
    assert out.skipped == [2] and torch.equal(out.data.images[2], clean.images[2])
    changed = [i for i in range(6) if i != 2]
    assert (out.data.images[changed] != clean.images[changed]).any(dim=(1, 2, 3)).all()
    assert out.data.images.max() == 1.0 and out.data.images.min() >= 0.0  # clamped to [0, 1]
    assert out.data.images.dtype == clean.images.dtype and out.data.labels.dtype == clean.labels.dtype
    assert torch.equal(out.reference_index, torch.arange(6)) and out.sources == [f"clean:{i}" for i in range(6)]
    assert torch.equal(clean.images, synthetic_imageset(n=6, size=24, seed=0, tumour_free=(2,)).images)  # untouched


def test_sample_draws_depend_on_item_identity_and_seed_not_position(clean):
    perturbation = AddNoise()
    forward = perturbation.apply(clean, 2, seed=4).data.images
    order = torch.tensor([5, 3, 1, 0, 2, 4])
    shuffled = perturbation.apply(clean.subset(order), 2, seed=4).data.images
    assert torch.equal(shuffled, forward[order])
    alone = perturbation.apply(clean.subset([3]), 2, seed=4).data.images
    assert torch.equal(alone[0], forward[3])
    assert not torch.equal(perturbation.apply(clean, 2, seed=5).data.images, forward)
    renamed = AddNoise()
    renamed.name = "other"
    assert renamed.stream() == "other" and not torch.equal(renamed.apply(clean, 2, seed=4).data.images, forward)
    # common random numbers: level 4 is level 2's noise, scaled (below the clamp)
    low, high = (perturbation.apply(clean, s, seed=4).data.images for s in (2, 4))
    unclamped = (high < 1) & (high > clean.images)
    ratio = (high - clean.images)[unclamped] / (low - clean.images)[unclamped]
    torch.testing.assert_close(ratio, torch.full_like(ratio, 0.8 / 0.4), rtol=1e-4, atol=0)


def test_set_perturbation_provenance_and_determinism(clean):
    train = synthetic_imageset(n=4, size=24, seed=9)
    out = Shuffle().apply(clean, 2, seed=0, train=train)
    assert out.reference_index.dtype == torch.long
    assert out.reference_index[:2].tolist() == [-1, -1] and out.sources[:2] == ["train:0", "train:1"]
    assert sorted(out.reference_index[2:].tolist()) == sorted(int(s.split(":")[1]) for s in out.sources[2:])
    assert torch.equal(out.data.images[:2], train.images[:2])
    again = Shuffle().apply(clean, 2, seed=0, train=train)
    assert torch.equal(again.data.images, out.data.images) and again.sources == out.sources
    orders = {tuple(Shuffle().apply(clean, 1, seed=s, train=train).sources) for s in range(6)}
    assert len(orders) > 1  # the seed drives the set's generator
    assert out.parameters == {"perturbation": "Shuffle", "family": "memorisation", "scope": "set", "severity": 2,
                              "count": 2}
    identity = Shuffle().apply(clean, 0, seed=0, train=train)
    assert identity.sources == [f"clean:{i}" for i in range(6)]


def test_set_perturbation_checks_the_training_set(clean):
    train = synthetic_imageset(n=4, size=24, seed=9)
    with pytest.raises(DataError, match=r"^perturbation 'Shuffle' builds its set from training images"):
        Shuffle().apply(clean, 0, seed=0)
    with pytest.raises(DataError, match=r"^perturbation 'Shuffle': the training set is empty$"):
        Shuffle().apply(clean, 1, seed=0, train=train.subset([]))
    with pytest.raises(DataError, match=r"^perturbation 'Shuffle': training images \(1, 32, 32\)"):
        Shuffle().apply(clean, 1, seed=0, train=synthetic_imageset(n=4, size=32, seed=9))
    renamed = train.subset(range(4))
    renamed.modalities = ("t1",)
    with pytest.raises(DataError, match=r"\('t1',\) do not match the clean set \(1, 24, 24\) \('flair',\)$"):
        Shuffle().apply(clean, 1, seed=0, train=renamed)


def test_a_set_perturbation_that_changes_the_set_size_is_a_bug_not_a_result(clean):
    class Drop(Shuffle):
        needs_train = False

        def build_set(self, clean, params, rng, train):
            return clean.subset([0]), torch.zeros(1), ["clean:0"]

    with pytest.raises(RuntimeError, match=r"^Drop built 1 items from 6$"):
        Drop().apply(clean, 1, seed=0)


def test_set_draws_come_from_the_seed_and_the_perturbation_name(clean):
    """Two set perturbations of the same class under different config keys draw independently; each draws the
    permutation of the generator seeded by (seed, its name, the set key), as results stored earlier did."""
    train = synthetic_imageset(n=4, size=24, seed=9)
    first, second = Shuffle(), Shuffle()
    second.name = "shuffle_again"
    differ = []
    for seed in range(4):
        out_a, out_b = (p.apply(clean, 1, seed=seed, train=train) for p in (first, second))
        assert out_a.skipped == [] and out_b.skipped == []  # a set perturbation skips nothing
        a, b = out_a.sources, out_b.sources
        for perturbation, sources in ((first, a), (second, b)):
            order = item_rng(seed, perturbation.name, "<set>").permutation(len(clean))
            assert sources[1:] == [f"clean:{i}" for i in order[1:]]
        differ.append(a != b)
    assert any(differ)


def test_missing_training_set_message_says_how_to_pass_it(clean):
    with pytest.raises(DataError, match=r"^perturbation 'Shuffle' builds its set from training images: call "
                                        r"apply\(\.\.\., train=<the training ImageSet>\)$"):
        Shuffle().apply(clean, 1, seed=0)


class Recorder(SamplePerturbation):
    """Subtracts a draw, so values go below 0; relabels the whole item to 2; records the spacing it was given."""

    family = "noise"

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {}

    def perturb_item(self, image, label, mask, params, rng, spacing):
        self.spacings.append(spacing)
        return image - 2.0 * float(rng.uniform()), torch.full_like(label, 2)


def test_sample_items_get_their_own_draws_the_spacing_clamping_at_zero_and_new_labels(clean):
    perturbation = Recorder()
    perturbation.spacings = []
    out = perturbation.apply(clean, 1, seed=0)
    assert perturbation.spacings == [tuple(clean.spacing)] * len(clean)
    assert out.data.images.min() == 0.0 and (out.data.images < clean.images).any()  # clamped at 0, not below
    assert (out.data.labels == 2).all() and out.data.labels.dtype == clean.labels.dtype
    draws = [item_rng(0, "Recorder", key).uniform() for key in item_keys(clean)]
    assert len(set(draws)) == len(clean)  # every item its own generator
    shifted = (clean.images - 2.0 * torch.tensor(draws)[:, None, None, None]).clamp(0.0, 1.0)
    torch.testing.assert_close(out.data.images, shifted)
