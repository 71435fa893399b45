"""Features on maximum-intensity projections: the wrapped extractor sees exactly each volume's MIP, slices are
refused with a clear message, and the Hydra form (a factory inside a factory) builds."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from benchmark.features.base import FeatureExtractor
from benchmark.features.mip import MaximumIntensityProjection
from benchmark.metrics.checks import MetricInputError
from tests.vessel_trees import vessel_imageset


class PooledStatistics(FeatureExtractor):
    """A tiny 2D extractor: per image the mean, max and 4x4 average-pooled values."""

    name, dim, spatial_dims = "pooled", 18, 2

    def preprocess(self, images):
        return images[:, :1]

    def forward(self, x):
        pooled = torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)
        return torch.cat([x.flatten(1).mean(1, keepdim=True), x.flatten(1).amax(1, keepdim=True), pooled], 1)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_features_are_those_of_the_projection(axis):
    volumes = vessel_imageset(n=3, size=24, spatial_dims=3).images
    volumes[1] = volumes[1].flip(-1)
    mip = MaximumIntensityProjection(PooledStatistics(), axis=axis)
    expected = PooledStatistics().extract(volumes.amax(dim=2 + axis))
    torch.testing.assert_close(mip.extract(volumes), expected, rtol=0, atol=0)
    assert mip.name == "pooled_mip" and "axis" in mip.describe()


def test_an_occluded_artery_changes_the_mip_features():
    from perturbations.vessels.edits import VesselOcclusion

    data = vessel_imageset(n=1, size=32, spatial_dims=3)
    edit = VesselOcclusion(share=0.4, label="keep")
    edit.name = "occlusion"
    edited = edit.apply(data, 5, seed=0).data.images
    mip = MaximumIntensityProjection(PooledStatistics())
    assert not torch.allclose(mip.extract(edited), mip.extract(data.images))


def test_slices_are_refused_and_bad_settings_named():
    slices = vessel_imageset(n=2, size=24, spatial_dims=2).images
    with pytest.raises(MetricInputError, match=r"need volumes \(N, C, D, H, W\) \(data.mode=3d\)"):
        MaximumIntensityProjection(PooledStatistics()).extract(slices)
    with pytest.raises(MetricInputError, match="axis must be 0"):
        MaximumIntensityProjection(PooledStatistics(), axis=3)


def test_the_hydra_form_builds_the_inner_extractor_on_first_use():
    cfg = OmegaConf.create({"_target_": "benchmark.features.mip.MaximumIntensityProjection", "_partial_": True,
                            "extractor": {"_target_": "tests.test_features_mip.PooledStatistics", "_partial_": True}})
    factory = instantiate(cfg)
    built = factory()
    assert isinstance(built.inner, PooledStatistics) and built.dim == 18
