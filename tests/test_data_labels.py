"""Label maps: `data.label_map` parsing, mapping a label volume onto ours, the errors that name the file, the
regions a source can hold, and the remembered label values of `data.label_map: null`."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from benchmark.data.label_convention import FIX, RememberedValues, convention_of, detect_label_map, label_values
from benchmark.data.labels import (
    MANY_VALUES,
    PRESETS,
    map_labels,
    outside_values_message,
    present_values,
    resolve_label_map,
    scored_structures,
    source_regions,
)
from benchmark.errors import ConfigError, DataError
from tests import niftis


@pytest.mark.parametrize("value", [None, "", "null", "None", "AUTO", "auto"])
def test_empty_or_auto_label_map_means_detect(value) -> None:
    assert resolve_label_map(value) is None


def test_preset_names_are_case_insensitive_and_return_a_copy() -> None:
    found = resolve_label_map("BraTS2021")
    assert found == {0: 0, 1: 1, 2: 2, 4: 3}
    found[4] = 0
    assert PRESETS["brats2021"][4] == 3  # the caller's copy, not the preset


def test_a_mapping_accepts_integers_and_integer_text() -> None:
    assert resolve_label_map({0: 0, " 1 ": "2", "4": 3}) == {0: 0, 1: 2, 4: 3}


@pytest.mark.parametrize("value, message", [
    ("brats2019", r"data.label_map=brats2019 is not a preset; choose one of binary, brats2012, brats2015, "
                  r"brats2021, brats2023, msd or give a mapping such as "
                  r"data.label_map='\{0: 0, 1: 1, 2: 2, 4: 3\}'\.$"),
    ({}, r"^data.label_map must be a preset name \(binary, brats2012, brats2015, brats2021, brats2023, msd\) or a "
         r"non-empty mapping source value -> our value, got \{\}\.$"),
    ([0, 1], r"non-empty mapping source value -> our value, got \[0, 1\]"),
    ({1: True}, r"entry 1: True is not integer -> integer"),
    ({True: 1}, r"entry True: 1 is not integer -> integer"),
    ({"1.0": 1}, r"entry '1.0': 1 is not integer"),
    ({1: "x"}, r"^data.label_map entry 1: 'x' is not integer -> integer\.$"),
    ({"-2": 1}, r"^data.label_map key -2 is negative; label values in files are non-negative integers \(0 is "
                r"background\)\.$"),
    ({1: 4}, r"^data.label_map maps 1 to 4, outside our labels 0-3 \(0 background, 1 necrotic/non-enhancing core, "
             r"2 oedema, 3 enhancing\); the region would be dropped\.$"),
    ({1: "-1"}, r"maps 1 to -1, outside our labels"),
])
def test_bad_label_maps_name_the_entry(value, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_label_map(value)


def test_zero_key_and_every_our_label_are_accepted() -> None:
    assert resolve_label_map({0: 3, 5: 0, 6: 1, 7: 2}) == {0: 3, 5: 0, 6: 1, 7: 2}


def volume(values: list[int], dtype=np.int16) -> np.ndarray:
    return np.asarray(values, dtype=dtype).reshape(1, 1, -1)


def test_null_map_reads_brats_2021_and_2023_from_the_file() -> None:
    assert map_labels(volume([0, 1, 2, 4, 4]), None, Path("a.nii.gz")).ravel().tolist() == [0, 1, 2, 3, 3]
    assert map_labels(volume([0, 1, 2, 3]), None, Path("a.nii.gz")).ravel().tolist() == [0, 1, 2, 3]
    assert map_labels(volume([0, 2, 1]), None, Path("a.nii.gz")).ravel().tolist() == [0, 2, 1]
    with pytest.raises(DataError, match=r"a.nii.gz: holds both 3 and 4; BraTS uses 4 \(2021\) or 3 \(2023\) for "
                                        r"enhancing. For BRATS 2015 \(3 non-enhancing, 4 enhancing\) set "
                                        r"data.label_map=brats2015.$"):
        map_labels(volume([0, 3, 4]), None, Path("a.nii.gz"))
    with pytest.raises(DataError, match="holds both 3 and 4"):
        map_labels(volume([3, 4, 4]), None, Path("a.nii.gz"))  # no background voxel at all


def test_map_labels_uses_the_map_and_returns_small_integers() -> None:
    mapped = map_labels(volume([0, 1, 2, 3], dtype=np.uint8), PRESETS["msd"], Path("m.nii.gz"))
    assert mapped.dtype == np.uint8 and mapped.shape == (1, 1, 4)
    assert mapped.ravel().tolist() == [0, 2, 1, 3]
    sparse = map_labels(volume([0, 9, 9]), {0: 0, 9: 3, 12: 1}, Path("s.nii.gz"))  # a key beyond the data
    assert sparse.ravel().tolist() == [0, 3, 3]


def test_values_outside_the_map_are_refused_naming_the_file_and_values() -> None:
    with pytest.raises(DataError, match=r"b.nii.gz: label values \[5\] are outside the expected set \[0, 1, 2, 4\]"):
        map_labels(volume([0, 1, 5]), PRESETS["brats2021"], Path("b.nii.gz"))


def test_outside_values_message_tells_an_image_from_a_few_stray_labels() -> None:
    few = outside_values_message(Path("f.nii.gz"), set(range(MANY_VALUES)), {0, 1})
    assert few.startswith("f.nii.gz: label values [2, 3,") and "looks like an image" not in few
    assert "data.label_map='{0: 0, 1: 1, 2: 2, 4: 3}'" in few and "(binary, brats2012, brats2015" in few
    many = outside_values_message(Path("i.nii.gz"), set(range(3, 4 + MANY_VALUES)), {0, 1})
    assert many.startswith(f"i.nii.gz: holds {MANY_VALUES + 1} distinct values from 3 to {3 + MANY_VALUES}, ")
    assert many.endswith("([0, 1] expected): this looks like an image rather than a label map; point the label "
                         "(seg) file of this case to its segmentation.")


@pytest.mark.parametrize("data", [
    np.zeros(0, dtype=np.uint8),
    np.array([[3, 0], [3, 65535]], dtype=np.uint16),
    np.array([0, 65536, 2], dtype=np.int32),
    np.array([-1, 2, 2], dtype=np.int16),
    np.array([0.5, 2.0, 0.5], dtype=np.float32),
    np.arange(24, dtype=np.int64).reshape(2, 3, 4).transpose(2, 0, 1)[::2],
])
def test_present_values_are_the_sorted_distinct_values(data: np.ndarray) -> None:
    found = present_values(data)
    np.testing.assert_array_equal(found, np.unique(data))


def test_regions_a_source_can_hold() -> None:
    assert source_regions(None) == ["WT", "TC", "ET"]
    assert source_regions(PRESETS["msd"]) == ["WT", "TC", "ET"]
    assert source_regions({0: 0, 1: 2}) == ["WT"]  # oedema only
    assert source_regions({0: 0}) == []
    assert scored_structures({0: 0, 1: 1, 2: 2}) == ["WT", "TC"]  # no enhancing label: NCR is not separated
    assert scored_structures({0: 0, 1: 1, 2: 2, 5: 3}) == ["WT", "TC", "ET", "NCR", "ED"]
    assert scored_structures({1: 1, 2: 2, 3: 3}) == ["WT", "TC", "ET", "NCR", "ED"]  # no background value mapped
    assert scored_structures({0: 0, 2: 2, 3: 3}) == ["WT", "TC", "ET"]  # no necrotic core label
    assert scored_structures({0: 0, 1: 1, 3: 3}) == ["WT", "TC", "ET"]  # no oedema label


def test_label_values_read_the_file_as_a_label_map(tmp_path: Path) -> None:
    assert label_values(write_labels(tmp_path / "a_seg.nii.gz", [2, 4])) == frozenset({0, 2, 4})
    with pytest.raises(DataError, match=r"missing_seg.nii.gz: the label file does not exist"):
        label_values(tmp_path / "missing_seg.nii.gz")
    fractional = niftis.save(np.full((2, 2, 2), 1.5, np.float32), tmp_path / "f_seg.nii.gz")
    with pytest.raises(DataError, match=r"f_seg.nii.gz: the label map holds non-integer"):
        label_values(fractional)


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_labels(path: Path, values: list[int]) -> Path:
    data = np.zeros((4, 4, 4), dtype=np.uint8)
    data.ravel()[: len(values)] = values
    return niftis.save(data, path)


def test_remembered_values_are_reused_by_digest_and_saved(tmp_path: Path) -> None:
    first = write_labels(tmp_path / "a_seg.nii.gz", [1, 2, 4])
    second = write_labels(tmp_path / "b_seg.nii.gz", [2, 4])
    index = tmp_path / "cache" / "label_values.json"
    remembered = RememberedValues(index, digest)
    assert detect_label_map([first, second, first], "brats", remembered) == PRESETS["brats2021"]
    assert json.loads(index.read_text()) == {digest(first): [0, 1, 2, 4], digest(second): [0, 2, 4]}
    # A fresh reader takes the values from the index, keyed by content: a file renamed keeps them.
    first.rename(tmp_path / "c_seg.nii.gz")
    again = RememberedValues(index, digest)
    assert again.values(tmp_path / "c_seg.nii.gz") == frozenset({0, 1, 2, 4}) and not again.changed
    index.write_text(json.dumps({digest(second): [0, 3]}))  # what the index says wins over the file
    assert RememberedValues(index, digest).values(second) == frozenset({0, 3})
    before = index.stat().st_mtime_ns
    again.save()  # nothing new: not rewritten
    assert index.stat().st_mtime_ns == before


def test_remembered_values_without_an_index_or_with_a_broken_one(tmp_path: Path, caplog) -> None:
    path = write_labels(tmp_path / "a_seg.nii.gz", [3])
    memory = RememberedValues(None, digest)
    assert RememberedValues(None, digest).changed is False
    assert memory.values(path) == frozenset({0, 3}) and memory.changed
    with pytest.raises(DataError, match=r"gone_seg.nii.gz: the label file does not exist"):
        memory.values(tmp_path / "gone_seg.nii.gz")
    memory.save()  # in memory only
    assert list(tmp_path.iterdir()) == [path]
    broken = tmp_path / "label_values.json"
    broken.write_text("[1, 2]")
    with caplog.at_level(logging.WARNING):
        reader = RememberedValues(broken, digest)
    assert reader.known == {}
    assert [r.getMessage() for r in caplog.records] == [f"{broken} is unreadable; label values are read again"]
    assert detect_label_map([path], "folder", reader) == PRESETS["brats2023"]
    assert json.loads(broken.read_text()) == {digest(path): [0, 3]}


def test_an_unsaveable_index_warns_and_keeps_the_values(tmp_path: Path, caplog) -> None:
    path = write_labels(tmp_path / "a_seg.nii.gz", [4])
    blocker = tmp_path / "file"
    blocker.write_text("")
    reader = RememberedValues(blocker / "index.json", digest)
    with caplog.at_level(logging.WARNING):
        assert detect_label_map([path], "brats", reader, workers=0) == PRESETS["brats2021"]
    message = caplog.records[-1].getMessage()
    assert message.startswith(f"cannot save the label values to {blocker / 'index.json'} (") and "Errno" in message
    assert message.endswith(")") and reader.known == {digest(path): frozenset({0, 4})}
    with pytest.raises(DataError, match=r"^study-source: data.label_map is null and the 1 label files hold only"):
        detect_label_map([write_labels(tmp_path / "b_seg.nii.gz", [1, 2])], "study-source", reader)


def refusal(values: dict[str, set[int]]) -> str:
    with pytest.raises(DataError) as caught:
        convention_of({Path(k): frozenset(v) for k, v in values.items()}, "brats")
    return str(caught.value)


def test_convention_refusals_name_the_first_file_in_path_order_and_the_fix() -> None:
    assert refusal({"b": {0, 7}, "a": {0, 9}, "c": {1}}) == (
        "a: label values [9] are outside the expected set [0, 1, 2, 3, 4]; check the dataset layout "
        "(data=brats|msd|folder|pattern|manifest) or set data.label_map to a preset (binary, brats2012, brats2015, "
        "brats2021, brats2023, msd) or a mapping such as data.label_map='{0: 0, 1: 1, 2: 2, 4: 3}'.")
    assert refusal({"d": {0, 3}, "c": {0, 3, 4}, "b": {4}, "a": {3}}) == (
        "brats: data.label_map is null but the label files disagree on the enhancing value: c holds both 3 and 4. "
        f"BraTS 2021 uses 4, BraTS 2023 uses 3, BRATS 2015 uses both (3 non-enhancing); {FIX}.")
    assert refusal({"d": {0, 3}, "c": {0, 4}, "b": {4}, "a": {0}}) == (
        "brats: data.label_map is null but the label files disagree on the enhancing value: d holds 3 (1 of 4 files "
        f"do) and b holds 4 (2 of 4 do). BraTS 2021 uses 4, BraTS 2023 uses 3, BRATS 2015 uses both "
        f"(3 non-enhancing); {FIX}.")
    assert refusal({"c": {0, 2}, "b": {0}, "a": {1}}) == (
        "brats: data.label_map is null and the 3 label files hold only 0, 1 and 2 (e.g. a): without an enhancing "
        "value (3 or 4) the convention cannot be told, and BraTS (1 core, 2 oedema) and BRATS 2012 (1 oedema, "
        f"2 core) swap two regions; {FIX}.")
    assert FIX.startswith("set data.label_map to the dataset's convention: brats2015 (1 necrosis, 2 oedema, ")
    assert refusal({"x/b": {0, 8}, "x-c": {0, 9}}).startswith("x-c: label values [9]")  # text order, not path parts
    three = refusal({"x/b": {3}, "x-c": {3}, "y/b": {4}, "y-c": {4}})
    assert "x-c holds 3 (2 of 4 files do) and y-c holds 4 (2 of 4 do)" in three
    assert "holds both 3 and 4" in refusal({"a": {0, 1, 2, 3, 4}})  # every BraTS value: in range, but ambiguous
    assert "(e.g. x-c)" in refusal({"x/b": {0, 1}, "x-c": {0, 1}})
    assert "(e.g. b)" in refusal({"a": {0}, "b": {0, 2}})  # oedema alone is ambiguous too


def test_conventions_are_fresh_copies_of_the_presets() -> None:
    for values, preset in (({"a": {0, 4}}, "brats2021"), ({"a": {3}}, "brats2023"), ({"a": {0}}, "brats2023")):
        found = convention_of({Path(k): frozenset(v) for k, v in values.items()}, "brats")
        assert found == PRESETS[preset]
        found[0] = 3
        assert PRESETS[preset][0] == 0
