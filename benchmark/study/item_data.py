"""Per-item side files of metric cells: what the subject bootstrap, the noise floor and the sample-size
curves recompute every metric from, without running a network again.

For every metric cell the runner writes `store/items/<cell file stem>.npz` (atomically) next to the cell's
JSON file. It holds, for the candidate set of that cell:
- `slot`: the test subject each candidate item stands for (its clean counterpart's subject; for a
  set-level perturbation of the same size, the subject of the slot it replaced; "" when unattached,
  e.g. the items of a generated set);
- `item__<output>`, `pos__<output>`, `agg__<output>`: the per-item values of every metric that averages
  items (pair values for reference metrics), their candidate positions and how they aggregate;
- `feat__<extractor>`, `fpos__<extractor>`: the features a distribution metric used and their positions;
- `rad__<output>`: the radiomics features of an FRD entry (all items).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from benchmark.atomic import write_bytes_atomically
from benchmark.data.imageset import ImageSet
from benchmark.metrics.image_statistics import FrechetRadiomicsDistance
from benchmark.metrics.suite import MetricSuite

ITEMS_FOLDER = "items"


@dataclass
class ItemData:
    """One set's per-item values and features, as read back from a side file."""

    slot: np.ndarray  # (n,) str: the test subject each item stands for, "" when unattached
    items: dict[str, tuple[np.ndarray, np.ndarray, str]] = field(default_factory=dict)  # values, positions, aggregate
    features: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # features, positions
    radiomics: dict[str, np.ndarray] = field(default_factory=dict)  # FRD output -> (n, d) features

    def __len__(self) -> int:
        return len(self.slot)


def slot_subjects(candidate: ImageSet, test: ImageSet, reference_index: torch.Tensor) -> np.ndarray:
    """The test subject each candidate item stands for (see the module docstring)."""
    index = torch.as_tensor(reference_index).cpu().numpy()
    subjects = np.asarray(test.subject_ids, dtype=str)
    same_size = len(candidate) == len(test)
    return np.array([subjects[j] if j >= 0 else (subjects[i] if same_size else "") for i, j in enumerate(index)],
                    dtype=str)


def capture(suite: MetricSuite, candidate: ImageSet, slot: np.ndarray, device: torch.device | str) -> ItemData:
    """The per-item values and features of the suite's last `compute` on `candidate` (cache hits only
    for features the suite computed; FRD features from the entry's own cache)."""
    data = ItemData(slot=np.asarray(slot, dtype=str))
    for output, item in suite.items.items():
        data.items[output] = (item.values.numpy(), item.positions.numpy().astype(np.int64), item.aggregate)
    used = {m.feature_extractor for m in suite.metrics.values() if m.feature_extractor}
    for name in sorted(used):
        if any(output in suite.flags for m in suite.metrics.values() if m.feature_extractor == name
               for output in m.outputs()):
            continue  # a flagged metric may mean the extractor failed: do not compute it again here
        features = suite.features_of(name, candidate, "candidate", device).detach().cpu().numpy()
        data.features[name] = (features, suite.capped_positions(len(candidate)))
    for metric in suite.metrics.values():
        if not isinstance(metric, FrechetRadiomicsDistance) or metric.name in suite.flags:
            continue
        if metric.max_images is None or len(candidate) <= metric.max_images:  # capped subsets: not resampled
            data.radiomics[metric.name] = metric._features(candidate).detach().cpu().numpy()
    return data


def item_path(store_root: Path, cell_file_name: str) -> Path:
    """store/items/<cell file stem>.npz."""
    return Path(store_root) / ITEMS_FOLDER / (Path(cell_file_name).stem + ".npz")


def save(path: Path, data: ItemData) -> None:
    """Write `data` as one .npz file, atomically."""
    arrays: dict[str, np.ndarray] = {"slot": data.slot}
    for output, (values, positions, aggregate) in data.items.items():
        arrays |= {f"item__{output}": values, f"pos__{output}": positions, f"agg__{output}": np.array(aggregate)}
    for name, (features, positions) in data.features.items():
        arrays |= {f"feat__{name}": features.astype(np.float32), f"fpos__{name}": positions}
    for output, features in data.radiomics.items():
        arrays[f"rad__{output}"] = features
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(Path(path), buffer.getvalue())


def load(path: Path) -> ItemData | None:
    """Read a side file back; None when absent."""
    if not Path(path).is_file():
        return None
    with np.load(path, allow_pickle=False) as archive:
        data = ItemData(slot=archive["slot"].astype(str))
        for key in archive.files:
            kind, _, name = key.partition("__")
            if kind == "item":
                data.items[name] = (archive[key], archive[f"pos__{name}"], str(archive[f"agg__{name}"]))
            elif kind == "feat":
                data.features[name] = (archive[key].astype(np.float64), archive[f"fpos__{name}"])
            elif kind == "rad":
                data.radiomics[name] = archive[key]
    return data
