"""Reports: analysis of the stored results (sensitivity, agreement with Dice, memorisation), figures,
report.md and a self-contained report.html. `python -m reports output_dir=PATH` rebuilds them."""
