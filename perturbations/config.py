"""Build the configured perturbations from `cfg.perturbation` (one YAML per perturbation, Hydra `_target_`).

Each file in conf/perturbation/ starts with `# @package perturbation.<name>`, so that a list of them in the
defaults composes to `cfg.perturbation = {name: {_target_: ..., end points...}}`. Everything is checked here,
at config time, before any compute: the package header, that `_target_` imports and is a Perturbation, and
the end points (each class's constructor raises ConfigError).
"""

from __future__ import annotations

from collections.abc import Mapping

from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from benchmark.errors import BenchmarkError, ConfigError
from perturbations.base import FAMILIES, Perturbation


def instantiate_perturbations(cfg_perturbation: DictConfig | Mapping | None) -> dict[str, Perturbation]:
    """{name: Perturbation} for every entry of `cfg.perturbation`, validated (ConfigError otherwise)."""
    if cfg_perturbation is None:
        return {}
    node = cfg_perturbation if isinstance(cfg_perturbation, DictConfig) else OmegaConf.create(dict(cfg_perturbation))
    if "_target_" in node:
        raise ConfigError(
            f"cfg.perturbation has a '_target_' ({node['_target_']}) directly under it: a file in "
            "conf/perturbation/ lacks its package header. Make its first line '# @package perturbation.<name>' "
            "(<name> = the file name without .yaml), so that several perturbations can be selected together"
        )
    return {str(name): build_one(str(name), entry) for name, entry in node.items()}


def build_one(name: str, entry: object) -> Perturbation:
    """Instantiate and check one perturbation config node."""
    where = f"perturbation '{name}' (conf/perturbation/{name}.yaml)"
    if not isinstance(entry, DictConfig) or "_target_" not in entry:
        raise ConfigError(f"{where} must be a mapping with a '_target_' naming its class, got {entry!r}")
    target = str(entry["_target_"])
    try:
        cls = get_class(target)
    except Exception as error:  # hydra raises ImportError / ValueError variants
        raise ConfigError(f"{where}: _target_ '{target}' does not import ({first_line(error)}); check the module "
                          "path and that its folder is on PYTHONPATH") from None
    if not (isinstance(cls, type) and issubclass(cls, Perturbation)):
        raise ConfigError(f"{where}: _target_ '{target}' is not a subclass of perturbations.Perturbation")
    try:
        perturbation = instantiate(entry, _convert_="all")
    except InstantiationException as error:
        cause = root_cause(error)
        if isinstance(cause, BenchmarkError):
            raise ConfigError(f"{where}: {cause}") from None
        raise ConfigError(f"{where}: cannot build {target}: {first_line(cause)}") from None
    perturbation.name = name
    if perturbation.family not in FAMILIES or perturbation.scope not in ("sample", "set"):
        raise ConfigError(f"{where}: family must be one of {sorted(FAMILIES)} and scope 'sample' or 'set', got "
                          f"{perturbation.family!r} / {perturbation.scope!r}")
    return perturbation


def root_cause(error: BaseException) -> BaseException:
    """The innermost exception behind Hydra's InstantiationException wrappers."""
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
