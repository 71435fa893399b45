"""Feature extractors that map images to (N, d) float features for the distribution metrics.

Each extractor is a torch module built from weights that ship inside an installed package or from a
file the user supplies; nothing is downloaded at run time. Configs select one by `_target_`.
"""

from benchmark.features.base import FeatureExtractor
from benchmark.features.inception import InceptionFeatures
from benchmark.features.medicalnet import MedicalNetFeatures
from benchmark.features.radimagenet import RadImageNetFeatures
from benchmark.features.segmentation_encoder import SegmentationEncoderFeatures

__all__ = [
    "FeatureExtractor",
    "InceptionFeatures",
    "MedicalNetFeatures",
    "RadImageNetFeatures",
    "SegmentationEncoderFeatures",
]
