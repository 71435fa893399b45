"""Run-time choices shared by every stage: the compute device and seeding."""

from __future__ import annotations

import random

import numpy as np
import torch

from benchmark.errors import ConfigError


def resolve_device(requested: str) -> torch.device:
    """Map `auto | cpu | cuda | cuda:N` to a torch device; `auto` picks CUDA when one is present."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"device={requested} was requested but no CUDA device is available on this machine "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda is not None}); use device=cpu or device=auto."
        )
    if requested != "cpu" and not requested.startswith("cuda"):
        raise ConfigError(f"device={requested} is not one of auto, cpu, cuda, cuda:N.")
    return torch.device(requested)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (`seed`: 0 to 2**32 - 1, see `config_checks.check_seed`); stages also
    derive their own generators from the seed."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
