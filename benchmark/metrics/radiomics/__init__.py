"""Radiomics features in batched torch (pyradiomics 3.0.1 definitions) and the Fréchet radiomics distance."""

from benchmark.metrics.radiomics.extractor import RadiomicsExtractor, radiomics_features
from benchmark.metrics.radiomics.frd import frd

__all__ = ["RadiomicsExtractor", "frd", "radiomics_features"]
