"""Localised edits of cerebral arteries in TOF-MRA images (occlusion, stenosis, aneurysm, small-vessel dropout,
tortuosity, calibre) on the centreline graph of the vessel mask."""
