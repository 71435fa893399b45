"""Distribution shift per item: gamma, intensity shift and scale, histogram remapping, contrast swap.

Pure tensor arithmetic on the item's device. End points from Dohmen et al. (arXiv 2405.08431) where they
exist. Outputs are clipped to [0, 1], the ImageSet range.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from perturbations.base import SamplePerturbation, at_severity, end_points


class Gamma(SamplePerturbation):
    """Gamma correction x -> x ** exp(log_gamma) (TorchIO's Gamma; images are in [0, 1]).

    log_gamma: natural log of gamma, any sign; gamma_high uses 0.095 -> 0.916 (darkens mid-tones),
    gamma_low -0.01 -> -0.916 (brightens), as in Dohmen et al.
    """

    family = "shift"

    def __init__(self, log_gamma: Any = (0.095, 0.916)) -> None:
        super().__init__()
        self.log_gamma = end_points("log_gamma", log_gamma, low=-5.0, high=5.0)

    def parameters_at(self, severity: int) -> dict[str, Any]:
        log_gamma = at_severity(self.log_gamma, severity)
        return {"log_gamma": log_gamma, "gamma": float(np.exp(log_gamma))}

    def perturb_item(self, image, label, mask, params, rng, spacing):
        return image.clamp(min=0) ** params["gamma"], label


class IntensityShift(SamplePerturbation):
    """Add a constant to every voxel (an offset in the scanner's or the normaliser's output).

    shift: fraction of the data range [0, 1] added, -1..1; default 0.05 -> 0.25 (Dohmen et al.).
    """

    family = "shift"

    def __init__(self, shift: Any = (0.05, 0.25)) -> None:
        super().__init__()
        self.shift = end_points("shift", shift, low=-1.0, high=1.0)

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"shift": at_severity(self.shift, severity)}

    def perturb_item(self, image, label, mask, params, rng, spacing):
        return image + params["shift"], label


class IntensityScale(SamplePerturbation):
    """Multiply every voxel by a constant (a different normalisation or receiver gain).

    scale: factor, > 0; default 0.95 -> 0.6 (darkening, so nothing saturates at 1; not in Dohmen et al.).
    """

    family = "shift"

    def __init__(self, scale: Any = (0.95, 0.6)) -> None:
        super().__init__()
        self.scale = end_points("scale", scale, low=1e-6)

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"scale": at_severity(self.scale, severity)}

    def perturb_item(self, image, label, mask, params, rng, spacing):
        return image * params["scale"], label


def monotone_curve(rng: np.random.Generator, num_points: int) -> np.ndarray:
    """The item's fixed random direction for a remapping: num_points values in [-1, 1], ends at 0."""
    offsets = rng.uniform(-1, 1, num_points)
    offsets[[0, -1]] = 0.0
    return offsets


class HistogramRemap(SamplePerturbation):
    """A smooth monotone remapping of the intensity histogram (as MONAI RandHistogramShift does).

    Control points at `num_points` evenly spaced intensities in [0, 1] move by up to `displacement` (the
    item's draws in [-1, 1] times it; the end points 0 and 1 stay), then the curve is made monotone and
    applied by piecewise-linear interpolation, so tissue contrasts change but their order is kept.
    displacement: maximum control-point shift, 0..0.5 of the data range; default 0.03 -> 0.2 (below 0.1 the
    change is hard to see).
    num_points: integer >= 3, default 6.
    """

    family = "shift"

    def __init__(self, displacement: Any = (0.03, 0.2), num_points: int = 6) -> None:
        super().__init__()
        self.displacement = end_points("displacement", displacement, low=0.0, high=0.5)
        self.num_points = int(end_points("num_points", num_points, low=3, integer=True)[0])

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"displacement": at_severity(self.displacement, severity), "num_points": self.num_points}

    def perturb_item(self, image, label, mask, params, rng, spacing):
        x = np.linspace(0, 1, params["num_points"])
        y = np.maximum.accumulate(np.clip(x + params["displacement"] * monotone_curve(rng, len(x)), 0, 1))
        xs, ys = (torch.as_tensor(v, dtype=image.dtype, device=image.device) for v in (x, y))
        flat = image.clamp(0, 1).reshape(-1)
        segment = torch.searchsorted(xs, flat, right=True).clamp(1, len(x) - 1)
        x0, x1, y0, y1 = xs[segment - 1], xs[segment], ys[segment - 1], ys[segment]
        mapped = y0 + (flat - x0) * (y1 - y0) / (x1 - x0)
        return mapped.reshape(image.shape), label


class ContrastSwap(SamplePerturbation):
    """Another MR contrast presented where the expected one should be (e.g. FLAIR where T1 is expected).

    A growing fraction of items is swapped (the item's fixed draw u ~ U(0, 1) swaps it when u < fraction,
    so the swapped items at one level include those of the level below). When the set holds the `donor`
    modality as a channel, every channel of a swapped item is replaced by it; with a single modality (the
    default FLAIR study) the swapped item gets an inverted contrast inside the brain mask, a T1-like look
    where oedema and CSF turn dark: x -> lo + hi - x over the brain's intensity range [lo, hi].
    fraction: share of items swapped, 0..1; default 0.2 -> 1.0. donor: modality name, default "t1".
    """

    family = "shift"

    def __init__(self, fraction: Any = (0.2, 1.0), donor: str = "t1") -> None:
        super().__init__()
        self.fraction = end_points("fraction", fraction, low=0.0, high=1.0)
        self.donor = str(donor)
        self.modalities: tuple[str, ...] = ()

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"fraction": at_severity(self.fraction, severity), "donor": self.donor}

    def apply(self, clean, severity, seed, train=None):
        self.modalities = tuple(m.lower() for m in clean.modalities)
        return super().apply(clean, severity, seed, train)

    def perturb_item(self, image, label, mask, params, rng, spacing):
        if rng.uniform() >= params["fraction"]:
            return image, label
        if self.donor.lower() in self.modalities:
            donor = image[self.modalities.index(self.donor.lower())]
            return donor.expand_as(image).clone(), label
        inside = mask[0]
        if not bool(inside.any()):
            return image, label
        values = image[:, inside]
        lo, hi = values.amin(dim=1), values.amax(dim=1)
        view = (-1,) + (1,) * (image.ndim - 1)
        inverted = lo.view(view) + hi.view(view) - image
        return torch.where(inside, inverted, image), label
