"""The scope of a study: what every cell of one study shares, so the store can tell its cells from those an
earlier run with other data or another configuration left in the same output_dir.

Each stage's scope hash covers the prepared data's content fingerprint and the part of the config the
stage reads (the metric suite for `metrics`, the segmentation config for the Dice stages). A cell carries
the scope of its stage; the store keeps only cells whose scope matches the current study's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

STAGES = ("metrics", "dice_robustness", "dice_utility")


@dataclass(frozen=True)
class StudyScope:
    """`data`: content fingerprint of the prepared data; `stages`: stage -> hash of (data, stage config);
    `cells`: cell file name -> config hash of every cell this study defines (all of them, not only those a
    partial multirun job computes)."""

    data: str
    stages: Mapping[str, str]
    cells: Mapping[str, str] = field(default_factory=dict)

    def stamp(self, stage: str) -> dict[str, str]:
        """What a cell of `stage` records of the study it belongs to."""
        return {"data": self.data, "stage": self.stages.get(stage, "")}

    def reason_left_out(self, file_name: str, cell: Mapping[str, Any]) -> str | None:
        """None when the cell belongs to this study, else why not: 'other data' or 'another configuration'."""
        stamp = cell.get("scope")
        if not isinstance(stamp, Mapping) or stamp.get("data") != self.data:
            return "other data"
        if stamp.get("stage") != self.stages.get(str(cell["key"]["stage"])):
            return "another configuration"
        expected = self.cells.get(file_name)
        if expected is not None and expected != cell.get("config_hash"):
            return "another configuration"
        return None

    def as_json(self) -> dict[str, Any]:
        return {"data": self.data, "stages": dict(self.stages), "cells": dict(self.cells)}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> StudyScope:
        return cls(str(raw["data"]), dict(raw["stages"]), dict(raw.get("cells") or {}))


def stage_configs(cfg: DictConfig) -> dict[str, Any]:
    """The config each stage's results depend on, besides the perturbation, severity and seed."""
    metrics, segmentation = plain(cfg.metrics), plain(cfg.segmentation)
    extractors = (metrics or {}).get("extractors") or {}
    needs_segmenter = any("segmentation_encoder" in str(spec.get("_target_", "")) for spec in extractors.values())
    return {"metrics": [metrics, segmentation] if needs_segmenter else metrics,
            "dice_robustness": segmentation, "dice_utility": segmentation}


def hash_config(*parts: Any) -> str:
    """A stable 16-hex-digit hash of JSON-able parts (plain dicts, lists, numbers, strings).

    Pass everything that influences a cell (its perturbation's parameters, the metric suite, the data
    config, the segmentation config) as plain containers, e.g. `OmegaConf.to_container(cfg, resolve=True)`.
    """
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def study_scope(cfg: DictConfig, data_fingerprint: str, cells: Mapping[str, str] | None = None) -> StudyScope:
    """The scope of the study `cfg` on data with `data_fingerprint`."""
    stages = {stage: hash_config(stage, {"content": data_fingerprint}, config)
              for stage, config in stage_configs(cfg).items()}
    return StudyScope(data_fingerprint, stages, dict(cells or {}))


def plain(cfg: Any) -> Any:
    """A resolved plain-container copy of a config node (for hashing and JSON)."""
    return OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else cfg
