"""User-facing errors: the CLI prints their message as one paragraph and exits non-zero."""

import sys


class BenchmarkError(Exception):
    """A problem the user can act on (bad input file, bad configuration, missing weights)."""


class DataError(BenchmarkError):
    """An input image, label map or dataset folder is missing, unreadable or inconsistent."""


class DiskFullError(DataError):
    """The disk or quota filled up while a file was written; nothing was half-written."""


class ConfigError(BenchmarkError):
    """The composed configuration names something that does not exist or has invalid values."""


def report_error(error: BenchmarkError) -> None:
    """Print a user-facing error as one paragraph on stderr (not wrapped, so paths stay whole)."""
    print("error: " + " ".join(str(error).split()), file=sys.stderr)
