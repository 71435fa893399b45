"""Bad overrides through the command-line entry point (in this process, to stay fast): one paragraph on
stderr naming the key and the fix, exit status 2, no traceback, nothing computed or generated."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import pytest

from benchmark.cli import main
from tests import niftis
from tests.test_cli_errors import SMALL


def call(*args: str) -> tuple[int, str]:
    """Run `python -m benchmark args...` in this process: (exit status, stderr)."""
    saved, sys.argv = sys.argv, ["benchmark", *args]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            main()
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    finally:
        sys.argv = saved
    return code, err.getvalue()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("perturbation=[]", "no perturbation is selected"),
        ("perturbation=[gausian_noise]", "gausian_noise is not a perturbation option; valid names: bias_field"),
        ("data=brast", "brast is not a data option; valid names: brats"),
        ("study.severities=3", "study.severities=3 is not a list"),
        ("study.severities=[0,7]", "[7] outside 0 (clean) to 5"),
        ("seed=abc", "seed=abc is not a whole number"),
        ("seed=-1", "seed=-1 is outside the seed range 0 to 4294967295"),
        ("seed=4294967296", "seed=4294967296 is outside the seed range 0 to 4294967295"),
        ("seed=1.5", "seed=1.5 is not a whole number"),
        ("study.seeds=[0,-3]", "study.seeds=-3 is outside the seed range"),
        ("study.seeds=[]", "study.seeds=[] must be a non-empty list"),
        ("data.phantom.seed=-2", "data.phantom.seed=-2 is outside the seed range"),
        ("segmentation.training.iterations=0", "segmentation.training.iterations must be a positive integer, got 0"),
        ("segmentation.training.batch_size=-4", "segmentation.training.batch_size must be a positive integer"),
        ("segmentation.optimizer.lr=-1", "segmentation.optimizer cannot be built"),
        ("segmentation.network.strides=[2]", "segmentation.network could not be built"),
        ("study.only_perturbation=foo", "study.only_perturbation=foo is not in this study; choose one of bias_field"),
        ("study.only_severity=7", "study.only_severity=7 is not one of study.severities"),
        ("study.utility_severities=[7]", "[7] outside 0-5, so no utility model would be trained"),
        ("metrics.metrics.prdc.k=0", "metrics.metrics.prdc.k=0: the number of nearest neighbours"),
        ("data.clip_percentiles=[99,1]", "data.clip_percentiles=[99.0, 1.0] must be [low, high]"),
        ("data.size=[0,0]", "each >= 8"),
        ("data.fov_mm=-5", "data.fov_mm=-5 must be one length in mm"),
        ("data.label_map={0: 0, 1: 1, 2: 2, 4: 7}", "maps 4 to 7, outside our labels 0-3"),
        ("data.label_map={-1: 0, 0: 0}", "data.label_map key -1 is negative"),
        ("data.label_map=brats2099", "not a preset; choose one of binary, brats2012, brats2015"),
        ("data.missing_label=maybe", "data.missing_label=maybe is not one of error, skip, empty"),
    ],
)
def test_bad_override_is_one_paragraph_and_exit_2(tmp_path: Path, override: str, message: str) -> None:
    cache = tmp_path / "cache"
    code, err = call(override, f"output_dir={tmp_path / 'out'}", f"data.cache_dir={cache}")
    assert code == 2, err
    assert message in err and err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and not cache.exists()  # checked before the phantom is generated


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_output_dir_that_is_a_file_is_refused_before_hydra(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "results.txt"
    blocker.write_text("not a folder")
    target = blocker if where == "file" else blocker / "run"
    code, err = call(f"output_dir={target}")
    assert code == 2 and str(target) in err and "choose another output_dir" in err and "Traceback" not in err


def test_cache_dir_that_cannot_be_created_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "cache.txt"
    blocker.write_text("not a folder")
    code, err = call("stages=[data]", f"data.cache_dir={blocker / 'sub'}", f"output_dir={tmp_path / 'out'}")
    assert code == 2 and f"data.cache_dir={blocker / 'sub'} cannot be created" in err


def test_generated_sets_are_a_plain_override_as_documented(tmp_path: Path) -> None:
    """`study.generated={ddpm: /x}` reaches the study (here: its folder does not exist, named)."""
    root = niftis.write_brats(tmp_path / "data", n_cases=4)
    missing = tmp_path / "nowhere"
    code, err = call(*SMALL, f"data.root={root}", f"study.generated={{ddpm: {missing}}}", "perturbation=[]",
                     f"output_dir={tmp_path / 'out'}", f"data.cache_dir={tmp_path / 'cache'}")
    assert code == 2 and f"{missing}: a generated set needs an images/ folder" in err, err


def test_case_without_label_is_an_error_naming_it_or_skipped_when_asked(tmp_path: Path) -> None:
    root = niftis.write_brats(tmp_path / "data", n_cases=5)
    (root / "BraTS-002" / "BraTS-002_seg.nii.gz").unlink()
    common = [*SMALL, f"data.root={root}", "stages=[data]", f"data.cache_dir={tmp_path / 'cache'}"]
    code, err = call(*common, f"output_dir={tmp_path / 'out'}")
    assert code == 2 and "1 of 5 cases have no label file: BraTS-002" in err and "data.missing_label=skip" in err
    code, err = call(*common, "data.missing_label=skip", f"output_dir={tmp_path / 'skip'}")
    assert code == 0, err
    import json

    summary = json.loads((tmp_path / "skip" / "data_summary.json").read_text())
    assert summary["cases"] == 4 and summary["unlabelled_cases"] == {"policy": "skip", "count": 1,
                                                                     "subjects": ["BraTS-002"]}


def test_label_value_missing_from_the_map_names_the_file(tmp_path: Path) -> None:
    """A binary map on a three-compartment dataset would drop oedema and enhancing tumour: refused."""
    root = niftis.write_brats(tmp_path / "data", n_cases=4, version=2023)
    code, err = call(*SMALL, f"data.root={root}", "data.label_map=binary", "stages=[data]",
                     f"output_dir={tmp_path / 'out'}", f"data.cache_dir={tmp_path / 'cache'}")
    assert code == 2 and "_seg.nii.gz: label values [2, 3] are outside the expected set [0, 1]" in err


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.sise=3", "data.sise is not a key of the config: did you mean data.size?"),
        ("segmentation.training.iteration=5", "did you mean segmentation.training.iterations?"),
        ("data.patterns.flair=*/{subject}/x.nii.gz",
         "braces or other special characters must be quoted: data.patterns.flair='*/{subject}/x.nii.gz'"),
        ("data.size=[64,64", "the override data.size=[64,64 cannot be parsed"),
        ("+seed=3", "Could not append to config. An item is already at 'seed'"),
        ("seed=0,1", "To sweep over it, add --multirun"),
    ],
)
def test_hydra_errors_are_one_paragraph_naming_the_key_and_exit_2(tmp_path: Path, override: str, message: str
                                                                  ) -> None:
    cache = tmp_path / "cache"
    code, err = call("data=pattern", override, f"output_dir={tmp_path / 'out'}", f"data.cache_dir={cache}")
    assert code == 2, err
    assert message in err and err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "HYDRA_FULL_ERROR" not in err and not cache.exists()


def test_hydra_errors_reach_the_user_in_a_subprocess_too(tmp_path: Path) -> None:
    """As a user types it in a shell: stderr is our one paragraph, not Hydra's format."""
    from tests.cli import run_cli

    result = run_cli("data.sise=3", f"output_dir={tmp_path / 'out'}")
    assert result.returncode == 2 and result.stderr.startswith("error: data.sise is not a key"), result.stderr
    assert "Set the environment variable HYDRA_FULL_ERROR" not in result.stderr
