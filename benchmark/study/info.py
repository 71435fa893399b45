"""study.json: what the report needs to state next to every figure (data, sizes, extractors,
preprocessing), gathered from the config and the parts without recomputing anything."""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from benchmark.data.imageset import PreparedData
from benchmark.study.scope import hash_config

PACKAGES = ("mri-metric-bench", "torch", "monai", "torchio", "numpy", "scipy", "scikit-image", "hydra-core")


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def software() -> dict[str, str]:
    """Python, the package versions and torch's CPU thread count: a trained segmenter's Dice depends on all
    of them in the second or third decimal (float sums run in another order), so a run records what it ran on."""
    return {"python": sys.version.split()[0], **{p: _version(p) for p in PACKAGES},
            "torch threads": str(torch.get_num_threads())}


def _ordinal(value: float) -> str:
    """1 -> '1st', 99 -> '99th', 2.5 -> '2.5th'."""
    if value != int(value):
        return f"{value:g}th"
    n = int(value)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def preprocessing_line(data_cfg: DictConfig) -> str:
    """One line describing the preprocessing of the data config."""
    size = "x".join(str(s) for s in data_cfg.size)
    low, high = (_ordinal(float(q)) for q in data_cfg.clip_percentiles)
    resample = f", resampled to {data_cfg.resample_mm} mm" if data_cfg.resample_mm else ""
    modality = data_cfg.modality if isinstance(data_cfg.modality, str) else "/".join(data_cfg.modality)
    return (f"{data_cfg.mode.upper()} {modality}, "
            f"clipped at the {low}/{high} percentile inside the brain, scaled to [0, 1]{resample}, "
            f"centre crop/pad to {size}")


def extractor_descriptions(suite: Any, description: dict[str, dict]) -> dict[str, str]:
    """One line per feature extractor the suite's metrics used (network, weights, preprocessing)."""
    used = {info["feature_extractor"] for info in description.values() if info.get("feature_extractor")}
    return {name: suite.extractor(name).describe() for name in sorted(used)}


def levels_of(perturbation: Any, severities: list[int]) -> list[int]:
    """The severities a perturbation runs at: a generated set has one level, 1."""
    return [1] if perturbation.family == "generated" else [int(s) for s in severities]


def study_info(cfg: DictConfig, data: PreparedData, perturbations: dict, suite: Any, elapsed: dict[str, float],
               created: str) -> dict[str, Any]:
    """The content of study.json (schema in benchmark.study.files)."""
    description = suite.describe()
    summary = data.summary
    severities = list(cfg.study.severities)
    return {
        "title": str(cfg.study.title),
        "created": created,
        "command": " ".join(sys.argv),
        "config_hash": hash_config(OmegaConf.to_container(cfg, resolve=True)),
        "seeds": [int(s) for s in cfg.study.seeds],
        "data": {
            "source": summary["source"], "description": str(summary.get("root") or ""),
            "modalities": summary["modalities"], "spatial_dims": data.test.spatial_dims,
            "shape": summary["item_shape"][1:], "spacing_mm": summary["spacing_mm"],
            "n_subjects": {k: v["subjects"] for k, v in summary["splits"].items()},
            "n_items": {k: v["items"] for k, v in summary["splits"].items()},
        },
        "preprocessing": preprocessing_line(cfg.data),
        "feature_extractors": extractor_descriptions(suite, description),
        "metrics": description,
        "perturbations": {
            name: {"family": p.family, "scope": p.scope,
                   "parameters": {s: p.parameters(s) for s in levels_of(p, severities)}}
            for name, p in perturbations.items()
        },
        "segmentation": OmegaConf.to_container(cfg.segmentation, resolve=True),
        "elapsed_s": elapsed,
        "software": software(),
    }
