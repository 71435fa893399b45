"""Radiomics features in batched torch (pyradiomics 3.0.1 definitions) and the Fréchet radiomics distance."""

from benchmark.metrics.radiomics.extractor import RadiomicsExtractor, radiomics_features
from benchmark.metrics.radiomics.frd import frd
from benchmark.metrics.radiomics.frd_v1 import frd_v1_features

__all__ = ["RadiomicsExtractor", "frd", "frd_v1_features", "radiomics_features"]
