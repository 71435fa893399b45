"""The typed configuration (benchmark.config_schema): every shipped config file validates against it, a wrong
type, a value outside a choice or an unknown key is refused while Hydra composes with one ConfigError naming
the key (exit 2), each value has one home, and conf/ ships with the installed package."""

from __future__ import annotations

import ast
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from benchmark.config_schema import (
    CONFIG_DIR,
    Config,
    DataConfig,
    MetricsConfig,
    ScoreConfig,
    SegmentationConfig,
    StudyConfig,
)
from tests.test_bad_config import call

REPO = Path(__file__).resolve().parent.parent
MANDATORY = {"data.root", "data.manifest"}  # `???` on purpose: the user points them at the dataset


def composed(overrides: list[str], name: str = "config", config_dirs: tuple[Path, ...] = ()) -> OmegaConf:
    """The config Hydra composes from conf/ (and `config_dirs`, as --config-dir adds them)."""
    search = [f"hydra.searchpath=[{','.join(f'file://{d}' for d in config_dirs)}]"] if config_dirs else []
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose(name, overrides=[*overrides, *search])
    finally:
        GlobalHydra.instance().clear()


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("overrides", [
    *([f"experiment={name}"] for name in options("experiment")),
    *([f"data={name}"] for name in options("data")),
    *([f"segmentation={name}"] for name in options("segmentation")),
    *([f"metrics={name}"] for name in options("metrics")),
    *([f"generator=[{name}]"] for name in options("generator")),
], ids=lambda overrides: overrides[0])
def test_every_shipped_config_file_composes_against_the_schema(overrides: list[str]) -> None:
    cfg = composed(overrides)
    assert OmegaConf.get_type(cfg) is Config
    for key, schema in (("data", DataConfig), ("study", StudyConfig), ("segmentation", SegmentationConfig),
                        ("metrics", MetricsConfig)):
        assert OmegaConf.get_type(cfg, key) is schema, key
    assert set(OmegaConf.missing_keys(cfg)) <= MANDATORY, overrides
    OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)  # every interpolation resolves


@pytest.mark.parametrize("overrides", [[], ["data=brats"], ["metrics=full"]], ids=str)
def test_the_score_config_composes_against_its_schema(overrides: list[str]) -> None:
    cfg = composed(["real=/r", "generated=/g", *overrides], name="score")
    assert OmegaConf.get_type(cfg) is ScoreConfig and OmegaConf.get_type(cfg, "data") is DataConfig
    assert set(OmegaConf.missing_keys(cfg)) <= MANDATORY


def test_choices_come_back_as_their_strings() -> None:
    """Enum-typed keys print, compare and serialise as the strings written in the YAML files."""
    cfg = composed(["data=vessel_phantom"])
    assert str(cfg.data.slices.policy) == "tumour" and cfg.data.slices.policy == "tumour"
    assert cfg.data.mode == "2d" and f"{cfg.data.missing_label}" == "error"
    plain = OmegaConf.to_container(cfg.segmentation)
    assert plain["protocols"] == ["robustness", "utility"] and plain["structures"] == "tumour"
    assert OmegaConf.to_yaml(cfg.data.slices).startswith("policy: tumour\n")


@pytest.mark.parametrize(("override", "message"), [
    ("data.slices.per_subject=many", "data.slices.per_subject=many is not a whole number"),
    ("data.slices.policy=middle", "data.slices.policy=middle is not one of brain, tumour, mix"),
    ("data.mode=4d", "data.mode=4d is not one of 2d, 3d"),
    ("data.source=dicom", "data.source=dicom is not one of phantom, brats, msd"),
    ("data.duplicate_scans=maybe", "data.duplicate_scans=maybe is not one of error, allow"),
    ("data.prepared_cache=often", "data.prepared_cache=often is not true or false"),
    ("data.size=null", "data.size=null is not allowed: this key needs a value"),
    ("study.resampling.n_boot=1.5", "study.resampling.n_boot=1.5 is not a whole number"),
    ("study.cv.folds=five", "study.cv.folds=five is not a whole number"),
    ("segmentation.training.amp=maybe", "segmentation.training.amp=maybe is not true or false"),
    ("segmentation.structures=bone", "segmentation.structures=bone is not one of tumour, vessel"),
    ("segmentation.protocols=[robustness,fidelity]", "segmentation.protocols[1]=fidelity is not one of robustness"),
    ("metrics.on_error=ignore", "metrics.on_error=ignore is not one of flag, raise"),
    ("metrics.max_images=all", "metrics.max_images=all is not a whole number"),
    ("stages=[data,train]", "stages[1]=train is not one of data, study, report"),
    ("debug=sometimes", "debug=sometimes is not true or false"),
])
def test_a_wrong_type_or_choice_is_one_config_error_naming_the_key(tmp_path: Path, override: str,
                                                                  message: str) -> None:
    cache = tmp_path / "cache"
    code, err = call(override, f"output_dir={tmp_path / 'out'}", f"data.cache_dir={cache}")
    assert code == 2, err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
    assert "Traceback" not in err and not cache.exists()


@pytest.mark.parametrize(("override", "message"), [
    ("study.resampling.nboot=3", "study.resampling.nboot is not a key of the config: did you mean "
                                 "study.resampling.n_boot?"),
    ("data.slices.polcy=mix", "data.slices.polcy is not a key of the config: did you mean data.slices.policy?"),
    ("study.cv.fold=3", "study.cv.fold is not a key of the config: did you mean study.cv.folds?"),
    ("metrics.on_eror=flag", "metrics.on_eror is not a key of the config: did you mean metrics.on_error?"),
])
def test_an_unknown_key_in_a_typed_group_is_one_config_error_naming_it(tmp_path: Path, override: str,
                                                                     message: str) -> None:
    code, err = call(override, f"output_dir={tmp_path / 'out'}")
    assert code == 2 and err.startswith(f"error: {message}") and err.count("\n") == 1, err


@pytest.mark.parametrize(("body", "message"), [
    ("slices:\n  policy: middle\n", "in conf file data/mine.yaml: data.slices.policy=middle is not one of brain"),
    ("slices:\n  per_subjects: 4\n", "in conf file data/mine.yaml: data.slices.per_subjects is not a key of the "
                                     "config"),
])
def test_a_users_config_file_is_checked_against_the_schema_too(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "conf" / "data").mkdir(parents=True)
    (tmp_path / "conf" / "data" / "mine.yaml").write_text("defaults:\n  - phantom\n  - _self_\n" + body)
    code, err = call("--config-dir", str(tmp_path / "conf"), "data=mine", f"output_dir={tmp_path / 'out'}")
    assert code == 2 and err.startswith(f"error: {message}") and err.count("\n") == 1, err


def test_each_experiment_states_its_resampling_and_the_rest_take_the_default_studys() -> None:
    """study.resampling has one home (conf/config.yaml: the default study's values); an experiment that
    wants other numbers says so in its own file."""
    expected = {"quick": (100, 50, 10), "cohort": (100, 50, 10), "vessels": (100, 50, 10),
                "generators": (50, 50, 10), "paper": (200, 50, 20), "generators_paper": (200, 50, 20)}
    assert sorted(expected) == options("experiment")
    for name, (n_boot, floor_splits, curve_repeats) in expected.items():
        settings = composed([f"experiment={name}"]).study.resampling
        assert (settings.enabled, settings.n_boot, settings.floor_splits, settings.curve_repeats) == (
            True, n_boot, floor_splits, curve_repeats), name
    assert "resampling" not in (CONFIG_DIR / "experiment" / "quick.yaml").read_text()


TYPED_RECEIVERS = {"cfg", "data_cfg", "cfg.study", "self.cfg.study", "cfg.study.cv", "cfg.segmentation",
                   "cfg.training", "t", "cfg.metrics", "cfg.data"}


def test_code_reads_typed_keys_plainly_without_a_second_default() -> None:
    """No `cfg.get("key", default)` on a typed config node: the default would be a second home."""
    from dataclasses import fields

    from benchmark import config_schema

    typed = {f.name for schema in vars(config_schema).values() if isinstance(schema, type)
             and hasattr(schema, "__dataclass_fields__") for f in fields(schema)}
    found = []
    for package in ("benchmark", "perturbations", "segmentation", "reports"):
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                        and len(node.args) == 2 and isinstance(node.args[0], ast.Constant)
                        and node.args[0].value in typed and ast.unparse(node.func.value) in TYPED_RECEIVERS):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} {ast.unparse(node)}")
    assert not found, found


@pytest.mark.slow
def test_the_installed_package_finds_its_config_outside_the_checkout(tmp_path: Path) -> None:
    """A non-editable install (the wheel's files only) runs both Hydra apps from an unrelated folder."""
    source = tmp_path / "source"  # a copy of the working tree: the build writes its build/ folder there
    skip = shutil.ignore_patterns(".git", ".venv", "site", "outputs", "build", "*.egg-info", "__pycache__", ".*_cache")
    shutil.copytree(REPO, source, ignore=skip)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    packages = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              check=True, capture_output=True, text=True).stdout.strip()
    (Path(packages) / "reuse_test_environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--ignore-installed", "-c", str(source / ".ci" / "constraints.txt"), str(source)],
                   check=True, capture_output=True, text=True, cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(python), *args], cwd=elsewhere, env=env, capture_output=True, text=True)

    where = run("-c", "import benchmark, conf; print(benchmark.__file__); print(conf.__file__)").stdout.split()
    assert all(Path(p).is_relative_to(Path(packages)) for p in where) and len(where) == 2, where
    shipped = sorted(p.relative_to(Path(where[1]).parent) for p in Path(where[1]).parent.rglob("*.yaml"))
    assert shipped == sorted(p.relative_to(CONFIG_DIR) for p in CONFIG_DIR.rglob("*.yaml"))
    job = run("-m", "benchmark", "--cfg", "job", "experiment=paper")
    assert job.returncode == 0 and "n_boot: 200" in job.stdout, job.stderr
    score = run("-m", "benchmark.score", "--cfg", "job", "real=/r", "generated=/g")
    assert score.returncode == 0 and "n_boot: 100" in score.stdout, score.stderr
    refused = run("-m", "benchmark", "data.slices.policy=middle")
    assert refused.returncode == 2 and refused.stderr.startswith("error: data.slices.policy=middle"), refused.stderr


def test_a_config_file_that_leaves_schema_keys_empty_is_named(tmp_path: Path) -> None:
    """A metrics file written from scratch (not from `defaults: [default, _self_]`) that forgets keys the base
    file sets: the missing keys are named before anything is computed."""
    (tmp_path / "conf" / "metrics").mkdir(parents=True)
    (tmp_path / "conf" / "metrics" / "mine.yaml").write_text(
        "_target_: benchmark.metrics.suite.MetricSuite\nmax_images: 8\nseed: 0\non_error: flag\n"
        "extractors: {}\nmetrics:\n  mse: {_target_: benchmark.metrics.entries.ImageMetric, function: mse}\n")
    cache = tmp_path / "cache"
    code, err = call("--config-dir", str(tmp_path / "conf"), "metrics=mine", f"output_dir={tmp_path / 'out'}",
                     f"data.cache_dir={cache}")
    assert code == 2 and err.startswith("error: metrics.cache_entries, metrics.max_train_images have no value"), err
    assert not cache.exists()


@pytest.mark.parametrize(("override", "message"), [
    ("flags.ood_k=many", "flags.ood_k=many is not a whole number"),
    ("resampling.nboot=3", "resampling.nboot is not a key of the config: did you mean resampling.n_boot?"),
    ("data.slices.policy=middle", "data.slices.policy=middle is not one of brain, tumour, mix"),
    ("seed=-1", "seed=-1 is outside the seed range"),
])
def test_the_score_app_refuses_a_bad_config_in_one_paragraph(tmp_path: Path, override: str, message: str) -> None:
    code, err = call("score", f"real={tmp_path}", f"generated={tmp_path}", override, f"output_dir={tmp_path / 'out'}")
    assert code == 2 and err.startswith(f"error: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()
