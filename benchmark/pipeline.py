"""The study as a sequence of stages (data -> study -> report), each writing under output_dir.

Everything named by the configuration (perturbations, metric suite) is instantiated before any data is
prepared, so a misspelt name or a bad parameter fails at once, not after minutes of compute.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from benchmark.config_checks import check_complete, check_metric_suite, check_seeds, check_study_config
from benchmark.errors import ConfigError
from benchmark.runtime import resolve_device, seed_everything

log = logging.getLogger("benchmark")
STAGES = ("data", "study", "report")


def build_metric_suite(cfg: DictConfig) -> Any:
    """Instantiate the metric suite of `cfg.metrics`, turning import and argument errors into ConfigError."""
    try:
        suite = instantiate(cfg.metrics)
    except InstantiationException as error:
        raise ConfigError(f"the metric suite (metrics=...) cannot be built: {error}") from error
    check_metric_suite(suite)
    return suite


def run_pipeline(cfg: DictConfig) -> None:
    """Run the stages listed in `cfg.stages` in pipeline order."""
    from benchmark.data.prepare import prepare_data
    from benchmark.data.summary import write_data_summary

    stages = [str(stage) for stage in cfg.stages]
    from benchmark.data.config_checks import check_data_config

    check_complete(cfg)
    check_seeds(cfg)
    check_data_config(cfg.data)
    device = resolve_device(str(cfg.device))
    seed_everything(int(cfg.seed))
    output_dir = Path(cfg.output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"output_dir={output_dir} cannot be created ({error.strerror or error}); choose a "
                          "writable folder.") from error
    log.info("output_dir=%s device=%s seed=%s stages=%s", output_dir, device, cfg.seed, stages)

    perturbations, suite = {}, None
    if "study" in stages:
        from benchmark.study.generator_stage import instantiate_generators
        from perturbations import check_severities, instantiate_perturbations
        from segmentation.checks import check_buildable
        from segmentation.checks import check_config as check_segmentation_config

        perturbations = instantiate_perturbations(cfg.perturbation)
        generated = cfg.study.generated or {}
        if not perturbations and not generated and not cfg.generators:
            raise ConfigError("no perturbation is selected (perturbation=[] or an experiment without any); choose "
                              "some: perturbation=[gaussian_noise,tumour_remove], or score generated sets with "
                              "study.generated='{ddpm: /path/to/outputs}'.")
        check_study_config(cfg, [*perturbations, *generated])
        check_segmentation_config(cfg.segmentation)
        check_buildable(cfg.segmentation)
        check_severities(list(cfg.study.severities))
        instantiate_generators(cfg.generators)  # a bad generator config fails before any compute
        suite = build_metric_suite(cfg)

    from benchmark.study.cross_validation import check_cv_config

    cv_folds = check_cv_config(cfg)
    elapsed: dict[str, float] = {}
    start = time.perf_counter()
    folds = None
    if cv_folds is None:
        data = prepare_data(cfg.data, seed=int(cfg.seed))
    else:
        from benchmark.data.folds import prepare_folds
        from benchmark.data.imageset import PreparedData

        folds = prepare_folds(cfg.data, int(cfg.seed), cv_folds)
        data = PreparedData(folds.everyone, folds.folds[0].val, folds.everyone, folds.summary, fingerprint="folds")
    write_data_summary(data, output_dir)
    elapsed["data"] = time.perf_counter() - start

    if "study" in stages:
        run_study(cfg, data, device, output_dir, perturbations, suite, elapsed, folds)
    if "report" in stages:
        from reports.build import build_report

        start = time.perf_counter()
        build_report(output_dir, seed=int(cfg.seed))
        elapsed["report"] = time.perf_counter() - start
        log.info("report: %s", output_dir / "report.html")


def run_study(cfg: DictConfig, data: Any, device: Any, output_dir: Path, perturbations: dict, suite: Any,
              elapsed: dict[str, float], folds: Any = None) -> None:
    """Sweep every cell into the results store, then write study.json and the example images."""
    from benchmark.study.files import write_examples, write_study_info
    from benchmark.study.generated import GeneratedSet
    from benchmark.study.info import study_info
    from benchmark.study.runner import StudyRunner

    for name, folder in (cfg.study.generated or {}).items():
        perturbations[name] = GeneratedSet(name, Path(folder), cfg.data, data.test, int(cfg.seed))
    if cfg.generators:  # train (or load) the configured generators; their outputs become generated sets
        from benchmark.study.generator_stage import add_generator_sets

        start = time.perf_counter()
        add_generator_sets(cfg, data, device, output_dir, perturbations)
        elapsed["generators"] = time.perf_counter() - start  # training (or loading) and the grid's sampling
    created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    start = time.perf_counter()
    if folds is None:
        runner = StudyRunner(cfg, data, device, output_dir, perturbations, suite)
        runner.run()
    else:
        from benchmark.study.cross_validation import run_cv_study

        runner = run_cv_study(cfg, folds, device, output_dir, perturbations, suite)[0]
    elapsed["study"] = time.perf_counter() - start
    if cfg.study.get("copy_detection"):  # which detector finds copies (benchmark.score.copy_detection)
        from benchmark.score.copy_detection import study_copy_detection

        study_copy_detection(data, suite, int(cfg.seed), device, output_dir)
    write_examples(output_dir / "examples.npz", runner.examples())
    info = study_info(cfg, data, perturbations, suite, elapsed, created)
    info["perturbations"] = {**previous_perturbations(output_dir / "study.json"), **info["perturbations"]}
    write_study_info(output_dir / "study.json", info)


def previous_perturbations(path: Path) -> dict[str, Any]:
    """The perturbations an earlier writer of this study.json described (runs with other perturbation lists
    or multirun jobs into one output_dir), so the merged file describes every cell in the store."""
    import json

    if not path.is_file():
        return {}
    try:
        previous = json.loads(path.read_text()).get("perturbations") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return previous if isinstance(previous, dict) else {}
