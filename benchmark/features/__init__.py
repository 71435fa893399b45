"""Feature extractors that map images to (N, d) float features for the distribution metrics.

Each extractor is a torch module built from weights that ship inside an installed package or from a
file the user supplies; nothing is downloaded at run time. Select one by name with `build_extractor`.
"""

from benchmark.features.registry import build_extractor

__all__ = ["build_extractor"]
