"""Perturbations of clean brain MRI at severities 0 (identity) to 5: noise and artifacts, distribution shift,
localised tumour edits and memorisation. Build them from the config with `instantiate_perturbations`."""

from perturbations.base import (
    FAMILIES,
    SEVERITIES,
    Perturbation,
    PerturbedSet,
    SamplePerturbation,
    SetPerturbation,
    check_severities,
    check_severity,
)
from perturbations.config import instantiate_perturbations

__all__ = [
    "FAMILIES",
    "SEVERITIES",
    "Perturbation",
    "PerturbedSet",
    "SamplePerturbation",
    "SetPerturbation",
    "check_severities",
    "check_severity",
    "instantiate_perturbations",
]
