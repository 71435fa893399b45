"""Mask-conditioned generators: each architecture learns on tiny data, seeded sampling is deterministic,
checkpoints are cached, resumed and never read half-written, divergence and a missing GPU are reported."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from benchmark.data.imageset import ImageSet
from benchmark.errors import ConfigError
from benchmark.generators.diffusion import ConditionalDiffusion
from benchmark.generators.pix2pix import ConditionalGAN
from benchmark.generators.regressor import ConditionalRegressor
from benchmark.generators.sets import GeneratorSet, generate
from benchmark.generators.training import checkpoint_path, load_trained, train_generator
from benchmark.study.generator_stage import instantiate_generators

CPU = torch.device("cpu")
SMALL = {"regressor": {"channels": [8, 16, 16], "strides": [2, 2], "num_res_units": 0},
         "pix2pix": {"channels": [8, 16, 16], "strides": [2, 2], "disc_channels": 8, "disc_layers": 2},
         "diffusion": {"channels": [8, 16, 16], "attention_levels": [False, False, False], "norm_num_groups": 8,
                       "num_head_channels": 8, "sample_steps": 4}}
CLASSES = {"regressor": ConditionalRegressor, "pix2pix": ConditionalGAN, "diffusion": ConditionalDiffusion}


def tiny_slices(n: int = 12, size: int = 32, seed: int = 0) -> ImageSet:
    """Brain-like slices: an ellipse of tissue (zero background), a lesion whose labels 1/2/3 nest,
    intensity set by the label plus noise, so the masks predict the image; a few items without tumour."""
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    images, labels, masks = [], [], []
    for i in range(n):
        brain = (xx / 0.85) ** 2 + (yy / 0.95) ** 2 < 1
        cx, cy = (torch.rand(2, generator=gen) - 0.5).tolist()
        radius = ((xx - cx * 0.8) ** 2 + (yy - cy * 0.8) ** 2).sqrt()
        label = torch.zeros(size, size, dtype=torch.long)
        if i % 4:  # every fourth slice has no tumour
            label[radius < 0.35] = 2
            label[radius < 0.22] = 3
            label[radius < 0.12] = 1
        label[~brain] = 0
        image = torch.tensor([0.0, 0.2, 0.9, 0.7])[label] + 0.35 * brain
        image = (image + 0.03 * torch.randn(size, size, generator=gen)).clamp(0, 1) * brain
        images.append(image)
        labels.append(label)
        masks.append(brain)
    return ImageSet(torch.stack(images)[:, None].float(), torch.stack(labels)[:, None],
                    torch.stack(masks)[:, None], [f"s{i // 4}" for i in range(n)], list(range(n)), ("flair",),
                    (1.0, 1.0))


def make(architecture: str, budgets: list[int], **overrides) -> tuple[object, dict]:
    config = {"budgets": budgets, "batch_size": 4, "lr": 2e-3, **SMALL[architecture], **overrides}
    return CLASSES[architecture](**config), config


def mean_loss(history: list[dict], name: str, part: slice) -> float:
    values = [h[name] for h in history][part]
    return sum(values) / len(values)


@pytest.mark.parametrize(("architecture", "loss", "steps"),
                         [("regressor", "l1", 40), ("pix2pix", "l1", 40), ("diffusion", "mse", 40)])
def test_tiny_training_lowers_the_loss(tmp_path: Path, architecture: str, loss: str, steps: int) -> None:
    generator, config = make(architecture, [steps])
    run = train_generator(architecture, generator, config, tiny_slices(), 0, CPU, tmp_path)
    assert not run.failures and run.checkpoints[steps].is_file()
    first, last = mean_loss(run.history, loss, slice(0, 5)), mean_loss(run.history, loss, slice(-5, None))
    assert last < 0.7 * first, (first, last)


@pytest.mark.parametrize("architecture", ["pix2pix", "diffusion"])
def test_seeded_sampling_is_deterministic_and_independent_of_batching(tmp_path: Path, architecture: str) -> None:
    data = tiny_slices(6)
    generator, config = make(architecture, [2])
    run = train_generator(architecture, generator, config, data, 0, CPU, tmp_path)
    model = load_trained(make(architecture, [2])[0], run.checkpoints[2], run.key, 1, CPU)
    first = generate(model, data, seed=3)
    model.sample_batch = 4  # items 0-3 and 4-5 in separate calls: each item draws its own noise
    again = generate(model, data, seed=3)
    other = generate(model, data, seed=4)
    assert torch.equal(first.images, again.images)
    assert not torch.allclose(first.images, other.images)
    assert torch.equal(first.labels, data.labels) and torch.equal(first.brain_masks, data.brain_masks)
    assert float(first.images[~data.brain_masks.expand_as(first.images)].abs().max()) == 0.0
    assert float(first.images.min()) >= 0.0 and float(first.images.max()) <= 1.0


def test_rerun_hits_the_cache_and_resumes_to_the_same_weights(tmp_path: Path) -> None:
    data = tiny_slices()
    generator, config = make("pix2pix", [3, 6])
    straight = train_generator("gan", generator, config, data, 0, CPU, tmp_path / "straight")
    again = train_generator("gan", make("pix2pix", [3, 6])[0], config, data, 0, CPU, tmp_path / "straight")
    assert again.from_cache and not straight.from_cache and again.key == straight.key
    # interrupted after the early budget: the late one is trained on from the cached early checkpoint
    early_only, early_config = make("pix2pix", [3])
    train_generator("gan", early_only, early_config, data, 0, CPU, tmp_path / "resumed")
    resumed_generator, _ = make("pix2pix", [3, 6])
    resumed = train_generator("gan", resumed_generator, config, data, 0, CPU, tmp_path / "resumed")
    assert resumed.key == straight.key and not resumed.from_cache
    weights = [torch.load(run.checkpoints[6], weights_only=True)["state"]["modules"] for run in (straight, resumed)]
    for name in weights[0]:
        for tensor, other in zip(weights[0][name].values(), weights[1][name].values(), strict=True):
            assert torch.equal(tensor, other)


def test_half_written_checkpoint_is_never_loaded(tmp_path: Path) -> None:
    data = tiny_slices()
    generator, config = make("regressor", [2, 4])
    run = train_generator("reg", generator, config, data, 0, CPU, tmp_path)
    late = run.checkpoints[4]
    late.write_bytes(late.read_bytes()[:200])  # a crash mid-write without the atomic rename
    again = train_generator("reg", make("regressor", [2, 4])[0], config, data, 0, CPU, tmp_path)
    assert not again.from_cache and again.checkpoints[4] == late
    assert torch.load(late, weights_only=True)["budget"] == 4
    assert not list(tmp_path.glob(".*.part"))


class PoisonedRegressor(ConditionalRegressor):
    """A regressor whose first convolution becomes NaN after `poison_after` steps (as an overflow would):
    every later loss is NaN, through the real training loop."""

    def __init__(self, poison_after: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.poison_after, self.steps = poison_after, 0

    def train_step(self, images, condition, rng):
        losses = super().train_step(images, condition, rng)
        self.steps += 1
        if self.steps == self.poison_after:
            with torch.no_grad():
                next(self.modules["generator"].parameters()).fill_(math.nan)
        return losses


def test_divergence_keeps_earlier_budgets_and_names_the_step(tmp_path: Path) -> None:
    config = {"budgets": [2, 5], "batch_size": 4, **SMALL["regressor"]}
    run = train_generator("reg", PoisonedRegressor(3, **config), config, tiny_slices(), 0, CPU, tmp_path)
    assert list(run.checkpoints) == [2]
    assert list(run.failures) == [5] and "diverged at step 4" in run.failures[5] and "l1=nan" in run.failures[5]
    generated_set = GeneratorSet("reg_5", "regressor", 5, lambda: make("regressor", [2, 5])[0], {0: run}, 1, CPU)
    with pytest.raises(RuntimeError, match="diverged"):
        generated_set.apply(tiny_slices(), 1, 0)


def test_an_update_that_poisons_the_weights_fails_its_budget(tmp_path: Path) -> None:
    generator, config = make("regressor", [1, 3], lr=math.inf)  # the first update sends the weights to inf
    run = train_generator("reg", generator, config, tiny_slices(), 0, CPU, tmp_path)
    assert not run.checkpoints and set(run.failures) == {1, 3}
    assert "diverged at step 1: non-finite weights" in run.failures[1]


def test_generator_set_conditions_on_the_split_it_is_given(tmp_path: Path) -> None:
    train, test = tiny_slices(8, seed=0), tiny_slices(5, seed=1)
    generator, config = make("regressor", [2])
    run = train_generator("reg", generator, config, train, 0, CPU, tmp_path)
    generated_set = GeneratorSet("reg_2", "regressor", 2, lambda: make("regressor", [2])[0], {0: run}, 1, CPU)
    on_test, on_train = generated_set.apply(test, 1, 0, train=train), generated_set.apply(train, 1, 0, train=train)
    assert len(on_test.data) == 5 and torch.equal(on_test.data.labels, test.labels)
    assert len(on_train.data) == 8 and torch.equal(on_train.data.labels, train.labels)
    assert on_test.reference_index.tolist() == list(range(5))  # paired with the real slice of the same masks
    assert generated_set.family == "generated" and generated_set.has_labels


def test_cuda_requested_without_a_gpu_is_a_clear_error(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    generator, config = make("regressor", [2])
    with pytest.raises(ConfigError, match="no CUDA device"):
        train_generator("reg", generator, config, tiny_slices(), 0, torch.device("cuda"), tmp_path)


def test_bad_generator_configs_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="budgets"):
        ConditionalRegressor(budgets=[])
    with pytest.raises(ConfigError, match=r"generators\.oops"):
        instantiate_generators(OmegaConf.create({"oops": {"_target_": "collections.OrderedDict"}}))
    with pytest.raises(ConfigError, match=r"generators\.missing"):
        instantiate_generators(OmegaConf.create({"missing": {"_target_": "benchmark.generators.nothing.Here"}}))


def test_checkpoint_names_carry_the_budget(tmp_path: Path) -> None:
    assert checkpoint_path(tmp_path, "gan", "ab" * 32, 300).name == f"generator-gan-{'ab' * 12}-step300.pt"


def test_sample_grid_shows_one_slice_per_subject_first() -> None:
    from benchmark.study.generator_stage import shown_items

    labels = torch.zeros(5, 1, 4, 4, dtype=torch.long)
    for i, area in enumerate([3, 5, 4, 0, 1]):
        labels[i, 0].view(-1)[:area] = 1
    assert shown_items(labels, ["a", "a", "b", "b", "c"], 4) == [1, 2, 4, 0]


def test_choosing_one_generator_of_the_cpu_experiment_leaves_the_others_settings_out(
        caplog: pytest.LogCaptureFixture) -> None:
    """experiment=generators sizes three generators; generator=[regressor] selects one: the other two entries
    hold settings without a model and are left out, with a warning naming them."""
    from hydra import compose, initialize_config_dir

    from benchmark.config_schema import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=generators", "generator=[regressor]"])
    with caplog.at_level("WARNING", logger="benchmark.generators"):
        built = instantiate_generators(cfg.generators)
    assert list(built) == ["regressor"] and isinstance(built["regressor"], ConditionalRegressor)
    assert "generators.pix2pix has settings but no model" in caplog.text
    assert "generators.diffusion has settings but no model" in caplog.text
