"""Configuration: bad input fails at config time with a clear message; perturbations added by a user's YAML
(new end points, a composition, a class outside the package) are built and run, end to end through a Hydra app."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

from benchmark.errors import ConfigError
from perturbations import check_severities, instantiate_perturbations
from perturbations.synthetic import synthetic_imageset

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"


def composed(overrides: list[str]):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("config", overrides=overrides)


def build(mapping: dict):
    return instantiate_perturbations(OmegaConf.create(mapping))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"_target_": "perturbations.acquisition.GaussianNoise", "std": [-0.1, 0.4]}, r"'std'.*\[0.0, inf\]"),
        ({"_target_": "perturbations.memorisation.MemorisationCopies", "fraction": [0.1, 1.5]}, r"'fraction'.*1.5"),
        ({"_target_": "perturbations.acquisition.Ghosting", "intensity": [0.1, 0.2, 0.3]}, "2 end points or 5"),
        ({"_target_": "perturbations.acquisition.GaussianNoise", "std": "loud"}, "must be a number"),
        ({"_target_": "perturbations.morphology.TumourMove", "label": "both"}, "'keep' or 'follow'"),
        ({"_target_": "perturbations.population.PopulationShift", "mode": "old_people"}, "'mode' must be one of"),
        ({"_target_": "perturbations.acquisition.GaussianNoise", "sdt": [0.1, 0.2]}, "unexpected keyword.*sdt"),
        ({"_target_": "perturbations.acqusition.GaussianNoise"}, "does not import"),
        ({"_target_": "collections.OrderedDict"}, "not a subclass of perturbations.Perturbation"),
    ],
)
def test_nonsense_is_a_config_error_naming_the_perturbation(entry, message):
    with pytest.raises(ConfigError, match=message) as error:
        build({"my_pert": entry})
    assert "perturbation 'my_pert'" in str(error.value)


def test_a_missing_package_header_is_detected_with_the_fix():
    with pytest.raises(ConfigError, match=r"# @package perturbation.<name>"):
        build({"_target_": "perturbations.acquisition.GaussianNoise", "std": [0.1, 0.4]})


def test_unknown_names_fail_when_hydra_composes():
    with pytest.raises(MissingConfigException, match="perturbation/no_such_thing"):
        composed(["perturbation=[gaussian_noise,no_such_thing]"])


@pytest.mark.parametrize("severity", [-1, 6, 2.5, "3", True])
def test_severity_outside_0_to_5_is_rejected(severity):
    with pytest.raises(ConfigError, match="severity must be an integer from 0"):
        check_severities([0, severity])
    p = build({"g": {"_target_": "perturbations.acquisition.GaussianNoise"}})["g"]
    with pytest.raises(ConfigError):
        p.apply(synthetic_imageset(n=1, size=16), severity, seed=0)


@pytest.mark.parametrize("form", ["perturbation=[gaussian_noise,tumour_move]", "perturbation=gaussian_noise",
                                  "+perturbation=gaussian_noise"])
def test_list_and_single_selection_forms_compose_to_a_name_mapping(form):
    cfg = composed([form])
    assert "gaussian_noise" in cfg.perturbation and "_target_" not in cfg.perturbation
    assert cfg.perturbation.gaussian_noise._target_ == "perturbations.acquisition.GaussianNoise"


USER_MODULE = '''
"""A user's own perturbation, outside the mri-metric-bench package."""
import torch
from perturbations import SamplePerturbation
from perturbations.base import at_severity, end_points


class SaltAndPepper(SamplePerturbation):
    """Set a fraction of the brain voxels to 0 or 1. fraction: 0..1 per severity end point."""

    family = "noise"

    def __init__(self, fraction=(0.01, 0.1)):
        super().__init__()
        self.fraction = end_points("fraction", fraction, low=0.0, high=1.0)

    def parameters_at(self, severity):
        return {"fraction": at_severity(self.fraction, severity)}

    def perturb_item(self, image, label, mask, params, rng, spacing):
        u = torch.from_numpy(rng.uniform(size=tuple(image.shape))).to(image.device)
        salt = torch.from_numpy(rng.uniform(size=tuple(image.shape)) < 0.5).to(image)
        hit = (u < params["fraction"]) & mask
        return torch.where(hit, salt, image), label
'''

USER_YAMLS = {
    "my_new": """
        # @package perturbation.my_new
        _target_: my_lab_perturbations.SaltAndPepper
        fraction: [0.02, 0.2]
        """,
    "strong_noise": """
        # @package perturbation.strong_noise
        _target_: perturbations.acquisition.GaussianNoise
        std: [0.5, 1.5, 2.0, 3.0, 4.0]   # five per-level values instead of two end points
        """,
    "noisy_ghosts": """
        # @package perturbation.noisy_ghosts
        _target_: perturbations.compose.Compose
        family: artifact
        steps:
          ghosts: {_target_: perturbations.acquisition.Ghosting, intensity: [0.1, 0.5]}
          noise: {_target_: perturbations.acquisition.GaussianNoise, std: [0.05, 0.2]}
        """,
}


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    (tmp_path / "my_lab_perturbations.py").write_text(USER_MODULE)
    (tmp_path / "my_conf" / "perturbation").mkdir(parents=True)
    for name, text in USER_YAMLS.items():
        (tmp_path / "my_conf" / "perturbation" / f"{name}.yaml").write_text(textwrap.dedent(text).lstrip())
    return tmp_path


def test_user_yamls_with_new_end_points_a_composition_and_an_outside_class(user_dir, monkeypatch):
    monkeypatch.syspath_prepend(str(user_dir))
    cfg = composed([f"hydra.searchpath=[file://{user_dir / 'my_conf'}]",
                    "perturbation=[my_new,strong_noise,noisy_ghosts,gaussian_noise]"])
    built = instantiate_perturbations(cfg.perturbation)
    assert [p.family for p in built.values()] == ["noise", "noise", "artifact", "noise"]
    assert built["strong_noise"].parameters(3)["relative_std"] == 2.0
    assert built["noisy_ghosts"].parameters(2) == {"ghosts": {"intensity": 0.2, "num_ghosts": 2},
                                                    "noise": {"relative_std": 0.0875}}
    data = synthetic_imageset(n=4, size=32, seed=2)
    for name, p in built.items():
        errors = [float(((p.apply(data, s, seed=0).data.images - data.images) ** 2).mean()) for s in range(6)]
        assert errors[0] == 0 and all(b > a for a, b in itertools.pairwise(errors)), (name, errors)
    composed_set = built["noisy_ghosts"].apply(data, 4, seed=0)
    assert composed_set.reference_index.tolist() == [0, 1, 2, 3] and composed_set.sources[0] == "clean:0"


def run_preview(args: list[str], user_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{user_dir}{os.pathsep}{REPO}", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "perturbations.preview", *args], cwd=user_dir, env=env,
                          capture_output=True, text=True, timeout=180)


def test_end_to_end_a_user_class_through_the_preview_app(user_dir):
    out = user_dir / "out"
    done = run_preview([f"hydra.searchpath=[file://{user_dir / 'my_conf'}]", "perturbation=my_new",
                        "+preview.source=synthetic", f"output_dir={out}"], user_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "perturbation_preview.png").stat().st_size > 10_000


@pytest.mark.slow  # a second Python start-up (~10 s); the message itself is tested in-process above
def test_end_to_end_bad_parameter_is_one_line_and_exit_2_before_any_compute(user_dir):
    done = run_preview(["perturbation=gaussian_noise", "perturbation.gaussian_noise.std=[-1,0.4]",
                        "+preview.source=synthetic", f"output_dir={user_dir / 'bad'}"], user_dir)
    assert done.returncode == 2
    assert "error: perturbation 'gaussian_noise'" in done.stderr and "'std'" in done.stderr
    assert not (user_dir / "bad" / "perturbation_preview.png").exists()


def test_a_composed_step_error_names_the_parameter():
    with pytest.raises(ConfigError, match="'intensity'"):
        build({"combo": {"_target_": "perturbations.compose.Compose",
                         "steps": [{"_target_": "perturbations.acquisition.Ghosting", "intensity": [0.1, 2.0]}]}})


def test_cpu_tensors_stay_on_the_cpu():
    data = synthetic_imageset(n=2, size=16)
    out = build({"g": {"_target_": "perturbations.acquisition.GaussianNoise"}})["g"].apply(data, 2, seed=0)
    assert out.data.images.device == torch.device("cpu")
