"""Sample-level perturbations built from the shipped YAMLs: identity, growing effect, determinism, range, and
the physics checked against an independent implementation (numpy FFT, scipy, scikit-image)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from scipy.ndimage import gaussian_filter
from skimage.exposure import adjust_gamma

from perturbations import instantiate_perturbations
from perturbations.acquisition import Ghosting, RicianNoise
from perturbations.synthetic import synthetic_imageset

CONF = Path(__file__).resolve().parent.parent / "conf"
ALL = sorted(p.stem for p in (CONF / "perturbation").glob("*.yaml"))


def build(names: list[str]) -> dict:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"perturbation=[{','.join(names)}]"])
    return instantiate_perturbations(cfg.perturbation)


@pytest.fixture(scope="module")
def everything() -> dict:
    return build(ALL)


@pytest.fixture(scope="module")
def slices():
    return synthetic_imageset(n=10, size=40, seed=1, tumour_free=(4,))


def sample_level(perturbations: dict) -> list[str]:
    """Sample-level perturbations that need no training split (the learned fill trains a diffusion model on it:
    tests/test_generators_inpainter.py)."""
    return [n for n, p in perturbations.items() if p.scope == "sample" and not getattr(p, "needs_train", False)]


def mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b) ** 2).mean())


def test_every_shipped_yaml_builds_with_a_known_family(everything):
    assert set(everything) == set(ALL) and len(ALL) >= 30
    families = {p.family for p in everything.values()}
    assert families == {"noise", "artifact", "shift", "morphological", "memorisation"}


def test_severity_zero_is_the_identity(everything, slices):
    train = synthetic_imageset(n=4, size=40, seed=9)
    for name, perturbation in everything.items():
        out = perturbation.apply(slices, 0, seed=3, train=train)
        assert torch.equal(out.data.images, slices.images), name
        assert torch.equal(out.data.labels, slices.labels), name
        assert out.reference_index.tolist() == list(range(len(slices))), name
        assert perturbation.parameters(0) == {}, name


def test_mse_to_clean_grows_with_severity(everything, slices):
    """Strictly increasing MSE, for every sample-level perturbation except the move (its MSE saturates once the
    lesion has left its old site; its displacement is tested in test_perturbations_morphology)."""
    for name in sample_level(everything):
        if name.startswith(("tumour_move", "vessel_")):  # vessel edits need vessel trees: test_perturbations_vessels
            continue
        data = synthetic_imageset(n=30, size=40, seed=2) if name == "contrast_swap" else slices
        errors = [mse(everything[name].apply(data, s, seed=0).data.images, data.images) for s in range(6)]
        assert all(b > a for a, b in itertools.pairwise(errors)), (name, errors)


def test_outputs_stay_in_range_and_shape(everything, slices):
    for name in sample_level(everything):
        out = everything[name].apply(slices, 5, seed=0)
        assert out.data.images.shape == slices.images.shape and out.data.images.dtype == torch.float32, name
        assert float(out.data.images.min()) >= 0 and float(out.data.images.max()) <= 1, name
        assert len(out.sources) == len(slices) and out.parameters["severity"] == 5, name


def test_same_seed_same_output_other_seed_other_output_any_batch(everything, slices):
    for name in ["gaussian_noise", "ghosting", "spike", "motion", "bias_field", "tumour_deform", "tumour_move"]:
        p = everything[name]
        first, again = p.apply(slices, 3, seed=7), p.apply(slices, 3, seed=7)
        assert torch.equal(first.data.images, again.data.images), name
        assert not torch.equal(first.data.images, p.apply(slices, 3, seed=8).data.images), name
        alone = p.apply(slices.subset([2]), 3, seed=7)  # batch- and order-independent: seeded by identity
        assert torch.equal(alone.data.images[0], first.data.images[2]), name


def test_volumes_work_for_every_sample_level_perturbation(everything):
    volumes = synthetic_imageset(n=2, size=16, spatial_dims=3, seed=4)
    for name in sample_level(everything):
        if name.startswith("vessel_"):  # blobs of a few voxels hold no vessel tree: test_perturbations_vessels
            continue
        out = everything[name].apply(volumes, 4, seed=0)
        assert out.data.images.shape == volumes.images.shape, name
        assert mse(out.data.images, volumes.images) > 0, name


def test_gamma_matches_scikit_image(everything, slices):
    out = everything["gamma_high"].apply(slices, 4, seed=0).data.images.numpy()
    gamma = everything["gamma_high"].parameters(4)["gamma"]
    np.testing.assert_allclose(out, adjust_gamma(slices.images.numpy(), gamma), atol=1e-6)


def test_shift_and_scale_match_numpy(everything, slices):
    clean = slices.images.numpy()
    shifted = everything["intensity_shift"].apply(slices, 2, seed=0).data.images.numpy()
    np.testing.assert_allclose(shifted, np.clip(clean + 0.1, 0, 1), atol=1e-6)
    scaled = everything["intensity_scale"].apply(slices, 5, seed=0).data.images.numpy()
    np.testing.assert_allclose(scaled, clean * 0.6, atol=1e-6)


def test_blur_matches_scipy_inside_the_image(everything, slices):
    """MONAI's erf-sampled kernel against scipy's sampled Gaussian: within 0.01 away from the borders."""
    out = everything["gaussian_blur"].apply(slices, 5, seed=0).data.images.numpy()
    reference = gaussian_filter(slices.images.numpy(), sigma=(0, 0, 1.3, 1.3))
    np.testing.assert_allclose(out[..., 5:-5, 5:-5], reference[..., 5:-5, 5:-5], atol=0.01)


def test_ghosting_matches_a_numpy_fft_formula(slices):
    """Every 2nd k-space line along the axis attenuated by (1 - intensity), the centre line restored."""
    ghosting = Ghosting(intensity=0.5)
    image = slices.images[0]
    out = ghosting.perturb_item(image, slices.labels[0], slices.brain_masks[0], ghosting.parameters(3),
                                np.random.default_rng(0), (1.5, 1.5))[0].numpy()[0]
    axis = int(np.random.default_rng(0).choice((0, 1)))
    spectrum = np.fft.fftshift(np.fft.fftn(image.numpy()[0]))
    kept = np.take(spectrum, [spectrum.shape[axis] // 2], axis=axis).copy()
    index = [slice(None)] * 2
    index[axis] = slice(None, None, 2)
    spectrum[tuple(index)] *= 1 - 0.5
    centre = [slice(None)] * 2
    centre[axis] = slice(spectrum.shape[axis] // 2, spectrum.shape[axis] // 2 + 1)
    spectrum[tuple(centre)] = kept
    expected = np.fft.ifftn(np.fft.ifftshift(spectrum)).real
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_rician_noise_on_zero_signal_has_the_rayleigh_mean():
    """Half the image 0, half 1 (brain std 0.5, so s = 0.1 x 0.5): on the zero half the magnitude is Rayleigh,
    mean s sqrt(pi / 2) and second moment 2 s^2; 3 % tolerance on 20 000 samples."""
    image = torch.cat([torch.zeros(1, 100, 200), torch.ones(1, 100, 200)], dim=1)
    mask = torch.ones(1, 200, 200, dtype=torch.bool)
    out = RicianNoise(std=0.1).perturb_item(image, mask, mask, {"relative_std": 0.1}, np.random.default_rng(0),
                                            (1.0, 1.0))[0]
    s = 0.1 * float(image.std())
    zero_half = out[0, :100].double()
    assert abs(float(zero_half.mean()) / (s * np.sqrt(np.pi / 2)) - 1) < 0.03
    assert abs(float((zero_half**2).mean()) / (2 * s**2) - 1) < 0.03
    assert float(zero_half.min()) >= 0


@pytest.mark.gpu
def test_tensor_perturbations_run_on_the_gpu(everything, slices):
    gpu = slices.to("cuda")
    for name in ["gaussian_noise", "gaussian_blur", "gamma_high", "gibbs_ringing", "ghosting", "tumour_shrink"]:
        on_gpu = everything[name].apply(gpu, 3, seed=0)
        assert on_gpu.data.images.device.type == "cuda", name
        on_cpu = everything[name].apply(slices, 3, seed=0)
        torch.testing.assert_close(on_gpu.data.images.cpu(), on_cpu.data.images, atol=1e-4, rtol=0)
