"""Measurement scripts, apart from the library: nothing in benchmark/, perturbations/, segmentation/ or
reports/ imports them. Each runs as `python -m benchmark.lab.<name>` and writes what it measured:

- `realism`: how real the tumour edits look on real patients (seam, local texture, patch detector AUC);
- `segmentation_baseline`: the downstream segmenter on clean data against tumours removed;
- `phantom_check`: regenerate, time and draw the embedded phantom;
- `speed.metrics`, `speed.radiomics`, `speed.data_scale`: speed and memory against the libraries a user
  would otherwise pick, and the data stage at BraTS scale.
"""
