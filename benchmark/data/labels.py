"""Label maps: from a dataset's label values onto ours (BraTS 2023: 0 background, 1 necrotic / non-enhancing
core, 2 oedema, 3 enhancing), by a named preset or a plain mapping, validated before any compute.

Presets (`data.label_map=<name>`):
- `brats2015`: 1 necrosis, 2 oedema, 3 non-enhancing, 4 enhancing; 3 joins the core (1), as in BraTS
  since 2017 (Bakas et al. 2018), 4 -> 3;
- `brats2021`: 1 necrotic / non-enhancing core, 2 oedema, 4 enhancing -> 3;
- `brats2023`: already ours (0-3);
- `msd`: Task01_BrainTumour, 1 oedema, 2 non-enhancing, 3 enhancing -> 2, 1, 3;
- `binary`: 0 background, 1 lesion -> 1 (counted in the whole tumour and the core; no enhancing region);
- `brats2012`: BRATS 2012, 1 oedema, 2 active core (necrosis and enhancing not split) -> 2, 1 (no
  enhancing region).
A region none of a map's targets belongs to (`source_regions`) is one the source cannot contain: it is
scored n/a for that source's subjects, never 0 or 1.
`null` decides BraTS 2021 or 2023 once per source from the values all its label files hold
(`benchmark.data.label_convention`); `map_labels` given None decides from its one file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.data.imageset import REGIONS
from benchmark.errors import ConfigError, DataError

OUR_LABELS = (0, 1, 2, 3)
MANY_VALUES = 16  # a label file with more distinct values than this is taken for an image
PRESETS: dict[str, dict[int, int]] = {
    "brats2015": {0: 0, 1: 1, 2: 2, 3: 1, 4: 3},
    "brats2021": {0: 0, 1: 1, 2: 2, 4: 3},
    "brats2023": {0: 0, 1: 1, 2: 2, 3: 3},
    "msd": {0: 0, 1: 2, 2: 1, 3: 3},
    "binary": {0: 0, 1: 1},
    "brats2012": {0: 0, 1: 2, 2: 1},
}



def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise ValueError(what)
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text.lstrip("-").isdigit():
        raise ValueError(what)
    return int(text)


def resolve_label_map(value: Any) -> dict[int, int] | None:
    """`data.label_map` as {source value: our value}: a preset name, a mapping, or None (detect BraTS).

    Keys must be non-negative integers and targets one of 0-3 (ConfigError naming the bad entry).
    """
    if value is None or (isinstance(value, str) and value.lower() in ("", "null", "none", "auto")):
        return None
    if isinstance(value, str):
        if value.lower() not in PRESETS:
            raise ConfigError(f"data.label_map={value} is not a preset; choose one of {', '.join(sorted(PRESETS))} "
                              "or give a mapping such as data.label_map='{0: 0, 1: 1, 2: 2, 4: 3}'.")
        return dict(PRESETS[value.lower()])
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f"data.label_map must be a preset name ({', '.join(sorted(PRESETS))}) or a non-empty mapping "
                          f"source value -> our value, got {value!r}.")
    mapping = {}
    for key, target in value.items():
        try:
            source = _as_int(key, "key")
            ours = _as_int(target, "target")
        except ValueError:
            raise ConfigError(f"data.label_map entry {key!r}: {target!r} is not integer -> integer.") from None
        if source < 0:
            raise ConfigError(f"data.label_map key {source} is negative; label values in files are non-negative "
                              "integers (0 is background).")
        if ours not in OUR_LABELS:
            raise ConfigError(f"data.label_map maps {source} to {ours}, outside our labels 0-3 (0 background, "
                              "1 necrotic/non-enhancing core, 2 oedema, 3 enhancing); the region would be dropped.")
        mapping[source] = ours
    return mapping


def map_labels(data: np.ndarray, label_map: dict[int, int] | None, path: Path) -> np.ndarray:
    """Map a label volume's values onto ours; every value present must be in the map (DataError naming
    the file otherwise). None detects BraTS 2021 (4 enhancing) or 2023 (3 enhancing)."""
    values = set(present_values(data).tolist())
    if label_map is None:
        if {3, 4} <= values:
            raise DataError(f"{path}: holds both 3 and 4; BraTS uses 4 (2021) or 3 (2023) for enhancing. For "
                            "BRATS 2015 (3 non-enhancing, 4 enhancing) set data.label_map=brats2015.")
        label_map = PRESETS["brats2021"] if 4 in values else PRESETS["brats2023"]
    outside = sorted(values - set(label_map))
    if outside:
        raise DataError(outside_values_message(path, values, set(label_map)))
    lookup = np.zeros(max(label_map) + 1, dtype=np.uint8)
    for source, target in label_map.items():
        lookup[source] = target
    return lookup[data]


def outside_values_message(path: Path, values: set[int], expected: set[int]) -> str:
    """The error for a label file holding values outside `expected`: the values when they are few, else their
    count and range and that the file looks like an image rather than a label map."""
    outside = sorted(values - expected)
    if len(values) > MANY_VALUES:
        return (f"{path}: holds {len(values)} distinct values from {min(values)} to {max(values)}, not a few labels "
                f"({sorted(expected)} expected): this looks like an image rather than a label map; point the label "
                "(seg) file of this case to its segmentation.")
    return (f"{path}: label values {outside} are outside the expected set {sorted(expected)}; check the dataset "
            f"layout (data=brats|msd|folder|pattern|manifest) or set data.label_map to a preset "
            f"({', '.join(sorted(PRESETS))}) or a mapping such as data.label_map='{{0: 0, 1: 1, 2: 2, 4: 3}}'.")


def present_values(data: np.ndarray) -> np.ndarray:
    """The distinct values of an integer volume, sorted: counted with `bincount` when they are small
    non-negative integers (label maps; several times faster than `np.unique`), else `np.unique`."""
    if data.size and np.can_cast(data.dtype, np.intp) and data.min() >= 0 and data.max() < 1 << 16:
        return np.flatnonzero(np.bincount(data.ravel(order="K")))  # memory order: no strided copy
    return np.unique(data)


def source_regions(label_map: dict[int, int] | None) -> list[str]:
    """The BraTS regions (WT, TC, ET) a source with this label map can contain: those holding one of the
    map's targets. None (BraTS detected per file) contains every region."""
    if label_map is None:
        return list(REGIONS)
    targets = set(label_map.values())
    return [region for region, values in REGIONS.items() if targets & set(values)]


def scored_structures(label_map: dict[int, int] | None) -> list[str]:
    """The structures Dice is scored on for a source: its regions (`source_regions`), plus the single labels
    NCR and ED only when the source separates all three tumour labels (in BRATS 2012 label 1 holds the
    enhancing voxels too, so it is not the necrotic core)."""
    separated = label_map is None or {1, 2, 3} <= set(label_map.values())
    return [*source_regions(label_map), *(["NCR", "ED"] if separated else [])]
