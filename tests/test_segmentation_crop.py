"""Training on random windows (segmentation.training.crop_size): the same window for images and labels,
seeded, inside the image, and a bad size refused before any work."""

import pytest
import torch
from omegaconf import OmegaConf

from benchmark.errors import ConfigError
from segmentation.checks import check_config
from segmentation.training import random_crop


def _batch():
    images = torch.arange(2 * 20 * 24, dtype=torch.float32).reshape(2, 1, 20, 24)
    return images, (images * 10).long()


def test_crop_cuts_the_same_window_from_images_and_labels_and_is_seeded():
    images, labels = _batch()
    x, y = random_crop(images, labels, [8, 16], torch.Generator().manual_seed(3))
    assert x.shape == (2, 1, 8, 16) and torch.equal(y, (x * 10).long())
    top, left = divmod(int(x[0, 0, 0, 0]), 24)
    assert torch.equal(x, images[..., top:top + 8, left:left + 16])
    again, _ = random_crop(images, labels, [8, 16], torch.Generator().manual_seed(3))
    assert torch.equal(x, again)
    starts = {int(random_crop(images, labels, [8, 16], torch.Generator().manual_seed(s))[0][0, 0, 0, 0])
              for s in range(20)}
    assert len(starts) > 5  # the window moves with the seed


def test_a_volume_is_cropped_in_its_last_sides():
    volumes = torch.rand(2, 1, 6, 20, 24)
    x, y = random_crop(volumes, (volumes * 4).long(), [8, 16], torch.Generator().manual_seed(1))
    assert x.shape == (2, 1, 6, 8, 16) and torch.equal(y, (x * 4).long())


def test_no_crop_or_a_window_larger_than_the_image_keeps_it_whole():
    images, labels = _batch()
    assert random_crop(images, labels, None, torch.Generator())[0] is images
    x, _ = random_crop(images, labels, [64, 64], torch.Generator().manual_seed(0))
    assert torch.equal(x, images)


@pytest.mark.parametrize("crop", [[64, 64, 64], [], [64, 0], [True, 64]])
def test_bad_crop_size_is_a_config_error(crop):
    cfg = OmegaConf.load("conf/segmentation/unet2d.yaml")
    cfg.training.crop_size = crop
    with pytest.raises(ConfigError, match="crop_size"):
        check_config(cfg)


def test_a_fractional_crop_size_is_refused_by_the_schema(tmp_path):
    """Whole numbers are the schema's job (benchmark.config_schema): one paragraph naming the key, exit 2."""
    from tests.test_bad_config import call

    code, err = call("segmentation.training.crop_size=[64.5,64]", f"output_dir={tmp_path / 'out'}",
                     f"data.cache_dir={tmp_path / 'cache'}")
    assert code == 2 and "segmentation.training.crop_size" in err and "Traceback" not in err, err
