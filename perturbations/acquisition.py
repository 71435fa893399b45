"""Noise and acquisition artifacts. The physics is TorchIO's or MONAI's; the severity -> parameter map is ours.

Every class takes its end points as [at severity 1, at severity 5] (or five per-level values), linearly
interpolated (`perturbations.base.end_points`). Defaults start from Dohmen et al. (arXiv 2405.08431, Sci Rep
2025), "Similarity and quality metrics for MR image-to-image translation", where their numbers fit the
library's parametrisation; each docstring says where and why we depart. Random draws (noise fields, ghost
axis, spike position, motion, bias coefficients) come from the item's generator and do not depend on the
severity, so a higher level scales the same draw.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torchio as tio
from monai.transforms import GaussianSmooth, GibbsNoise

from perturbations.base import SamplePerturbation, at_severity, end_points
from perturbations.torchio_bridge import in_plane_axes, run_torchio


def brain_std(image: torch.Tensor, mask: torch.Tensor) -> float:
    """Standard deviation of the intensities inside the brain mask (all voxels when the mask is empty)."""
    values = image[:, mask[0]] if bool(mask.any()) else image
    return float(values.float().std())


def normal_field(rng: np.random.Generator, like: torch.Tensor) -> torch.Tensor:
    """Standard normal draws shaped and placed like `like` (drawn on the CPU, so every device agrees)."""
    return torch.from_numpy(rng.standard_normal(tuple(like.shape)).astype(np.float32)).to(like.device)


class GaussianNoise(SamplePerturbation):
    """Additive white Gaussian noise, std = `std` x the item's brain-intensity std.

    std: relative noise std, >= 0; default 0.1 -> 0.4 (Dohmen et al.: 0.1 -> 0.4 x image std).
    """

    family = "noise"

    def __init__(self, std: Any = (0.1, 0.4)) -> None:
        super().__init__()
        self.std = end_points("std", std, low=0.0)

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"relative_std": at_severity(self.std, severity)}

    def perturb_item(self, image, label, mask, params, rng, spacing):
        sigma = params["relative_std"] * brain_std(image, mask)
        return image + sigma * normal_field(rng, image), label


class RicianNoise(GaussianNoise):
    """Rician noise, the magnitude of a complex signal with Gaussian noise in both channels (Gudbjartsson &
    Patz 1995): |x + s n1 + i s n2|, s = `std` x the brain-intensity std (MONAI RandRicianNoise's formula).

    std: relative std, >= 0; default 0.1 -> 0.4 like the Gaussian noise (same schedule), for comparable rows.
    """

    def perturb_item(self, image, label, mask, params, rng, spacing):
        sigma = params["relative_std"] * brain_std(image, mask)
        real, imaginary = normal_field(rng, image), normal_field(rng, image)
        return torch.sqrt((image + sigma * real) ** 2 + (sigma * imaginary) ** 2), label


class GaussianBlur(SamplePerturbation):
    """Isotropic Gaussian blur (MONAI GaussianSmooth, runs on the item's device).

    sigma: kernel std in pixels, >= 0; default 0.2 -> 1.3 (Dohmen et al.).
    """

    family = "noise"

    def __init__(self, sigma: Any = (0.2, 1.3)) -> None:
        super().__init__()
        self.sigma = end_points("sigma", sigma, low=0.0)

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"sigma_px": at_severity(self.sigma, severity)}

    def perturb_item(self, image, label, mask, params, rng, spacing):
        return GaussianSmooth(sigma=params["sigma_px"])(image), label


class BiasField(SamplePerturbation):
    """Smooth multiplicative intensity inhomogeneity (TorchIO BiasField: image x exp(polynomial)).

    coefficient: maximum |coefficient| of the order-`order` polynomial, >= 0. Each coefficient is the item's
    fixed draw in [-1, 1] times this value. Default 0.1 -> 0.5: TorchIO's RandomBiasField default is 0.5;
    Dohmen et al.'s 0.5 -> 20 refer to another parametrisation (exp(20) would saturate every voxel).
    order: polynomial order, 1..5, default 3.
    """

    family = "artifact"

    def __init__(self, coefficient: Any = (0.1, 0.5), order: int = 3) -> None:
        super().__init__()
        self.coefficient = end_points("coefficient", coefficient, low=0.0)
        self.order = int(end_points("order", order, low=1, high=5, integer=True)[0])

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"max_coefficient": at_severity(self.coefficient, severity), "order": self.order}

    def perturb_item(self, image, label, mask, params, rng, spacing):
        n_terms = (self.order + 1) * (self.order + 2) * (self.order + 3) // 6
        coefficients = (rng.uniform(-1, 1, n_terms) * params["max_coefficient"]).tolist()
        return run_torchio(tio.BiasField(coefficients=coefficients, order=self.order), image, spacing), label


class Ghosting(SamplePerturbation):
    """Ghosts along the phase-encoding axis from periodic k-space errors (TorchIO Ghosting).

    intensity: attenuation of every `num_ghosts`-th k-space line, 0..1; default 0.05 -> 0.3 would follow
    Dohmen et al., but at 0.3 the ghosts are barely visible on a 128 px slice, so 0.1 -> 0.6.
    num_ghosts: spacing of the attenuated lines, integer >= 1; default 2 (Dohmen et al.).
    The phase-encoding axis is the item's draw among the two in-plane axes.
    """

    family = "artifact"

    def __init__(self, intensity: Any = (0.1, 0.6), num_ghosts: int = 2) -> None:
        super().__init__()
        self.intensity = end_points("intensity", intensity, low=0.0, high=1.0)
        self.num_ghosts = int(end_points("num_ghosts", num_ghosts, low=1, integer=True)[0])

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"intensity": at_severity(self.intensity, severity), "num_ghosts": self.num_ghosts}

    def perturb_item(self, image, label, mask, params, rng, spacing):
        axis = int(rng.choice(in_plane_axes(image.ndim - 1)))
        ghosting = tio.Ghosting(num_ghosts=params["num_ghosts"], axis=axis, intensity=params["intensity"],
                                restore=None)
        return run_torchio(ghosting, image, spacing), label


class Spike(SamplePerturbation):
    """Stripes (herringbone) from a spike in k-space (TorchIO Spike).

    intensity: spike magnitude relative to the spectrum maximum, >= 0; default 0.05 -> 0.5 (Dohmen et al.).
    k_radius: distance of the spike from the k-space centre, as a fraction of the half-width, 0..1;
    default 0.3 (Dohmen et al.). The in-plane direction is the item's draw.
    """

    family = "artifact"

    def __init__(self, intensity: Any = (0.05, 0.5), k_radius: float = 0.3) -> None:
        super().__init__()
        self.intensity = end_points("intensity", intensity, low=0.0)
        self.k_radius = end_points("k_radius", k_radius, low=0.0, high=1.0)

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"intensity": at_severity(self.intensity, severity), "k_radius": at_severity(self.k_radius, severity)}

    def perturb_item(self, image, label, mask, params, rng, spacing):
        angle = rng.uniform(0, 2 * np.pi)
        position = np.full(3, 0.5)
        a, b = in_plane_axes(image.ndim - 1)
        position[a] += 0.5 * params["k_radius"] * np.cos(angle)
        position[b] += 0.5 * params["k_radius"] * np.sin(angle)
        spike = tio.Spike(spikes_positions=position[None], intensity=params["intensity"])
        return run_torchio(spike, image, spacing), label


class Motion(SamplePerturbation):
    """Rigid motion during acquisition: k-space assembled from moved copies (TorchIO Motion, Shaw et al. 2019).

    degrees: maximum rotation in degrees, >= 0; translation: maximum translation in mm, >= 0; default
    1 -> 8 degrees and 1 -> 8 mm (TorchIO's RandomMotion default is 10 degrees and 10 mm).
    num_transforms: number of movements, integer >= 1, default 2. Each movement's rotation and translation
    are the item's draws in [-1, 1] times the maxima; 2D slices rotate in plane and translate in plane.
    """

    family = "artifact"

    def __init__(self, degrees: Any = (1.0, 8.0), translation: Any = (1.0, 8.0), num_transforms: int = 2) -> None:
        super().__init__()
        self.degrees = end_points("degrees", degrees, low=0.0, high=180.0)
        self.translation = end_points("translation", translation, low=0.0)
        self.num_transforms = int(end_points("num_transforms", num_transforms, low=1, integer=True)[0])

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"max_degrees": at_severity(self.degrees, severity),
                "max_translation_mm": at_severity(self.translation, severity), "num_transforms": self.num_transforms}

    def perturb_item(self, image, label, mask, params, rng, spacing):
        n = params["num_transforms"]
        degrees = rng.uniform(-1, 1, (n, 3)) * params["max_degrees"]
        translation = rng.uniform(-1, 1, (n, 3)) * params["max_translation_mm"]
        times = np.sort(rng.uniform(0.2, 0.8, n))
        if image.ndim == 3:  # (C, 1, H, W) in TorchIO: rotate about the singleton axis, translate in plane
            degrees[:, 1:] = 0.0
            translation[:, 0] = 0.0
        motion = tio.Motion(degrees=degrees, translation=translation, times=times, image_interpolation="linear")
        return run_torchio(motion, image, spacing, singleton_first=True), label


class GibbsRinging(SamplePerturbation):
    """Gibbs ringing from truncated k-space (MONAI GibbsNoise, runs on the item's device).

    alpha: fraction of k-space removed, 0..1 (0 keeps all); default 0.55 -> 0.85: below about 0.5 the
    ringing is invisible at 128 px. Not in Dohmen et al.
    """

    family = "artifact"

    def __init__(self, alpha: Any = (0.55, 0.85)) -> None:
        super().__init__()
        self.alpha = end_points("alpha", alpha, low=0.0, high=1.0)

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"alpha": at_severity(self.alpha, severity)}

    def perturb_item(self, image, label, mask, params, rng, spacing):
        return torch.as_tensor(GibbsNoise(alpha=params["alpha"])(image)), label


class LowResolution(SamplePerturbation):
    """Anisotropic low resolution: resample one axis to a coarser spacing and back (TorchIO Resample, the
    two steps of RandomAnisotropy: nearest down, linear up).

    downsampling: factor by which that axis's spacing grows, >= 1; default 1.5 -> 5 (TorchIO's
    RandomAnisotropy range). The axis is the item's draw in plane for 2D slices and the slice axis (D) for
    volumes, as in thick-slice acquisitions.
    """

    family = "artifact"

    def __init__(self, downsampling: Any = (1.5, 5.0)) -> None:
        super().__init__()
        self.downsampling = end_points("downsampling", downsampling, low=1.0)

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"downsampling": at_severity(self.downsampling, severity)}

    def perturb_item(self, image, label, mask, params, rng, spacing):
        axis = int(rng.choice((0, 1))) if image.ndim == 3 else 0
        padded = (*spacing, 1.0) if image.ndim == 3 else tuple(spacing)
        coarse = list(map(float, padded))
        coarse[axis] *= params["downsampling"]
        shape = (*image.shape[1:], 1) if image.ndim == 3 else tuple(image.shape[1:])
        affine = np.diag([*map(float, padded), 1.0])

        def down_and_up(item: tio.ScalarImage) -> tio.ScalarImage:
            low = tio.Resample(target=tuple(coarse), image_interpolation="nearest")(item)
            return tio.Resample(target=(shape, affine), image_interpolation="linear")(low)

        return run_torchio(down_and_up, image, spacing), label
