"""The study's orchestration: the sweep over perturbations and severities, and its results store."""
