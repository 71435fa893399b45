"""Per-item features for scoring: computed in batches under a progress bar, kept in the suite's item cache
and, between runs, in one file per extractor on disk, so re-scoring a changed folder runs the network on
the new or changed images only.

Cache files: `<feature_cache>/<extractor>.npz` with `keys` (SHA-1 of each item's pixels, as the suite's
`ItemFeatureCache` keys them) and `features` (one row per key). Only features are kept, never images.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from benchmark.atomic import write_bytes_atomically
from benchmark.data.imageset import ImageSet
from benchmark.metrics.suite import MetricSuite

log = logging.getLogger("benchmark.score")
BATCH = 64  # items per progress step


def cache_file(folder: Path, extractor: str) -> Path:
    return Path(folder) / f"{extractor}.npz"


def load_disk_cache(suite: MetricSuite, folder: Path | None, extractor: str) -> int:
    """Put the stored features of `extractor` into the suite's item cache; returns how many were read."""
    path = None if folder is None else cache_file(folder, extractor)
    if path is None or not path.is_file():
        return 0
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys, features = archive["keys"], archive["features"]
    except (OSError, ValueError, KeyError) as error:
        log.warning("feature cache %s unreadable (%s); recomputing", path, error)
        return 0
    for key, row in zip(keys.tolist(), features, strict=True):
        suite.cache.entries[(extractor, str(key))] = torch.from_numpy(np.array(row, dtype=np.float32))[None]
    return len(keys)


def save_disk_cache(suite: MetricSuite, folder: Path | None, extractor: str) -> None:
    """Write every cached item feature of `extractor` (one row per item) atomically."""
    if folder is None:
        return
    pairs = [(key[1], value) for key, value in suite.cache.entries.items()
             if key[0] == extractor and value.shape[0] == 1]
    if not pairs:
        return
    keys = np.array([key for key, _ in pairs])
    features = torch.cat([value for _, value in pairs]).numpy().astype(np.float32)
    Path(folder).mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, keys=keys, features=features)
    write_bytes_atomically(cache_file(folder, extractor), buffer.getvalue())


def features_with_progress(suite: MetricSuite, extractor: str, images: ImageSet, label: str,
                           device: torch.device) -> torch.Tensor:
    """(n, d) features of every item of `images`, new items through the network in batches with a progress
    bar; the suite's later `compute` finds them all in its cache."""
    network = suite.extractor(extractor)
    rows = []
    with tqdm(total=len(images), desc=f"{extractor} features: {label}", unit="img", leave=False) as bar:
        for start in range(0, len(images), BATCH):
            batch = images.images[start:start + BATCH]
            rows.append(suite.cache.get_items(extractor, batch, lambda unseen: network.extract(unseen, device)))
            bar.update(len(batch))
    return torch.cat(rows)
