"""Content hashes of input files and a cache of prepared subjects, so a rerun skips NIfTI decoding.

`FileDigests` hashes a file's bytes (SHA-256) once and remembers the digest by path, size and
modification time in `<cache_dir>/prepared/file_digests.json`; a changed file gets a new digest. A
prepared subject (its items after preprocessing and slice selection) is stored under a key made of the
digests of every file it reads, the preprocessing settings and its random draw, in
`<cache_dir>/prepared/<key[:2]>/<key>.npz`: the same content and settings give the same key, anything else
another one, so a stale entry is never read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.atomic import replace_atomically, write_text_atomically
from benchmark.errors import ConfigError

CACHE_VERSION = 3  # bump when preprocessing changes what the same settings produce
SUBJECT_ARRAYS = ("images", "labels", "brain", "indices", "spacing")  # what a prepared subject holds
log = logging.getLogger(__name__)


def companion_files(path: Path) -> list[Path]:
    """The files that hold a header file's voxels: a MetaImage `.mhd`'s `ElementDataFile` (not LOCAL), an
    Analyze / NIfTI pair's `.img` beside its `.hdr`. A volume's content is its header and these together."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".hdr":
        return [f for f in (path.with_suffix(".img"), path.with_suffix(".img.gz")) if f.is_file()]
    if suffix != ".mhd":
        return []
    with open(path, "rb") as handle:
        for line in handle.read(1 << 16).decode("latin-1").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "ElementDataFile":
                name = value.strip()
                return [] if name.upper() in ("LOCAL", "") or name.upper().startswith("LIST") else [
                    path.parent / name]
    return []


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (and of its companion data files, see `companion_files`), hex."""
    digest = hashlib.sha256()
    for part in (Path(path), *companion_files(path)):
        with open(part, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def stamp(path: Path) -> str:
    """`size:mtime_ns` of a file and its companion data files (symlinks followed): what must stay equal for a
    remembered digest."""
    stats = [os.stat(part) for part in (Path(path), *companion_files(path))]
    return ";".join(f"{stat.st_size}:{stat.st_mtime_ns}" for stat in stats)


class FileDigests:
    """Content digests of files, remembered by (absolute path, size, mtime) in a JSON index."""

    def __init__(self, index: Path | None) -> None:
        self.index = index
        self.known: dict[str, list[str]] = {}  # path -> [stamp, digest]
        if index is not None and index.is_file():
            try:
                self.known = json.loads(index.read_text())
            except (OSError, ValueError):
                log.warning("%s is unreadable; file digests are computed again", index)
        self.changed = False

    def digest(self, path: Path) -> str:
        key, now = str(Path(path).absolute()), stamp(path)
        entry = self.known.get(key)
        if entry is not None and entry[0] == now:
            return entry[1]
        value = file_digest(path)
        self.known[key], self.changed = [now, value], True
        return value

    def save(self) -> None:
        if self.index is None or not self.changed:
            return
        try:
            self.index.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomically(self.index, json.dumps(self.known))
        except OSError as error:
            log.warning("cannot save the file digests to %s (%s)", self.index, error)
        self.changed = False


def subject_key(digests: list[str], settings: dict[str, Any], draw: list[int]) -> str:
    """Cache key of one prepared subject: its files' contents, the preprocessing, its random draw."""
    text = json.dumps([CACHE_VERSION, digests, settings, draw], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class SubjectCache:
    """Prepared subjects as .npz files under `<cache_dir>/prepared/` (None: caching off)."""

    def __init__(self, cache_dir: Path | None) -> None:
        self.root = None if cache_dir is None else Path(cache_dir).expanduser() / "prepared"
        if self.root is not None:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise ConfigError(f"data.cache_dir: cannot create {self.root} ({error.strerror or error}); set "
                                  "data.cache_dir to a writable folder (or data.prepared_cache=false).") from error

    def path(self, key: str) -> Path | None:
        return None if self.root is None else self.root / key[:2] / f"{key}.npz"

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        path = self.path(key)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path) as data:
                arrays = {name: data[name] for name in data.files}
            missing = [name for name in SUBJECT_ARRAYS if name not in arrays]
            if missing:
                raise ValueError(f"no {', '.join(missing)} array")
            return arrays
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:  # damaged: prepare again
            log.warning("prepared-data cache entry %s is unreadable (%s); preparing the subject again", path, error)
            return None

    def save(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        path = self.path(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            replace_atomically(path, lambda tmp: _save_npz(tmp, arrays))
        except OSError as error:
            log.warning("cannot write the prepared-data cache entry %s (%s)", path, error)


def _save_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as handle:  # a handle, or numpy appends .npz to the temporary name
        np.savez(handle, **arrays)


def writable_cache_dir(cache_dir: Path) -> Path:
    """`cache_dir` created if needed and writable, or a ConfigError saying how to point data.cache_dir elsewhere."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"data.cache_dir={cache_dir} cannot be created ({error.strerror or error}); set "
                          "data.cache_dir (or $MRIBENCH_CACHE) to a writable folder.") from error
    if not os.access(cache_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"data.cache_dir={cache_dir} is not writable; set data.cache_dir (or $MRIBENCH_CACHE) "
                          "to a writable folder.")
    return cache_dir
