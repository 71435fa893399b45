"""Locating weight files shipped inside installed packages, without importing those packages."""

from __future__ import annotations

import importlib.util
import io
import pickle
import zipfile
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


class _ScriptModuleState:
    """Stands in for a TorchScript module class while unpickling: keeps its attributes, runs no code."""


_STORAGE_DTYPES = {"FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
                   "LongStorage": torch.int64, "IntStorage": torch.int32, "BoolStorage": torch.bool}


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: tuple, stride: tuple, *_: object) -> torch.Tensor:
    """A tensor viewing its record's storage (a bytearray the tensor keeps alive; nothing is copied)."""
    return storage.as_strided(size, stride, offset)


class _TorchScriptUnpickler(pickle.Unpickler):
    """Reads a TorchScript archive's `data.pkl` as plain attribute trees: module classes become
    `_ScriptModuleState`, tensors are rebuilt from the archive's `data/<key>` records; no other global loads."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(io.BytesIO(archive.read(f"{prefix}data.pkl")))
        self.archive, self.prefix = archive, prefix
        self.storages: dict[str, torch.Tensor] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("__torch__."):
            return _ScriptModuleState
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if (module, name) == ("torch.jit._pickle", "build_intlist"):
            return list
        if (module, name) == ("collections", "OrderedDict"):
            return dict
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a TorchScript archive")

    def persistent_load(self, pid: Any) -> torch.Tensor:
        _, dtype, key, _, numel = pid
        if key not in self.storages:
            raw = bytearray(self.archive.read(f"{self.prefix}data/{key}"))
            flat = torch.frombuffer(raw, dtype=dtype, count=numel) if numel else torch.empty(0, dtype=dtype)
            self.storages[key] = flat
        return self.storages[key]


def _module_tensors(state: _ScriptModuleState, prefix: str = "") -> list[tuple[str, torch.Tensor]]:
    tensors = []
    for name, value in vars(state).items():
        if isinstance(value, torch.Tensor):
            tensors.append((f"{prefix}{name}", value))
        elif isinstance(value, _ScriptModuleState):
            tensors.extend(_module_tensors(value, f"{prefix}{name}."))
    return tensors


def load_torchscript_tensors(path: Path, what: str) -> list[tuple[str, torch.Tensor]]:
    """The (dotted name, tensor) pairs of a TorchScript archive's modules, in the order the archive stores
    them (module attribute order, depth first), read with zipfile and a restricted unpickler: the archive's
    code is never compiled or run, so no `torch.jit.load` (deprecated since torch 2.13)."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
            if len(pickles) != 1:
                raise pickle.UnpicklingError("no single <archive>/data.pkl record")
            root = _TorchScriptUnpickler(archive, pickles[0][: -len("data.pkl")]).load()
    except (zipfile.BadZipFile, pickle.UnpicklingError, KeyError, ValueError, EOFError) as error:
        raise BenchmarkError(f"Could not read the {what} TorchScript weight file {path}: {error}") from error
    if not isinstance(root, _ScriptModuleState):
        raise BenchmarkError(f"The {what} weight file {path} does not hold a TorchScript module.")
    return _module_tensors(root)
