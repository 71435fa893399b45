"""`data.label_map: null` decides the label convention once per source from all its label files, and
refuses when the files disagree or when 0/1/2 alone cannot tell oedema from core."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.data import label_convention
from benchmark.data.label_convention import convention_of
from benchmark.data.labels import PRESETS
from benchmark.data.prepare import prepare_data
from benchmark.errors import DataError
from tests import niftis
from tests.test_data_readers import SMALL, data_config


def write_brats_with(root: Path, conventions: list[dict[int, int]]) -> Path:
    """BraTS 2021-named cases whose labels (ours: 1 core, 2 oedema, 3 enhancing) are written through each
    case's {our value: file value} mapping."""
    for i, to_file in enumerate(conventions):
        image, labels = niftis.synthetic_case(i)
        case = root / f"case{i}"
        niftis.save(image, case / f"case{i}_flair.nii.gz")
        niftis.save(np.vectorize(to_file.get)(labels).astype(np.uint8), case / f"case{i}_seg.nii.gz")
    return root


BRATS2021 = {0: 0, 1: 1, 2: 2, 3: 4}
BRATS2015_WITHOUT_ENHANCING = {0: 0, 1: 1, 2: 2, 3: 3}  # its enhancing region written as non-enhancing (3)
BRATS2012 = {0: 0, 1: 2, 2: 1, 3: 2}  # 1 oedema, 2 whole active core


@pytest.mark.parametrize("values, expected", [
    ({"a": {0, 1, 2, 4}, "b": {0, 2, 4}, "c": {0}}, "brats2021"),
    ({"a": {0, 1, 2, 3}, "b": {0, 2}}, "brats2023"),
    ({"a": {0}, "b": {0}}, "brats2023"),  # tumour-free: nothing to map
])
def test_one_convention_from_all_files(values: dict[str, set[int]], expected: str) -> None:
    found = convention_of({Path(k): frozenset(v) for k, v in values.items()}, "data")
    assert found == PRESETS[expected]


@pytest.mark.parametrize("values, message", [
    ({"a": {0, 1, 2, 4}, "b": {0, 1, 2, 3}}, r"b holds 3 \(1 of 2 files do\) and a holds 4 \(1 of 2 do\)"),
    ({"a": {0, 1, 3, 4}}, r"a holds both 3 and 4.*brats2015"),
    ({"a": {0, 1, 2}, "b": {0, 2}}, r"hold only 0, 1 and 2 \(e.g. a\).*BRATS 2012 \(1 oedema, 2 core\)"),
])
def test_disagreeing_or_ambiguous_files_are_refused(values: dict[str, set[int]], message: str) -> None:
    with pytest.raises(DataError, match=message):
        convention_of({Path(k): frozenset(v) for k, v in values.items()}, "data")


def test_a_brats_2015_file_without_4_is_not_read_as_brats_2023(tmp_path: Path) -> None:
    root = write_brats_with(tmp_path / "set", [BRATS2021, BRATS2021, BRATS2015_WITHOUT_ENHANCING])
    cfg = data_config("data=brats", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}", *SMALL)
    with pytest.raises(DataError, match=r"case2_seg.nii.gz holds 3 \(1 of 3 files do\) and \S+case0_seg.nii.gz"):
        prepare_data(cfg, seed=0)


def test_brats_2012_labels_are_refused_without_a_map_and_read_with_one(tmp_path: Path) -> None:
    root = write_brats_with(tmp_path / "set", [BRATS2012] * 3)
    common = ["data=brats", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}", *SMALL]
    with pytest.raises(DataError, match="cannot be told"):
        prepare_data(data_config(*common), seed=0)
    read = prepare_data(data_config(*common, "data.label_map={0: 0, 1: 2, 2: 1}"), seed=0)
    ours = prepare_data(data_config("data=brats", f"data.root={write_brats_with(tmp_path / 'ours', [BRATS2021] * 3)}",
                                    f"data.cache_dir={tmp_path / 'cache'}", *SMALL), seed=0)
    expected = torch.where(ours.train.labels == 3, 1, ours.train.labels)  # BRATS 2012 has no enhancing region
    assert torch.equal(read.train.labels, expected.to(read.train.labels.dtype)) and bool((expected == 2).any())


def test_a_consistent_set_is_read_with_its_convention(tmp_path: Path) -> None:
    root = write_brats_with(tmp_path / "set", [BRATS2021] * 3)
    data = prepare_data(data_config("data=brats", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}",
                                    *SMALL), seed=0)
    assert 3 in set(torch.cat([data.train.labels, data.val.labels, data.test.labels]).unique().tolist())  # 4 -> 3


def test_a_rerun_reads_the_values_of_unchanged_label_files_from_the_cache(tmp_path: Path, monkeypatch) -> None:
    root = write_brats_with(tmp_path / "set", [BRATS2021] * 3)
    cfg = data_config("data=brats", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}", *SMALL)
    first = prepare_data(cfg, seed=0)
    assert (tmp_path / "cache" / "prepared" / "label_values.json").is_file()

    def decoded(path: Path) -> frozenset[int]:
        raise AssertionError(f"{path} decoded again")

    monkeypatch.setattr(label_convention, "label_values", decoded)
    again = prepare_data(cfg, seed=0)
    assert torch.equal(first.train.labels, again.train.labels)
    seg = root / "case1" / "case1_seg.nii.gz"  # a changed file is read again, and its 3 is seen
    _, labels = niftis.synthetic_case(1)
    niftis.save(labels.astype(np.uint8), seg)
    with pytest.raises(AssertionError, match=r"case1_seg\.nii\.gz decoded again"):
        prepare_data(cfg, seed=0)
