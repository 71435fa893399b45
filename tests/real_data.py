"""Where the real MRI of ../shared/data lives, and a clean skip when it is absent.

The files are real patients the project did not make (see ../shared/data/README.md); they are never
committed. A user's clone has no ../shared, so every test that reads them skips with a reason instead of
failing. MRIBENCH_SHARED_DATA points elsewhere when the folder has moved.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("MRIBENCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def shared_data(*parts: str) -> Path:
    """The path under ../shared/data, or skip the calling test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data {path} is absent (it lives in ../shared/data beside the project)")
    return path
