"""Run the command-line app in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, module: str = "benchmark", timeout: float = 600, python_path: tuple[Path, ...] = ()
            ) -> subprocess.CompletedProcess:
    """`python -m <module> args...` from the repository root (with `python_path` folders importable too);
    returns the finished process."""
    path = os.pathsep.join(str(p) for p in (REPO, *python_path))
    env = {**os.environ, "PYTHONPATH": path, "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)
