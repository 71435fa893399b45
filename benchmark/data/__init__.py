"""Data layer: read brain MRI (BraTS, MSD Task01, plain folders, the embedded phantom), preprocess, split."""

from benchmark.data.imageset import LABEL_NAMES, REGIONS, ImageSet, PreparedData

__all__ = ["LABEL_NAMES", "REGIONS", "ImageSet", "PreparedData"]
