"""Replace a file atomically: write a temporary file in the same folder, then `os.replace` it.

A reader sees the old file or the new one, never part of one; a writer killed mid-way leaves only a
hidden `.<name>.*.part` file, which no reader looks at. Used for every file the tool writes. A full disk
(or quota) while writing removes the temporary file, leaves `path` as it was, and raises `DiskFullError`,
a user-facing error naming the file.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from benchmark.errors import DiskFullError

FILE_MODE = 0o644  # mkstemp creates 0600 files; results are meant to be shared
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(error: BaseException) -> bool:
    """Whether `error` says the disk or the user's quota is full (some libraries drop the errno)."""
    return isinstance(error, OSError) and (error.errno in FULL_ERRNOS or "No space left on device" in str(error))


def disk_full_error(path: Path | str, error: OSError) -> DiskFullError:
    """The one-paragraph error for a full disk while writing `path`."""
    return DiskFullError(
        f"no space left on the device while writing {path} ({error.strerror or error}); the file was not written "
        "(an earlier version of it, if any, is unchanged). Free disk space, or point output_dir and data.cache_dir "
        "at a larger disk, and run again: finished cells are kept and the study resumes."
    )


def replace_atomically(path: Path, write: Callable[[str], None], fsync: bool = False) -> None:
    """Call `write(temporary_path)`, optionally flush it to disk, then rename it over `path`."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as error:
        if is_disk_full(error):
            raise disk_full_error(path, error) from error
        raise
    os.close(fd)
    try:
        write(tmp)
        if fsync:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if is_disk_full(error):
            raise disk_full_error(path, error) from error  # type: ignore[arg-type]
        raise


def write_bytes_atomically(path: Path, data: bytes, fsync: bool = False) -> None:
    """Replace `path` with `data`."""
    replace_atomically(path, lambda tmp: Path(tmp).write_bytes(data), fsync=fsync)


def write_text_atomically(path: Path, text: str) -> None:
    """Replace `path` with UTF-8 `text`."""
    write_bytes_atomically(path, text.encode("utf-8"))
