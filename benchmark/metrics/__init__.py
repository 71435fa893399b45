"""Metric core: full-reference, no-reference and distribution metrics on batched torch code."""

from benchmark.metrics.distribution import frechet_distance

__all__ = ["frechet_distance"]
