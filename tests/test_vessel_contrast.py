"""Vessel CNR: against a numpy/scipy computation of the same definition, label-aware under a kept-label
occlusion, per-item values with positions for the bootstrap, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import maximum_filter

from benchmark.errors import BenchmarkError, ConfigError, DataError
from benchmark.metrics.image_statistics import VesselContrast
from benchmark.metrics.no_reference import vessel_cnr
from perturbations.vessels.edits import VesselOcclusion
from tests.test_metrics_image_statistics_entries import run
from tests.vessel_trees import vessel_imageset


def numpy_vessel_cnr(image: np.ndarray, label: np.ndarray, brain: np.ndarray, outer: int) -> float:
    vessel = label > 0
    ring = maximum_filter(vessel, size=2 * outer + 1, mode="constant") & ~maximum_filter(vessel, size=5,
                                                                                         mode="constant") & brain
    a, b = image[vessel].astype(float), image[ring].astype(float)
    return abs(a.mean() - b.mean()) / np.sqrt(a.var() + b.var())


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_vessel_cnr_matches_a_numpy_computation(spatial_dims):
    data = vessel_imageset(n=2, size=40, spatial_dims=spatial_dims)
    data.brain_masks[1, 0, ..., :6] = False  # a brain mask that cuts the ring
    values = vessel_cnr(data.images, data.labels, data.brain_masks, outer=6)
    for i in range(2):
        expected = numpy_vessel_cnr(data.images[i, 0].numpy(), data.labels[i, 0].numpy(),
                                    data.brain_masks[i, 0].numpy(), 6)
        assert float(values[i]) == pytest.approx(expected, rel=1e-9)
    assert (values > 3).all()  # bright blood on dim tissue


def test_vessel_contrast_drops_when_the_image_loses_an_artery_the_label_keeps():
    data = vessel_imageset(n=3, size=40, spatial_dims=3)
    data.labels[1] = 0
    occluded = VesselOcclusion(share=0.4, label="keep")
    occluded.name = "occlusion_keep"
    edited = occluded.apply(data, 5, seed=0).data
    metric = VesselContrast()
    clean_value = run(metric, {"candidate": data})
    assert metric.items["value"].positions.tolist() == [0, 2]
    assert run(VesselContrast(), {"candidate": edited}) < 0.7 * clean_value


def test_vessel_contrast_errors_are_clear():
    data = vessel_imageset(n=1, size=32, spatial_dims=2)
    with pytest.raises(ConfigError, match="outer"):
        VesselContrast(outer=2)
    empty = data.with_images(data.images, torch.zeros_like(data.labels))
    with pytest.raises(BenchmarkError, match="no candidate item has a vessel label"):
        run(VesselContrast(), {"candidate": empty})
    no_brain = vessel_imageset(n=1, size=32, spatial_dims=2)
    no_brain.brain_masks[:] = False
    with pytest.raises(DataError, match="no tissue within 6 voxels"):
        vessel_cnr(no_brain.images, no_brain.labels, no_brain.brain_masks)
