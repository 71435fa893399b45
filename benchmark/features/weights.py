"""Locating weight files shipped inside installed packages, without importing those packages."""

from __future__ import annotations

import importlib.util
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.errors import BenchmarkError


def packaged_file(package: str, relative: str, install_hint: str) -> Path:
    """Path of `relative` inside the installed `package` (found with find_spec, never imported)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BenchmarkError(
            f"The weight file {relative} ships with the Python package '{package}', which is not installed. "
            f"Install it with: {install_hint}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise BenchmarkError(
            f"The package '{package}' is installed but its weight file {path} is missing; reinstall it with: "
            f"{install_hint}"
        )
    return path


def user_file(path: str | Path | None, what: str, how_to_get: str) -> Path:
    """A user-supplied weight file that must exist; the error says how to obtain it."""
    if path is None or str(path) == "":
        raise BenchmarkError(f"{what} needs a weight file, and none was configured. {how_to_get}")
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise BenchmarkError(f"{what}: the weight file {resolved} does not exist. {how_to_get}")
    return resolved


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global except the few numpy constructors array pickles use."""

    ALLOWED = frozenset(
        {
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weight file")
        if module.startswith("numpy.core"):
            module = module.replace("numpy.core", "numpy._core", 1)
        return getattr(__import__(module, fromlist=[name]), name)


def load_numpy_pickle(path: Path) -> dict[str, Any]:
    """A nested dict of numpy arrays from a pickle, loaded with only numpy types allowed."""
    try:
        tree = _NumpyOnlyUnpickler(io.BytesIO(path.read_bytes())).load()
    except (pickle.UnpicklingError, EOFError) as error:
        raise BenchmarkError(f"Could not read the weight file {path}: {error}") from error
    if not isinstance(tree, dict):
        raise BenchmarkError(f"The weight file {path} does not hold a dict of arrays.")
    return tree


def flatten_tree(tree: dict[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    """{'a': {'b': array}} -> {'a/b': array}."""
    flat: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten_tree(value, f"{prefix}{key}/"))
        else:
            flat[f"{prefix}{key}"] = np.asarray(value)
    return flat


def load_state_dict_file(path: Path, what: str) -> dict[str, torch.Tensor]:
    """A PyTorch state dict (tensors only: weights_only=True) with wrapper prefixes such as `module.` removed."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise BenchmarkError(f"Could not read the {what} weight file {path}: {error}") from error
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BenchmarkError(f"The {what} weight file {path} is not a PyTorch state dict of tensors.")
    for prefix in ("module.", "model.", "backbone."):
        if state and all(key.startswith(prefix) for key in state):
            state = {key[len(prefix) :]: value for key, value in state.items()}
    return state
