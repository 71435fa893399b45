"""Training the downstream segmenter: it learns, it is reproducible, it caches, it refuses bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from benchmark.data.imageset import ImageSet
from benchmark.errors import ConfigError, DataError
from segmentation import evaluate_segmenter, plot_training_curves, train_segmenter
from segmentation.network import build_network
from tests.segmentation_data import synthetic_slices

CPU = torch.device("cpu")


def tiny_config(**training) -> OmegaConf:
    """The default config shrunk to a few steps of a 3-level UNet on 64^2 slices."""
    cfg = OmegaConf.load("conf/segmentation/unet2d.yaml")
    cfg.network.channels = [8, 16, 32]
    cfg.network.strides = [2, 2]
    cfg.optimizer.lr = 1e-2
    cfg.training.update({"iterations": 20, "batch_size": 6, "val_interval": 5, **training})
    return cfg


@pytest.fixture(scope="module")
def sets():
    return synthetic_slices(3, 4, size=64, seed=1), synthetic_slices(1, 4, size=64, seed=2)


@pytest.fixture(scope="module")
def trained(sets, tmp_path_factory):
    cache = tmp_path_factory.mktemp("checkpoints")
    train, val = sets
    return train_segmenter(train, val, tiny_config(), seed=3, device=CPU, cache_dir=cache), cache


def test_a_few_iterations_lower_the_loss(trained):
    model, _ = trained
    loss = model.history["loss"]
    assert len(loss) == 20
    assert sum(loss[-3:]) / 3 < 0.8 * sum(loss[:3]) / 3
    assert model.history["val_iteration"] == [5, 10, 15, 20]
    assert model.info["cache_hit"] is False and model.info["train_seconds"] > 0


def test_rerun_hits_the_checkpoint_cache(sets, trained):
    model, cache = trained
    train, val = sets
    again = train_segmenter(train, val, tiny_config(), seed=3, device=CPU, cache_dir=cache)
    assert again.info["cache_hit"] is True and again.info["cache_key"] == model.info["cache_key"]
    assert len(list(cache.glob("*.pt"))) == 1 and not list(cache.glob("*.tmp"))
    torch.testing.assert_close(again.predict_logits(val.images), model.predict_logits(val.images), rtol=0, atol=0)
    changed = train.with_images(train.images.flip(-1), train.labels.flip(-1))
    assert train_segmenter(changed, val, tiny_config(iterations=1), 3, CPU, cache).info["cache_hit"] is False
    assert len(list(cache.glob("*.pt"))) == 2


def test_same_seed_same_model_and_caller_rng_untouched(sets, trained):
    model, _ = trained
    train, val = sets
    state = torch.get_rng_state()
    again = train_segmenter(train, val, tiny_config(), seed=3, device=CPU, cache_dir=None)
    assert torch.equal(torch.get_rng_state(), state)
    assert again.info["cache_hit"] is False
    for name, tensor in model.network.state_dict().items():
        torch.testing.assert_close(again.network.state_dict()[name], tensor, rtol=0, atol=0, msg=name)
    other = train_segmenter(train, val, tiny_config(), seed=4, device=CPU, cache_dir=None)
    assert not torch.equal(other.predict_logits(val.images), model.predict_logits(val.images))


def test_evaluation_table_and_encoder_features(sets, trained):
    model, _ = trained
    _, val = sets
    table = evaluate_segmenter(model, val, CPU)
    assert list(table.subject_id) == ["sub-00"] and table.n_items.tolist() == [4]
    for column in ("dice_WT", "dice_TC", "dice_ET", "dice_NCR", "dice_ED", "hd95_WT", "hd95_ET"):
        assert table[column].between(0, 200).all(), column
    features = model.encoder_features(val.images[:3])
    assert features.shape == (3, 32) and torch.isfinite(features).all()
    odd = model.encoder_features(torch.rand(2, 1, 60, 52))  # padded to a multiple of 4
    assert odd.shape == (2, 32)
    assert model.predict(torch.rand(2, 1, 60, 52)).shape == (2, 1, 60, 52)


def test_training_curves_png(trained, tmp_path):
    model, _ = trained
    path = plot_training_curves(model.history, tmp_path / "curves" / "clean.png", title="clean")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_segresnet_and_3d_unet_build_and_run():
    cfg = OmegaConf.load("conf/segmentation/segresnet2d.yaml")
    net = build_network(cfg.network, spatial_dims=2, in_channels=1)
    assert type(net).__name__ == "SegResNet"
    slices = synthetic_slices(2, 1, size=16, seed=0)
    def extrude(tensor: torch.Tensor) -> torch.Tensor:  # each slice repeated 16 times along z
        return tensor[:, :, None].repeat(1, 1, 16, 1, 1)

    as_3d = ImageSet(
        images=extrude(slices.images), labels=extrude(slices.labels), brain_masks=extrude(slices.brain_masks),
        subject_ids=slices.subject_ids,
        slice_indices=[-1, -1], modalities=slices.modalities, spacing=(1.5, 1.5, 1.5),
    )
    cfg3 = OmegaConf.merge(cfg, OmegaConf.load("conf/segmentation/unet3d.yaml"))
    cfg3.network = OmegaConf.load("conf/segmentation/unet2d.yaml").network
    cfg3.network.channels, cfg3.network.strides = [4, 8], [2]
    cfg3.training.update({"iterations": 2, "val_interval": 1})
    model = train_segmenter(as_3d, as_3d, cfg3, seed=0, device=CPU, cache_dir=None)
    assert model.encoder_features(as_3d.images).shape == (2, 8)
    assert set(evaluate_segmenter(model, as_3d).columns) >= {"dice_WT", "hd95_WT"}


def test_all_empty_training_labels_warn_and_are_reported(sets):
    train, val = sets
    empty = train.with_images(train.images, labels=torch.zeros_like(train.labels))
    with pytest.warns(UserWarning, match="label maps are all empty"):
        model = train_segmenter(empty, val, tiny_config(iterations=1), seed=0, device=CPU, cache_dir=None)
    assert any("all empty" in w for w in model.info["warnings"])


def test_bad_input_is_refused_with_a_clear_error(sets):
    train, val = sets
    with pytest.raises(DataError, match="no valid samples"):
        train_segmenter(train.subset([]), val, tiny_config(), seed=0, device=CPU, cache_dir=None)
    broken = train.with_images(torch.full_like(train.images, float("nan")))
    with pytest.raises(DataError, match="training set has no valid samples"):
        train_segmenter(broken, val, tiny_config(), seed=0, device=CPU, cache_dir=None)
    with pytest.raises(DataError, match="test set has no valid samples"):
        evaluate_segmenter(train_segmenter(train, val, tiny_config(iterations=1), 0, CPU, None), broken.subset([]))
    with pytest.raises(DataError, match="outside the BraTS labels"):
        train_segmenter(train.with_images(train.images, train.labels + 4), val, tiny_config(), 0, CPU, None)
    with pytest.raises(ConfigError, match="iterations"):
        train_segmenter(train, val, tiny_config(iterations=0), seed=0, device=CPU, cache_dir=None)
    with pytest.raises(ConfigError, match="spatial_dims"):
        train_segmenter(train, val, OmegaConf.merge(tiny_config(), {"spatial_dims": 3}), 0, CPU, None)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised when CUDA is absent")
def test_cuda_requested_but_absent_names_the_device(sets):
    train, val = sets
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ConfigError, match=r"cuda:1.*0 CUDA device"):
            train_segmenter(train, val, tiny_config(), seed=0, device=torch.device("cuda:1"), cache_dir=None)


@pytest.mark.gpu
def test_cuda_training_with_mixed_precision(sets):
    train, val = sets
    model = train_segmenter(train, val, tiny_config(), seed=3, device=torch.device("cuda"), cache_dir=None)
    loss = model.history["loss"]
    assert sum(loss[-3:]) < 0.8 * sum(loss[:3])
    assert model.device.type == "cuda" and model.info["device"] == "cuda"
    features = model.encoder_features(val.images)  # CPU images in, CPU features out
    assert features.device.type == "cpu" and torch.isfinite(features).all()
    assert set(evaluate_segmenter(model, val, "cuda").columns) >= {"dice_WT", "hd95_WT"}


@pytest.mark.parametrize("name", ["unet2d", "segresnet2d", "unet3d"])
def test_every_segmentation_config_composes_and_builds(name):
    from hydra import compose, initialize_config_dir

    from segmentation.checks import check_config

    with initialize_config_dir(config_dir=str(Path("conf").resolve()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"segmentation={name}"]).segmentation
    check_config(cfg)
    assert cfg.scheduler.T_max == cfg.training.iterations
    assert set(cfg.protocols) == {"robustness", "utility"}
    assert {"morphological", "memorisation"} <= set(cfg.utility_families)
    network = build_network(cfg.network, spatial_dims=cfg.spatial_dims, in_channels=1)
    assert sum(p.numel() for p in network.parameters()) > 10_000
