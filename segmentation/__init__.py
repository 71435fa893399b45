"""Downstream brain-tumour segmentation with MONAI: the yardstick every image-quality metric is judged by.

`train_segmenter` trains (or loads from the checkpoint cache) a UNet or SegResNet on an ImageSet;
`evaluate_segmenter` gives per-subject Dice and HD95 on BraTS regions and labels;
`Segmenter.encoder_features` exposes the trained bottleneck as a task-aware feature extractor;
`plot_training_curves` draws the loss and validation Dice.
`python -m benchmark.lab.segmentation_baseline` measures the baseline on the default data (clean vs tumours removed).
"""

from segmentation.curves import plot_training_curves
from segmentation.evaluation import evaluate_segmenter
from segmentation.segmenter import Segmenter
from segmentation.training import train_segmenter

__all__ = ["Segmenter", "evaluate_segmenter", "plot_training_curves", "train_segmenter"]
