"""The vascular arm's data: synthetic cerebral arterial trees, a TOF-MRA renderer, real vessel masks
rendered with it, and the calibration of the renderer against a real TOF crop.

Modules, in pipeline order: `tree` (the arterial tree), `rasterise` (tree -> partial-volume maps),
`anatomy` (static head tissue from MNI152), `tof` (the renderer), `phantom` and `real` (subjects),
`masks` (reading and checking masks and TOF volumes), `sources` (datasets for the study, `data.source=vessels`),
`calibrate` (measured against the real crop).
"""

from benchmark.data.vessels.masks import binary_vessels, read_tof, read_vessel_mask
from benchmark.data.vessels.rasterise import VesselMaps, rasterise_tree
from benchmark.data.vessels.tof import TofParameters, render_tof
from benchmark.data.vessels.tree import VesselTree, cerebral_arterial_tree

__all__ = ["TofParameters", "VesselMaps", "VesselTree", "binary_vessels", "cerebral_arterial_tree", "rasterise_tree",
           "read_tof", "read_vessel_mask", "render_tof"]
