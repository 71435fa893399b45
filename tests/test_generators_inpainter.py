"""The learned healthy-tissue inpainter (benchmark/generators/inpainter.py): a tiny training lowers the masked DDPM
loss and never targets tumour, RePaint is deterministic for a seed, changes only the hole inside the brain and keeps the
image's range, a rerun loads the cached checkpoint, and the config selects it end to end (slow: on the phantom)."""

from __future__ import annotations

import tempfile
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from scipy.ndimage import distance_transform_edt

from benchmark.errors import ConfigError, DataError
from benchmark.generators.inpainter import DiffusionInpainter, healthy_weight, hole_window, repaint_schedule
from perturbations import instantiate_perturbations
from perturbations.synthetic import synthetic_imageset

CONF = Path(__file__).resolve().parent.parent / "conf"
TINY = {"channels": [8, 16], "attention_levels": [False, False], "norm_num_groups": 8, "num_head_channels": 8,
        "train_timesteps": 1000, "crop": 16, "healthy_margin": 2, "steps": 16, "batch_size": 4, "lr": 2e-3}
SAMPLING = {"sample_steps": 6, "jump_length": 2, "resample": 2, "context": 4}


def tiny_inpainter(cache_dir: Path, **changes) -> DiffusionInpainter:
    return DiffusionInpainter(**{**TINY, **SAMPLING, "device": "cpu", "cache_dir": str(cache_dir), **changes})


@pytest.fixture(scope="module")
def cache_dir() -> Path:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


@pytest.fixture(scope="module")
def train():
    return synthetic_imageset(n=8, size=32, seed=3)


@pytest.fixture(scope="module")
def fitted(cache_dir, train) -> DiffusionInpainter:
    inpainter = tiny_inpainter(cache_dir)
    inpainter.fit(train, seed=0)
    return inpainter


@pytest.fixture(scope="module")
def item():
    """(image (C, H, W), brain, lesion) of an unseen slice with a lesion."""
    data = synthetic_imageset(n=1, size=32, seed=11)
    return data.images[0].numpy(), data.brain_masks[0, 0].numpy(), data.labels[0, 0].numpy() > 0


def test_tiny_training_lowers_the_loss_and_is_cached(fitted, cache_dir, train):
    losses = [h["mse"] for h in fitted.training.history]
    assert not fitted.training.from_cache and len(losses) == TINY["steps"]
    assert np.mean(losses[-4:]) < 0.7 * np.mean(losses[:4]), losses
    again = tiny_inpainter(cache_dir)
    again.fit(train, seed=0)  # a fresh instance (a rerun of the study): loads, trains nothing
    assert again.training.from_cache and again.key == fitted.key
    for name, value in again.model.modules["unet"].state_dict().items():
        assert torch.equal(value, fitted.model.modules["unet"].state_dict()[name]), name
    other = tiny_inpainter(cache_dir)
    other.fit(synthetic_imageset(n=8, size=32, seed=4), seed=0)  # other training data: another checkpoint
    assert not other.training.from_cache and other.key != fitted.key


def test_tumour_and_its_margin_are_never_loss_targets():
    condition = torch.zeros(1, 4, 12, 12)
    condition[0, 1, 5:7, 5:7] = 1  # oedema
    condition[0, 3] = 1
    weight = healthy_weight(condition, margin=2)[0, 0]
    assert weight[3:9, 3:9].eq(0).all() and weight.sum() == 144 - 36
    assert healthy_weight(condition, margin=0)[0, 0].sum() == 144 - 4


def test_repaint_is_deterministic_changes_only_the_hole_in_the_brain_and_keeps_the_range(fitted, item):
    image, brain, lesion = item
    region = np.zeros_like(brain)
    region[8:20, 0:20] = True  # reaches outside the brain (x < ~3): those voxels must stay as they are
    out = fitted.fill(image, brain, lesion, region, seed=0)
    assert np.array_equal(out, fitted.fill(image, brain, lesion, region, seed=0))
    assert not np.array_equal(out, fitted.fill(image, brain, lesion, region, seed=1))
    hole = region & brain
    assert np.array_equal(out[:, ~hole], image[:, ~hole])  # exactly, outside the hole and outside the brain
    assert (out[:, hole] != image[:, hole]).mean() > 0.9
    assert out[:, hole].min() >= image[:, brain].min() and out[:, hole].max() <= image[:, brain].max()


def test_repaint_schedule_jumps_back_like_the_paper():
    assert repaint_schedule(4, 1, 1) == [3, 2, 1, 0, -1]
    assert repaint_schedule(6, 2, 2) == [5, 4, 3, 2, 3, 4, 3, 2, 1, 0, 1, 2, 1, 0, -1]
    schedule = repaint_schedule(25, 5, 3)
    downs = sum(b < a for a, b in pairwise(schedule))
    assert downs == 25 + 4 * 2 * 5 and schedule[-1] == -1


def test_window_covers_the_hole_with_context_and_pads_small_images():
    hole = np.zeros((40, 30), bool)
    hole[10:14, 2:5] = True
    slices, pads = hole_window(hole, multiple=4, minimum=16, context=3)
    assert [s.stop - s.start for s in slices] == [16, 16] and pads == [(0, 0), (0, 0)]
    assert slices[1].start == 0 and slices[0].start <= 7 and slices[0].stop >= 17
    slices, pads = hole_window(hole, multiple=8, minimum=36, context=3)
    assert slices[1] == slice(0, 30) and pads[1] == (0, 2)


def test_config_selects_the_learned_fill_through_the_perturbation_path(fitted, cache_dir, train):
    """perturbation=[tumour_remove_learned] builds LearnedFill(TumourRemove, DiffusionInpainter); applied like the
    study applies it, it removes the same voxels as tumour_remove and differs from it only in the filled region."""
    node = "perturbation.tumour_remove_learned.inpainter"
    overrides = [f"{node}.{k}={v}".replace("True", "true").replace("False", "false").replace(" ", "")
                 for k, v in {**TINY, **SAMPLING}.items()]
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["perturbation=[tumour_remove_learned,tumour_remove]", "device=cpu",
                                           f"study.checkpoint_dir={cache_dir}", *overrides])
    built = instantiate_perturbations(cfg.perturbation)
    learned, classical = built["tumour_remove_learned"], built["tumour_remove"]
    clean = synthetic_imageset(n=3, size=32, seed=12, tumour_free=(1,))
    out = learned.apply(clean, 3, seed=0, train=train)
    assert learned.inpainter.key == fitted.key  # the fixture's checkpoint: same data, config and seed
    reference = classical.apply(clean, 3, seed=0, train=train)
    assert torch.equal(out.data.labels, reference.data.labels) and out.skipped == reference.skipped == [1]
    assert out.parameters["fill"] == "diffusion (RePaint)" and out.parameters["perturbation"] == "tumour_remove_learned"
    for i in (0, 2):
        changed = (out.data.images[i] != clean.images[i]).any(0).numpy()
        lesion = clean.labels[i, 0].numpy() > 0
        assert changed.any() and not (changed & (distance_transform_edt(~lesion) > learned.edit.margin)).any()
        assert not torch.equal(out.data.images[i], reference.data.images[i])  # another fill, same place
    assert torch.equal(out.data.images[1], clean.images[1])
    assert torch.equal(learned.apply(clean, 3, seed=0, train=train).data.images, out.data.images)
    with pytest.raises(DataError, match="training images"):
        learned.apply(clean, 3, seed=0)


def test_bad_settings_are_config_errors(cache_dir):
    with pytest.raises(ConfigError, match="jump_length"):
        tiny_inpainter(cache_dir, jump_length=6)
    with pytest.raises(ConfigError, match="crop=18"):
        tiny_inpainter(cache_dir, crop=18, channels=[8, 16, 16], attention_levels=[False] * 3)
    with pytest.raises(ConfigError, match="2D slices"):
        tiny_inpainter(cache_dir).fit(synthetic_imageset(n=2, size=16, spatial_dims=3), seed=0)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            tiny_inpainter(cache_dir, device="cuda")


@pytest.mark.slow
def test_learned_fill_on_the_phantom_through_the_config(tmp_path):
    """The tiny phantom, prepared as the study prepares it, edited by perturbation=[tumour_remove_learned] with
    the model trained on its training split: every lesion item is refilled near its lesion inside the brain,
    lesion-free items are skipped, the removed labels are tumour_remove's, and a second application is identical."""
    from benchmark.data.prepare import prepare_data

    node = "perturbation.tumour_remove_learned.inpainter"
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[
            "perturbation=[tumour_remove_learned,tumour_remove]", "device=cpu", f"data.cache_dir={tmp_path}",
            "data.phantom.n_subjects=5", "data.phantom.voxel_size_mm=4", "data.size=[32,32]",
            "data.slices.per_subject=4", "data.slices.min_brain_fraction=0.1", "data.workers=1",
            f"{node}.steps=30", f"{node}.crop=16", f"{node}.batch_size=4", f"{node}.sample_steps=8"])
    data = prepare_data(cfg.data, seed=0)
    built = instantiate_perturbations(cfg.perturbation)
    out = built["tumour_remove_learned"].apply(data.test, 5, seed=0, train=data.train)
    reference = built["tumour_remove"].apply(data.test, 5, seed=0, train=data.train)
    assert torch.equal(out.data.labels, reference.data.labels) and out.skipped == reference.skipped
    assert list((tmp_path / "checkpoints").glob("generator-inpainter-*-step30.pt"))
    for i in range(len(data.test)):
        changed = (out.data.images[i] != data.test.images[i]).any(0).numpy()
        lesion = data.test.labels[i, 0].numpy() > 0
        assert changed.any() == (i not in out.skipped), i
        assert not (changed & ~data.test.brain_masks[i, 0].numpy()).any(), i
        assert not (changed & (distance_transform_edt(~lesion) > 6)).any(), i
    again = instantiate_perturbations(cfg.perturbation)["tumour_remove_learned"]
    assert torch.equal(again.apply(data.test, 5, seed=0, train=data.train).data.images, out.data.images)


@pytest.mark.slow
def test_a_longer_training_fills_with_healthy_not_tumour_intensities(tmp_path):
    """After 150 steps on 16 slices the fill of a removed lesion is closer to the healthy tissue around it than
    to the bright lesion it replaces (median over the hole; the lesion is never a training target)."""
    train = synthetic_imageset(n=16, size=32, seed=3)
    inpainter = tiny_inpainter(tmp_path, steps=150, crop=32, channels=[8, 16, 16], attention_levels=[False] * 3,
                               sample_steps=20)
    inpainter.fit(train, seed=0)
    test = synthetic_imageset(n=4, size=32, seed=21)
    gaps = []
    for i in range(len(test)):
        image, brain = test.images[i].numpy(), test.brain_masks[i, 0].numpy()
        lesion = test.labels[i, 0].numpy() > 0
        healthy = brain & ~lesion & (distance_transform_edt(~lesion) <= 6)
        filled = inpainter.fill(image, brain, lesion, lesion, seed=0)
        gaps.append((abs(np.median(filled[0, lesion]) - np.median(image[0, healthy])),
                     abs(np.median(image[0, lesion]) - np.median(image[0, healthy]))))
    assert all(to_healthy < 0.5 * lesion_gap for to_healthy, lesion_gap in gaps), gaps
