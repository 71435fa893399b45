"""Replace a file atomically: write a temporary file in the same folder, then `os.replace` it.

A reader sees the old file or the new one, never part of one; a writer killed mid-way leaves only a
hidden `.<name>.*.part` file, which no reader looks at. Used for every file the tool writes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

FILE_MODE = 0o644  # mkstemp creates 0600 files; results are meant to be shared


def replace_atomically(path: Path, write: Callable[[str], None], fsync: bool = False) -> None:
    """Call `write(temporary_path)`, optionally flush it to disk, then rename it over `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        write(tmp)
        if fsync:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomically(path: Path, data: bytes, fsync: bool = False) -> None:
    """Replace `path` with `data`."""
    replace_atomically(path, lambda tmp: Path(tmp).write_bytes(data), fsync=fsync)


def write_text_atomically(path: Path, text: str) -> None:
    """Replace `path` with UTF-8 `text`."""
    write_bytes_atomically(path, text.encode("utf-8"))
