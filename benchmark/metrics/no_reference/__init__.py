"""No-reference metrics per image: data-calibrated NIQE, BRISQUE-feature distance, sharpness, TV, SNR, CNR."""

from benchmark.metrics.no_reference.niqe import NIQE, BRISQUEDistance, brisque_features
from benchmark.metrics.no_reference.sharpness import blur_effect, total_variation, variance_of_laplacian
from benchmark.metrics.no_reference.snr import cnr, snr, tumour_cnr, vessel_cnr

__all__ = [
    "NIQE",
    "BRISQUEDistance",
    "blur_effect",
    "brisque_features",
    "cnr",
    "snr",
    "total_variation",
    "tumour_cnr",
    "variance_of_laplacian",
    "vessel_cnr",
]
