"""Process pools shared by the stages that fan work out over subjects (data preparation, the phantom).

A pool costs a second or two to start, so small jobs run in the calling process; workers are started with
forkserver where the platform has it, never by forking a process that already holds threads (torch, BLAS).
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.context import BaseContext

MIN_JOBS_FOR_WORKERS = 8  # below this a process pool costs more than it saves


def available_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def worker_count(requested: int, n_jobs: int) -> int:
    """Processes for `n_jobs` independent jobs: `requested` (0 = every available core), capped at the jobs,
    and 1 (no pool) below MIN_JOBS_FOR_WORKERS jobs."""
    if n_jobs < MIN_JOBS_FOR_WORKERS:
        return 1
    return max(1, min(requested or available_cores(), n_jobs))


def process_context() -> BaseContext:
    """forkserver where the platform has it (no fork of a process that holds threads), else spawn."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
