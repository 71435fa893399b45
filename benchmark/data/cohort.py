"""Several datasets in one study (`data=cohort`): each entry of `data.sources` is read by its own reader
with its own label convention and format, and the cases of all of them form one cohort.

    data:
      source: cohort
      root: /data                       # the folder the sources' relative roots are read from
      sources:
        brats2015:                      # the source's name: carried by its subjects into every output
          source: pattern               # its reader: brats | msd | folder | pattern | manifest
          root: brats2015-deepmedic     # relative to data.root (or absolute)
          patterns: {flair: "*/{subject}/Flair_subtrMeanDivStd.nii.gz", label: ...}
          label_map: brats2015
        brats2018: {source: brats, root: brats2018-thirteen, label_map: brats2021}

Every other data key (modality, size, slices, split, ...) is the cohort's and applies to every source.
Subject ids must be unique across sources; splits and folds are stratified by source
(`stratified_order`), so each source is spread over train, validation and test in proportion.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from benchmark.data.labels import resolve_label_map
from benchmark.data.readers import CaseFiles
from benchmark.errors import BenchmarkError, ConfigError, DataError

COHORT = "cohort"
READERS = ("brats", "msd", "folder", "pattern", "manifest")
SOURCE_KEYS = ("source", "root", "label_map", "patterns", "manifest", "channel_names")
FindCases = Callable[[DictConfig, Sequence[str]], tuple[Path, list[CaseFiles]]]


def cohort_sources(data_cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """`data.sources` as {name: plain entry}, each checked: a known reader, known keys, a valid label map
    (ConfigError naming `data.sources.<name>` and the fix)."""
    sources = data_cfg.sources
    if not sources or not OmegaConf.is_dict(sources):
        raise ConfigError("data=cohort needs data.sources, a mapping of source name -> {source: <reader>, root: "
                          "<folder>, label_map: <preset>}, e.g. data.sources='{a: {source: brats, root: /data/a}}'.")
    plain = OmegaConf.to_container(sources, resolve=True)
    for name, entry in plain.items():
        key = f"data.sources.{name}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{key}={entry!r} must be a mapping such as {{source: brats, root: /data/{name}}}.")
        reader = entry.get("source")
        if reader not in READERS:
            raise ConfigError(f"{key}.source={reader} is not a reader; choose one of {', '.join(READERS)} (a cohort "
                              "cannot nest another cohort or the phantom).")
        unknown = sorted(set(entry) - set(SOURCE_KEYS))
        if unknown:
            raise ConfigError(f"{key} has unknown keys {unknown}; a source takes {', '.join(SOURCE_KEYS)} (the other "
                              "data keys, such as modality and size, are the cohort's and set under data.).")
        if reader == "pattern" and not isinstance(entry.get("patterns"), dict):
            raise ConfigError(f"{key}.patterns is not set; a pattern source needs one glob per modality and label, "
                              f"e.g. {key}.patterns='{{flair: \"{{subject}}/flair.nii.gz\", label: "
                              f"\"{{subject}}/seg.nii.gz\"}}'.")
        try:
            resolve_label_map(entry.get("label_map"))
        except ConfigError as error:
            raise ConfigError(f"{key}: {error}") from None
    return plain


def source_root(data_cfg: DictConfig, name: str, entry: dict[str, Any], key: str = "root") -> Path | None:
    """A source's root (or manifest) as a path: relative ones are read from `data.root`."""
    value = entry.get(key)
    if value is None:
        return None
    path = Path(str(value)).expanduser()
    if not path.is_absolute():
        base = data_cfg.root
        if base is None:
            raise ConfigError(f"data.sources.{name}.{key}={value} is relative but data.root is not set; pass "
                              f"data.root=/path/to/the/datasets or make data.sources.{name}.{key} absolute.")
        path = Path(str(base)).expanduser() / path
    return path


def check_cohort(data_cfg: DictConfig) -> None:
    """Before any file is read: every source well formed and its folder (or manifest) present."""
    for name, entry in cohort_sources(data_cfg).items():
        what = "manifest" if entry["source"] == "manifest" else "root"
        path = source_root(data_cfg, name, entry, what)
        if path is None:
            raise ConfigError(f"data.sources.{name}.{what} is not set; give the {name} dataset's "
                              f"{'manifest file' if what == 'manifest' else 'folder'}.")
        exists = path.is_file() if what == "manifest" else path.is_dir()
        if not exists:
            raise DataError(f"{path}: the folder of source '{name}' (data.sources.{name}.{what}) does not exist; "
                            f"point data.root at the folder that holds it, correct data.sources.{name}.{what}, or "
                            f"drop the source with ~data.sources.{name}.")


def source_config(data_cfg: DictConfig, name: str, entry: dict[str, Any]) -> DictConfig:
    """The data config one source is read with: the cohort's settings and the source's own keys."""
    base = OmegaConf.to_container(data_cfg, resolve=True)
    base.pop("sources", None)
    modality = base.get("modality")
    channel_names = base.get("channel_names") or ([modality] if isinstance(modality, str) else modality)
    merged = {**base, "label_map": None, "channel_names": channel_names, **entry}
    for key in ("root", "manifest"):
        path = source_root(data_cfg, name, entry, key)
        merged[key] = None if path is None else str(path)
    return OmegaConf.create(merged)


def find_cohort_cases(data_cfg: DictConfig, modalities: Sequence[str], find: FindCases
                      ) -> tuple[Path, list[CaseFiles], dict[str, dict[str, Any]]]:
    """Every source's cases, each tagged with its source name; returns the cohort root, the cases and the
    plain config of each source. A subject id found in two sources is a DataError naming both files."""
    check_cohort(data_cfg)
    cases: list[CaseFiles] = []
    owner: dict[str, CaseFiles] = {}
    configs = {}
    for name, entry in cohort_sources(data_cfg).items():
        cfg = source_config(data_cfg, name, entry)
        try:
            _, found = find(cfg, modalities)
        except BenchmarkError as error:
            raise type(error)(f"source '{name}' (data.sources.{name}, reader {entry['source']}): {error}") from None
        if not found:
            raise DataError(f"source '{name}' (data.sources.{name}): no cases found under {cfg.root or cfg.manifest}; "
                            f"check data.sources.{name}.source={entry['source']} and its root.")
        for case in found:
            case.source = name
            if case.subject_id in owner:
                other = owner[case.subject_id]
                raise DataError(
                    f"subject id '{case.subject_id}' is in two sources: '{other.source}' "
                    f"({next(iter(other.images.values()))}) and '{name}' ({next(iter(case.images.values()))}); "
                    "ids must be unique across a cohort. Drop the duplicate patient from one source (for example "
                    "with a manifest source) or rename one of the case folders.")
            owner[case.subject_id] = case
        cases += found
        configs[name] = OmegaConf.to_container(cfg)
    root = Path(str(data_cfg.root)).expanduser() if data_cfg.root is not None else Path(".")
    return root, cases, configs


def stratified_order(subject_ids: Sequence[str], sources: Sequence[str], seed: int) -> list[str]:
    """The subjects in an order that spreads every source evenly: each source shuffled by the seed, then all
    interleaved by relative rank (a subject at rank r of n sits at (r + 0.5) / n). Contiguous blocks of this
    order (the split) and every k-th entry (the folds) then hold each source in proportion."""
    rng = np.random.default_rng([seed, 1])
    keyed = []
    for source in sorted(set(sources)):
        members = sorted(s for s, src in zip(subject_ids, sources, strict=True) if src == source)
        order = rng.permutation(len(members))
        keyed += [((rank + 0.5) / len(members), source, members[i]) for rank, i in enumerate(order)]
    return [subject for _, _, subject in sorted(keyed)]
