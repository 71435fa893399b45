"""`data.label_map: null`: decide a source's label convention once, from the values all its label files hold.

One file cannot tell the convention: a BRATS 2015 file without enhancing tumour holds 3 (non-enhancing)
and no 4, and a file holding only 0/1/2 reads as BraTS 2021/2023 (1 core, 2 oedema) or as BRATS 2012
(1 oedema, 2 core), which swap two regions. So every label file of the source is read first:
- 4 in some file and 3 in none: BraTS 2017-2021 (`brats2021`, 4 enhancing);
- 3 in some file and 4 in none: BraTS 2023 (`brats2023`, 3 enhancing);
- 3 and 4 both present (in one file or across files): refused, naming a file of each (BRATS 2015 uses
  both: set `data.label_map=brats2015`);
- only 0/1/2: refused (which of 1 and 2 is oedema cannot be told); only 0: tumour-free, any map.
The values of each file are remembered by its content digest, so a rerun decodes only changed files.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmark.atomic import write_text_atomically
from benchmark.data.labels import PRESETS, outside_values_message, present_values
from benchmark.data.nifti import load_volume
from benchmark.errors import DataError

log = logging.getLogger(__name__)

BRATS_VALUES = frozenset({0, 1, 2, 3, 4})
FIX = ("set data.label_map to the dataset's convention: brats2015 (1 necrosis, 2 oedema, 3 non-enhancing, "
       "4 enhancing), brats2021 (1 core, 2 oedema, 4 enhancing), brats2023 (1 core, 2 oedema, 3 enhancing), or a "
       "mapping such as data.label_map='{0: 0, 1: 2, 2: 1}' for BRATS 2012 (1 oedema, 2 core)")


def label_values(path: Path) -> frozenset[int]:
    """The distinct values of one label file."""
    return frozenset(present_values(load_volume(path, kind="label").data).tolist())


def convention_of(values: dict[Path, frozenset[int]], source: str) -> dict[int, int]:
    """The label map of a source from the values each of its label files holds (see the module docstring);
    `source` names the dataset in the error."""
    for path, held in sorted(values.items(), key=lambda item: str(item[0])):
        if not held <= BRATS_VALUES:
            raise DataError(outside_values_message(path, set(held), set(BRATS_VALUES)))
    with_three = sorted((p for p, v in values.items() if 3 in v), key=str)
    with_four = sorted((p for p, v in values.items() if 4 in v), key=str)
    if with_three and with_four:
        both = [p for p in with_three if p in set(with_four)]
        where = (f"{both[0]} holds both 3 and 4" if both else
                 f"{with_three[0]} holds 3 ({len(with_three)} of {len(values)} files do) and {with_four[0]} holds 4 "
                 f"({len(with_four)} of {len(values)} do)")
        raise DataError(f"{source}: data.label_map is null but the label files disagree on the enhancing value: "
                        f"{where}. BraTS 2021 uses 4, BraTS 2023 uses 3, BRATS 2015 uses both (3 non-enhancing); "
                        f"{FIX}.")
    if with_four:
        return dict(PRESETS["brats2021"])
    if with_three:
        return dict(PRESETS["brats2023"])
    ambiguous = sorted((p for p, v in values.items() if v & {1, 2}), key=str)
    if ambiguous:
        raise DataError(f"{source}: data.label_map is null and the {len(values)} label files hold only 0, 1 and 2 "
                        f"(e.g. {ambiguous[0]}): without an enhancing value (3 or 4) the convention cannot be told, "
                        f"and BraTS (1 core, 2 oedema) and BRATS 2012 (1 oedema, 2 core) swap two regions; {FIX}.")
    return dict(PRESETS["brats2023"])


class RememberedValues:
    """Label values by the file's content digest, kept in a JSON file (None: in memory only) so a rerun does
    not decode unchanged label files again."""

    def __init__(self, index: Path | None, digest: Callable[[Path], str]) -> None:
        self.index, self.digest, self.known = index, digest, {}
        if index is not None and index.is_file():
            try:
                self.known = {key: frozenset(v) for key, v in json.loads(index.read_text()).items()}
            except (OSError, ValueError, TypeError, AttributeError):
                log.warning("%s is unreadable; label values are read again", index)
        self.changed = False

    def values(self, path: Path) -> frozenset[int]:
        key = self.digest(path) if Path(path).is_file() else None
        if key is None or key not in self.known:
            found = label_values(path)
            if key is None:
                return found
            self.known[key], self.changed = found, True
        return self.known[key]

    def save(self) -> None:
        if self.index is None or not self.changed:
            return
        try:
            self.index.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomically(self.index, json.dumps({k: sorted(v) for k, v in self.known.items()}))
        except OSError as error:
            log.warning("cannot save the label values to %s (%s)", self.index, error)


def detect_label_map(label_files: Sequence[Path], source: str, remembered: RememberedValues, workers: int = 1
                     ) -> dict[int, int]:
    """Read every label file of a source (threads: decompression releases the GIL; unchanged files from
    `remembered`) and decide its label map once (`convention_of`)."""
    files = sorted({Path(p) for p in label_files}, key=str)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        values = dict(zip(files, pool.map(remembered.values, files), strict=True))
    remembered.save()
    return convention_of(values, source)
