"""Checks that run before any compute: the command line (before Hydra composes it, whose own errors are
tracebacks) and the composed study config. Each failure is one ConfigError naming the key and the fix."""

from __future__ import annotations

import difflib
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from benchmark.errors import ConfigError, report_error

log = logging.getLogger("benchmark")
GROUPS = ("data", "perturbation", "metrics", "segmentation", "experiment")
SEVERITIES = range(6)
SEEDS = range(2**32)  # what every generator accepts (NumPy's legacy seeding needs 0 <= seed < 2**32)


def _overrides(argv: Sequence[str]) -> tuple[list[tuple[str, str]], list[Path]]:
    """(key, value) of every `key=value` argument and the extra config folders (`--config-dir`, `-cd`)."""
    pairs, folders, take_folder = [], [], False
    for arg in argv:
        if take_folder:
            folders.append(Path(arg).expanduser())
            take_folder = False
        elif arg in ("--config-dir", "-cd"):
            take_folder = True
        elif arg.startswith("--config-dir="):
            folders.append(Path(arg.split("=", 1)[1]).expanduser())
        elif not arg.startswith("-") and "=" in arg:
            key, value = arg.split("=", 1)
            pairs.append((key.lstrip("+~"), value.strip()))
    return pairs, folders


def _names(value: str) -> list[str] | None:
    """Option names in a group override value (`a`, `[a,b]`, a sweep `a,b`); None for sweep functions."""
    if "(" in value or "$" in value:
        return None
    return [name.strip().strip("'\"") for name in value.strip("[]").split(",") if name.strip()]


def group_options(group: str, config_dirs: Iterable[Path]) -> list[str]:
    """Names of the YAML files of a config group in every config folder."""
    return sorted({p.stem for folder in config_dirs for p in (folder / group).glob("*.yaml")})


def check_output_dir(value: str) -> None:
    """output_dir must be a folder we can create or write into (Hydra creates it before the app runs)."""
    path = Path(value).expanduser()
    if "${" in value:
        return
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output_dir={value} is a file, not a folder; choose another output_dir (a folder is "
                          "created when absent).")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"output_dir={value}: {existing} is a file, so the folder cannot be created there; "
                          "choose another output_dir.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"output_dir={value}: {existing} is not writable; choose a folder you can write to.")


def check_command_line(argv: Sequence[str], config_dir: Path) -> None:
    """Overrides Hydra would only reject with a traceback, or not at all: output_dir and group option names
    (listing the valid ones)."""
    pairs, extra = _overrides(argv)
    folders = [config_dir, *extra]
    for key, value in pairs:
        if key == "output_dir":
            check_output_dir(value)
        elif key in GROUPS:
            names = _names(value)
            if names is None:
                continue
            valid = group_options(key, folders)
            unknown = [n for n in names if n not in valid and n != "null"]
            if unknown:
                raise ConfigError(f"{key}={value}: {', '.join(unknown)} is not a {key} option; valid names: "
                                  f"{', '.join(valid)} (YAML files in conf/{key}/ or --config-dir).")


def _int_list(value: Any, key: str, example: str) -> list[int]:
    if not isinstance(value, list | tuple | ListConfig) or not value:
        raise ConfigError(f"{key}={value} must be a non-empty list of whole numbers, e.g. {key}={example}.")
    if any(isinstance(v, bool) or not isinstance(v, int) for v in value):
        raise ConfigError(f"{key}={list(value)} must hold whole numbers only, e.g. {key}={example}.")
    return [int(v) for v in value]


def check_complete(cfg: DictConfig, readers_check: Iterable[str] = ("data.root", "data.manifest")) -> None:
    """Every key holds a value: a config file that does not start from its group's base file (e.g. a
    metrics file without `defaults: [default, _self_]`) leaves the schema's MISSING keys empty. The keys in
    `readers_check` are left to the data readers, whose errors say what to point them at."""
    missing = [key for key in OmegaConf.missing_keys(cfg) if key not in set(readers_check)]
    if missing:
        raise ConfigError(f"{', '.join(sorted(missing))} {'has' if len(missing) == 1 else 'have'} no value (??? in "
                          "the composed config): set them on the command line (key=VALUE) or in the config file, "
                          "or start the file from its group's base file (defaults: [phantom, _self_] in conf/data/, "
                          "[default, _self_] in conf/metrics/, [unet2d, _self_] in conf/segmentation/).")


def check_seed(value: Any, key: str = "seed") -> int:
    """The one check of a seed: a whole number from 0 to 2**32 - 1, else a ConfigError naming `key`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}={value} is not a whole number; pass e.g. {key}=0.")
    if value not in SEEDS:
        raise ConfigError(f"{key}={value} is outside the seed range 0 to {SEEDS[-1]} (2**32 - 1) that NumPy and "
                          f"the other generators accept; pass e.g. {key}=0.")
    return value


def check_seeds(cfg: DictConfig) -> None:
    """Every `seed` and `seeds` key of the composed config (seed, study.seeds, data.phantom.seed, the metric
    suite's seeds, ...), before anything is computed."""
    def visit(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for name, value in node.items():
                key = f"{path}.{name}" if path else str(name)
                if name == "seed":
                    check_seed(value, key)
                elif name == "seeds":
                    for seed in _int_list(value, key, "[0,1,2]"):
                        check_seed(seed, key)
                else:
                    visit(value, key)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                visit(value, f"{path}[{index}]")

    visit(OmegaConf.to_container(cfg, resolve=True), "")


def check_study_config(cfg: DictConfig, names: Iterable[str]) -> None:
    """study.severities and the selections only_perturbation, only_severity and utility_severities against
    what the study would run (`names`: perturbations and generated sets); the seeds are `check_seeds`'."""
    study = cfg.study
    severities = _int_list(study.severities, "study.severities", "[0,1,3,5]")
    bad = [s for s in severities if s not in SEVERITIES]
    if bad:
        raise ConfigError(f"study.severities={severities}: {bad} outside 0 (clean) to 5.")
    names = sorted(names)
    only_p, only_s = study.only_perturbation, study.only_severity
    if only_p is not None and str(only_p) not in names:
        raise ConfigError(f"study.only_perturbation={only_p} is not in this study; choose one of {', '.join(names)}.")
    if only_s is not None and (isinstance(only_s, bool) or only_s not in severities):
        raise ConfigError(f"study.only_severity={only_s} is not one of study.severities={severities}.")
    generated = study.generated
    if generated is not None and not isinstance(generated, DictConfig):
        raise ConfigError(f"study.generated={generated} must map names to folders, e.g. "
                          "study.generated='{ddpm: /path/to/ddpm_outputs}'.")
    utility = study.utility_severities
    if utility is not None:
        levels = _int_list(utility, "study.utility_severities", "[5]")
        invalid = [s for s in levels if s not in SEVERITIES]
        if invalid:
            raise ConfigError(f"study.utility_severities={levels}: {invalid} outside 0-5, so no utility model would "
                              "be trained there; choose from study.severities or null (every severity).")
        unused = [s for s in levels if s not in severities]
        if unused:
            log.warning("study.utility_severities=%s: %s not in study.severities=%s; no utility model there",
                        levels, unused, severities)


def check_metric_suite(suite: Any) -> None:
    """Parameters of built metrics that their classes accept but cannot use (k-NN metrics need k >= 1)."""
    for name, metric in getattr(suite, "metrics", {}).items():
        k = getattr(metric, "k", None)
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ConfigError(f"metrics.metrics.{name}.k={k}: the number of nearest neighbours must be a whole "
                              "number >= 1 (Naeem et al. use 5).")


def run_reporting_hydra_errors(app: Callable[[], None], args: Sequence[str], config_name: str) -> None:
    """Run a Hydra app (`benchmark.cli.run`, `benchmark.score.cli.run`) with Hydra's own errors (override
    grammar, unknown keys, values the schema refuses) raised to us instead of printed in Hydra's format, and
    reported like ours: one paragraph, exit 2 (`debug=true` in `args` shows the traceback)."""
    from hydra.errors import HydraException, InstantiationException

    from benchmark.config_schema import CONFIG_DIR

    previous = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        app()
    except HydraException as error:
        if isinstance(error, InstantiationException) or "debug=true" in args:
            raise
        report_error(hydra_error(error, args, CONFIG_DIR, config_name))
        sys.exit(2)
    finally:
        if previous is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = previous


def hydra_error(error: Exception, argv: Sequence[str], config_dir: Path, config_name: str = "config"
                ) -> ConfigError:
    """Hydra's own errors while composing the command line (override grammar, unknown or duplicate keys, a
    missing config, a value of the wrong type or outside a choice of the schema in benchmark.config_schema) as
    one ConfigError naming the override or config file, the key and the fix."""
    from hydra.errors import OverrideParseException

    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, OverrideParseException):
        key, _, value = error.override.partition("=")
        if re.search(r"[{}\[\]()*?,:$'\"\\ ]", value) and not value.startswith(("[", "{", "'", '"')):
            hint = (f"a value holding braces or other special characters must be quoted: {key}='{value}' (in a "
                    f"shell, quote the whole argument too: \"{key}='{value}'\")")
        else:
            hint = "write key=value, lists as [a,b], and quote values holding special characters: key='a{b}c'"
        return ConfigError(f"the override {error.override} cannot be parsed ({first_line}); {hint}. The override "
                           "grammar: https://hydra.cc/docs/advanced/override_grammar/basic/")
    problem = schema_problem(error)
    if problem is not None and problem.unknown_key:
        parent, _, name = problem.key.rpartition(".")
        known = _keys_of(parent, argv, config_dir, config_name)
        close = difflib.get_close_matches(name, known, n=1)
        suggestion = f"did you mean {parent + '.' if parent else ''}{close[0]}? " if close else ""
        listing = f"the keys of {parent or 'the config'} are {', '.join(known)}; " if known else ""
        fix = ("fix the spelling in that file" if problem.where else
               f"fix the spelling, or add a new key on purpose with +{problem.key}=VALUE")
        return ConfigError(f"{problem.where}{problem.key} is not a key of the config: {suggestion}{listing}{fix} "
                           "(python -m benchmark --cfg job prints the whole composed config).")
    if problem is not None:
        value = "null" if problem.value is None else problem.value
        return ConfigError(f"{problem.where}{problem.key}={value} is {problem.expected}; fix the value "
                           "(docs/configuration.md lists every key with its type; python -m benchmark --cfg job "
                           "prints the composed config).")
    cause = error.__cause__
    detail = f" ({' '.join(str(cause).split())})" if cause is not None else ""
    return ConfigError(f"the command line cannot be composed into a config: {' '.join(str(error).split()).rstrip('.')}"
                       f"{detail}. "
                       "Check the overrides named there (python -m benchmark --help lists the groups and options).")


@dataclass(frozen=True)
class SchemaProblem:
    """A key the typed schema (benchmark.config_schema) refused while Hydra composed the config."""

    key: str            # full key, e.g. data.slices.policy or stages[1]
    value: Any          # the refused value (None for an unknown key)
    expected: str       # why the schema refuses the value, in words: "not a whole number"
    unknown_key: bool   # the key is not in the schema at all
    where: str          # "" for a command-line override, else "in conf file data/mine: "


def _expected(message: str) -> str:
    """What a schema type accepts, in words, from OmegaConf's validation message."""
    choices = re.search(r"expected one of \[(.*)\]", message)
    if choices:
        return f"not one of {choices.group(1)}"
    words = {"Integer": "a whole number", "Float": "a number", "Boolean": "true or false"}
    converted = re.search(r"could not be converted to (\w+)", message)
    if converted:
        return "not " + words.get(converted.group(1), f"of type {converted.group(1)}")
    if "is not a valid bool" in message:
        return "not true or false"
    if "is not a ListConfig" in message:
        return "not a list (write [a,b])"
    if re.search(r"Cannot assign \w+ to Dict|is not a DictConfig|is not a subclass of", message):
        return "not a mapping (write '{name: value}')"
    if "is not Optional" in message or "cannot be assigned None" in message:
        return "not allowed: this key needs a value, not null"
    return f"not accepted ({message})"


def schema_problem(error: Exception) -> SchemaProblem | None:
    """The key, value and expectation of a schema refusal in a Hydra composition error (an override's, whose
    cause is the OmegaConf error, or a config file's, whose message holds it); None for other errors."""
    from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

    cause = error.__cause__
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        message = str(cause.msg).splitlines()[0]
        key, value, where = str(cause.full_key), cause.value, ""
        unknown = isinstance(cause, ConfigKeyError | AttributeError) and " not in " in message
        if not unknown and not isinstance(cause, ValidationError):
            return None
    else:
        found = re.search(r"In '([^']+)': (\w+) raised while composing config:\n(.*)\n\s*full_key: (\S+)", str(error))
        if found is None or found.group(2) not in ("ValidationError", "ConfigKeyError", "ConfigAttributeError"):
            return None
        file, kind, message, key = found.groups()
        raw = re.search(r"[Vv]alue '([^']*)'", message)
        value, where = raw.group(1) if raw else None, f"in conf file {file}.yaml: "
        unknown = kind != "ValidationError" and " not in " in message
    return SchemaProblem(key, value, "" if unknown else _expected(message), unknown, where)


def _keys_of(parent: str, argv: Sequence[str], config_dir: Path, config_name: str = "config") -> list[str]:
    """The keys under `parent` in the config composed from the group choices on the command line (empty
    when it cannot be composed)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    choices = [f"{key}={value}" for key, value in _overrides(argv)[0]
               if key in GROUPS and _names(value) is not None and "," not in value.strip("[]")]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            cfg = compose(config_name, overrides=choices)
        node = OmegaConf.select(cfg, parent) if parent else cfg
        return sorted(str(k) for k in node) if isinstance(node, DictConfig) else []
    except Exception:  # only a suggestion: the error itself is already known
        return []
    finally:
        GlobalHydra.instance().clear()
