"""Set-level perturbations: sizes kept, provenance recorded, levels nested, copies exact, errors clear."""

from __future__ import annotations

import itertools

import pytest
import torch

from benchmark.errors import DataError
from perturbations.memorisation import COPY_FRACTIONS, MemorisationCopies
from perturbations.population import ModeDropping, PopulationShift
from perturbations.synthetic import synthetic_imageset


def named(perturbation, name):
    perturbation.name = name
    return perturbation


@pytest.fixture(scope="module")
def clean():
    return synthetic_imageset(n=20, size=32, seed=11, tumour_free=(0, 5, 9, 13))


@pytest.fixture(scope="module")
def train():
    return synthetic_imageset(n=12, size=32, seed=12)


def from_train(sources: list[str]) -> set[int]:
    return {i for i, s in enumerate(sources) if s.startswith("train:")}


def test_exact_copies_follow_the_schedule_are_nested_and_pixel_equal(clean, train):
    p = named(MemorisationCopies(), "copies")
    previous: set[int] = set()
    for severity, fraction in zip(range(1, 6), COPY_FRACTIONS, strict=True):
        out = p.apply(clean, severity, seed=0, train=train)
        copied = from_train(out.sources)
        assert len(out.data) == len(clean) and len(out.sources) == len(clean)
        assert len(copied) == round(fraction * len(clean))
        assert previous <= copied  # the items replaced at one level include those of the level below
        previous = copied
        for i in range(len(clean)):
            if i in copied:
                j = int(out.sources[i].split(":")[1])
                assert out.reference_index[i] == -1
                assert torch.equal(out.data.images[i], train.images[j])
                assert torch.equal(out.data.labels[i], train.labels[j])
                assert out.data.subject_ids[i] == train.subject_ids[j]
            else:
                assert out.reference_index[i] == i and torch.equal(out.data.images[i], clean.images[i])
    assert len(previous) == len(clean)
    donors = [s for s in out.sources if s.startswith("train:")]
    assert len(set(donors)) == len(train)  # drawn without replacement while the training set lasts


@pytest.mark.parametrize("kind", ["noise", "rotation", "blend", "blur"])
def test_near_copies_are_close_to_but_not_equal_to_their_training_image(kind, clean, train):
    out = named(MemorisationCopies(near_copy=kind), kind).apply(clean, 5, seed=0, train=train)
    for i, source in enumerate(out.sources):
        j = int(source.split(":")[1])
        difference = float((out.data.images[i] - train.images[j]).abs().mean())
        assert 0 < difference < 0.08, (kind, i, difference)
    again = named(MemorisationCopies(near_copy=kind), kind).apply(clean, 5, seed=0, train=train)
    assert torch.equal(out.data.images, again.data.images)


def test_memorisation_without_a_training_set_is_a_clear_error(clean):
    with pytest.raises(DataError, match="train="):
        named(MemorisationCopies(), "copies").apply(clean, 2, seed=0)


def test_population_shift_tumour_free_raises_the_tumour_free_share(clean):
    p = named(PopulationShift(mode="tumour_free"), "pop")
    shares = []
    for severity in range(6):
        out = p.apply(clean, severity, seed=0)
        assert len(out.data) == len(clean)
        assert all(int(s.split(":")[1]) == int(r) for s, r in zip(out.sources, out.reference_index, strict=True))
        assert torch.equal(out.data.images, clean.images[out.reference_index])  # untouched clean items
        shares.append(float((~out.data.tumour_present).float().mean()))
    assert shares[0] == pytest.approx(4 / 20) and shares[5] == 1.0
    assert all(b > a for a, b in itertools.pairwise(shares))


def test_population_shift_small_tumours_keeps_only_the_smallest_third(clean):
    out = named(PopulationShift(mode="small_tumours"), "small").apply(clean, 5, seed=0)
    sizes = clean.labels.flatten(1).gt(0).sum(1)
    threshold = torch.quantile(sizes[sizes > 0].double(), 1 / 3)
    used = out.reference_index[out.data.tumour_present]
    assert bool((sizes[used] <= threshold).all())


def test_mode_dropping_shrinks_the_subjects_and_keeps_the_count(clean):
    p = named(ModeDropping(keep=(0.8, 0.1)), "drop")
    counts = [len(set(p.apply(clean, s, seed=0).data.subject_ids)) for s in range(6)]
    assert counts == [20, 16, 12, 9, 6, 2]
    assert len(p.apply(clean, 5, seed=0).data) == len(clean)


def test_population_shift_without_donors_is_a_clear_error():
    no_free = synthetic_imageset(n=4, size=24, seed=1)
    with pytest.raises(DataError, match="no items to draw replacements from"):
        named(PopulationShift(mode="tumour_free"), "pop").apply(no_free, 3, seed=0)
