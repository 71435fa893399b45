"""Score a user's own generated images: `mribench score real=DIR generated=DIR [train=DIR]`.

The study's metric suite on the generated set against real images, each metric with its real-vs-real
noise floor and a bootstrap interval (`uncertainty`), the verdicts of a stored study about that metric
(`verdicts`), and per-image flags: nearest training image, copy / near-copy and out-of-distribution, with
thresholds calibrated on real images (`flags`). `copy_detection` benchmarks which detector finds copies.
"""
