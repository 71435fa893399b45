"""Mutation testing of the numeric core, one module at a time (not part of CI).

    bash .ci/mutation image              # one module
    bash .ci/mutation image memorisation # several, one after the other
    bash .ci/mutation --list             # the modules and their test files

Each module is run in its own scratch copy of the working tree (`$MUTATION_DIR/<module>`, default
/tmp/mribench-mutation), so the checkout never gets a `mutants/` folder and several modules can run side
by side. mutmut (configured under [tool.mutmut] in pyproject.toml) mutates only the module's files and runs
only the module's test files, with one worker at low priority. At the end the script prints the score:
killed / (mutants - recorded equivalents), counting timeouts and crashes (segfault) as killed and "no tests" as
survived, and the diff of every survivor not recorded as equivalent in tests/mutation_equivalents.md.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = ROOT / "tests" / "mutation_equivalents.md"

RADIOMICS_TESTS = ["tests/test_radiomics.py", "tests/test_radiomics_filters.py", "tests/test_radiomics_frd.py",
                   "tests/test_radiomics_frd_score.py", "tests/test_radiomics_reference.py",
                   "tests/test_radiomics_texture.py", "tests/test_radiomics_pipeline.py"]
# Features, filters and FRD are checked against pyradiomics, SimpleITK and closed forms by these; the frd-score
# end-to-end tests (9 of the 14 s a surviving mutant costs) exercise them again only through FRDv1, whose own
# module is run against them.
RADIOMICS_FAST_TESTS = [t for t in RADIOMICS_TESTS if t != "tests/test_radiomics_frd_score.py"]

# module -> (files to mutate, test files that exercise them). Keep the test files targeted: every mutant
# runs the tests of this list that call the mutated function.
MODULES: dict[str, tuple[list[str], list[str]]] = {
    "image": (["benchmark/metrics/image.py"], ["tests/test_metrics_image.py", "tests/test_metrics_image_mri.py"]),
    "image_statistics": (["benchmark/metrics/image_statistics.py"],
                         ["tests/test_metrics_image_statistics_entries.py", "tests/test_metrics_image_statistics.py",
                          "tests/test_metrics_image_statistics_wrapping.py"]),
    "memorisation": (["benchmark/metrics/memorisation.py"],
                     ["tests/test_metrics_memorisation.py", "tests/test_metrics_memorisation_ties.py"]),
    "diversity": (["benchmark/metrics/diversity.py"],
                  ["tests/test_metrics_memorisation.py", "tests/test_metrics_memorisation_ties.py"]),
    "sharpness": (["benchmark/metrics/no_reference/sharpness.py", "benchmark/metrics/no_reference/checks.py"],
                  ["tests/test_no_reference_mri.py", "tests/test_no_reference.py",
                   "tests/test_no_reference_sharpness.py"]),
    "snr": (["benchmark/metrics/no_reference/snr.py"],
            ["tests/test_no_reference.py", "tests/test_no_reference_snr.py"]),
    "natural_scene": (["benchmark/metrics/no_reference/natural_scene.py"],
                      ["tests/test_no_reference.py", "tests/test_no_reference_natural_scene.py",
                       "tests/test_no_reference_natural_scene_matlab.py"]),
    "segmentation_evaluation": (["segmentation/evaluation.py"],
                                ["tests/test_segmentation_metrics.py", "tests/test_segmentation_regions.py"]),
    "perturbations_base": (["perturbations/base.py"], ["tests/test_perturbations_base.py"]),
    "distribution": (["benchmark/metrics/distribution.py"],
                     ["tests/test_metrics_distribution.py", "tests/test_metrics_feature_statistics.py",
                      "tests/test_metrics_distribution_limits.py"]),
    "radiomics_texture": ([f"benchmark/metrics/radiomics/{name}.py" for name in
                           ("discretise", "first_order", "glcm", "glrlm", "glszm", "ngtdm")], RADIOMICS_FAST_TESTS),
    "radiomics_pipeline": ([f"benchmark/metrics/radiomics/{name}.py" for name in
                            ("extractor", "filters", "recursive_gaussian")], RADIOMICS_FAST_TESTS),
    "radiomics_frd": (["benchmark/metrics/radiomics/frd.py"], RADIOMICS_FAST_TESTS),
    "radiomics_frd_v1": (["benchmark/metrics/radiomics/frd_v1.py"],
                         ["tests/test_radiomics_frd_score.py", "tests/test_radiomics_frd.py",
                          "tests/test_radiomics_frd_v1.py"]),
    "niqe": (["benchmark/metrics/no_reference/niqe.py"],
             ["tests/test_no_reference.py", "tests/test_no_reference_niqe_items.py",
              "tests/test_no_reference_niqe.py"]),
    "agreement": (["reports/agreement.py", "reports/sensitivity.py"],
                  ["tests/test_reports_agreement_caveats.py", "tests/test_reports_sensitivity.py",
                   "tests/test_reports_analysis.py", "tests/test_reports_agreement.py"]),
    "scorecard": (["reports/scorecard.py"], ["tests/test_reports_scorecard.py", "tests/test_scorecard_vessels.py",
                                           "tests/test_scorecard_effects.py"]),
    "perceptual": (["benchmark/metrics/perceptual.py"], ["tests/test_metrics_lpips.py"]),
    "numerics": (["benchmark/numerics.py"], ["tests/test_numerics.py"]),
    "label_maps": (["benchmark/data/labels.py", "benchmark/data/label_convention.py"],
                   ["tests/test_label_convention.py", "tests/test_data_labels.py"]),
    "fill": (["perturbations/fill.py"], ["tests/test_perturbations_fill.py", "tests/test_perturbations_morphology.py",
                                         "tests/test_perturbations_fill_units.py",
                                         "tests/test_perturbations_fill_sources.py"]),
    "morphology": (["perturbations/morphology.py"],
                   ["tests/test_perturbations_morphology.py", "tests/test_perturbations_fill.py",
                    "tests/test_perturbations_texture_swap.py", "tests/test_perturbations_morphology_units.py"]),
    "suite": (["benchmark/metrics/suite.py"], ["tests/test_metrics_suite_units.py", "tests/test_metrics_suite.py"]),
    "readers": (["benchmark/data/readers.py"], ["tests/test_data_readers_layouts.py", "tests/test_data_readers.py"]),
    "resampling": (["benchmark/study/resampling.py"],
                   ["tests/test_study_resampling_units.py", "tests/test_study_resampler.py",
                    "tests/test_study_resampling_outputs.py"]),
}


def copy_worktree(target: Path, resume: bool = False) -> None:
    """Copy the tracked and untracked-but-not-ignored files of the checkout to `target`.

    Fresh by default; with `resume` the copy (and its `mutants/` results) stays and only files whose text
    changed are copied over, with a new time stamp, so mutmut re-mutates them and keeps the verdicts of every
    function whose source is unchanged.
    """
    if target.exists() and not resume:
        shutil.rmtree(target)
    listing = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                             capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listing):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            if not resume:
                shutil.copy2(source, target / name)
            elif not (target / name).exists() or (target / name).read_bytes() != source.read_bytes():
                shutil.copy(source, target / name)


def configure(target: Path, files: list[str], tests: list[str]) -> None:
    """Add the module's `only_mutate` and test selection to the copy's [tool.mutmut] table."""
    pyproject = target / "pyproject.toml"
    text = pyproject.read_text()
    if "[tool.mutmut]\n" not in text:
        sys.exit("pyproject.toml has no [tool.mutmut] table")
    extra = f"only_mutate = {json.dumps(files)}\npytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
    pyproject.write_text(text.replace("[tool.mutmut]\n", "[tool.mutmut]\n" + extra, 1))


def recorded_equivalents() -> dict[str, str]:
    """Mutant name -> change and reason, from lines "- `name` (change): reason" of tests/mutation_equivalents.md."""
    if not EQUIVALENTS.exists():
        return {}
    pattern = re.compile(r"^- `([^`]+)` (.+)$")
    return {m[1]: m[2] for line in EQUIVALENTS.read_text().splitlines() if (m := pattern.match(line))}


def results(target: Path, mutmut: Path) -> dict[str, str]:
    """Mutant name -> status ("killed", "survived", "timeout", "no tests", ...), from `mutmut results`."""
    out = subprocess.run([str(mutmut), "results", "--all", "true"], cwd=target, check=True, capture_output=True,
                         text=True).stdout
    return {m[1]: m[2] for line in out.splitlines() if (m := re.match(r"^\s+(\S+): (.+)$", line))}


def test_helpers() -> list[str]:
    """The shared test helper modules (tests/*.py that are not test files), copied in with the tests."""
    return sorted(f"tests/{p.name}" for p in (ROOT / "tests").glob("*.py") if not p.name.startswith("test_"))


MUTMUT = Path(sys.executable).parent / "mutmut"
SHARED_DATA = os.environ.get("MRIBENCH_SHARED_DATA", str(ROOT.parent / "shared" / "data"))  # real-data tests run too
NICE = os.environ.get("MUTATION_NICE", "15")  # niceness added to the mutmut and pytest runs


def test_env() -> dict[str, str]:
    """Environment of the mutmut and pytest runs: one thread each, no bytecode in the scratch copy, and the real
    data where the checkout has it (the scratch copy has no ../shared beside it)."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
            "MRIBENCH_SHARED_DATA": SHARED_DATA}


def run_module(module: str, base: Path, workers: int, resume: bool = False) -> dict[str, object]:
    """Copy, configure and run mutmut on one module (or resume an interrupted run), then summarise."""
    files, tests = MODULES[module]
    missing = [t for t in tests if not (ROOT / t).exists()]
    tests = [t for t in tests if (ROOT / t).exists()]
    target = base / module
    resume = resume and (target / "mutants").is_dir()
    copy_worktree(target, resume)
    if not resume or "only_mutate" not in (target / "pyproject.toml").read_text():
        configure(target, files, tests)
    env = test_env()
    start = time.monotonic()
    log = target / "mutmut-run.log"
    print(f"{module}: mutating {' '.join(files)} against {' '.join(tests)}; progress in {log}", flush=True)
    with log.open("a" if resume else "w") as stream:
        run = subprocess.run(["nice", "-n", NICE, str(MUTMUT), "run", "--max-children", str(workers)],
                             cwd=target, env=env, stdout=stream, stderr=subprocess.STDOUT)
    elapsed = time.monotonic() - start
    if run.returncode != 0:
        print(log.read_text()[-4000:])
        sys.exit(f"{module}: mutmut run failed (exit {run.returncode}); log in {log}")
    return summarise(module, target, {"minutes": round(elapsed / 60, 1), "tests": tests, "missing_tests": missing})


def function_source(module_text: str, name: str) -> str | None:
    """The source of the first function or method called `name` in a module's text (None if absent)."""
    tree = ast.parse(module_text)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return ast.get_source_segment(module_text, node)
    return None


def recheck(module: str, target: Path) -> None:
    """Run each open survivor again, against the module's test files as they are now in the checkout.

    For tests written after the run: the current source and test files are copied in, the mutant's function
    replaces its current version (`mutmut apply`), pytest runs the tests, and the source is restored. The
    verdicts go to `recheck.json`, which `summarise` reads. A survivor whose function changed since the run
    is "stale": run the module again for it.
    """
    files, tests = MODULES[module]
    sources = [p.relative_to(target) for pattern in files for p in target.glob(pattern)]
    at_run = {path: (target / path).read_text() for path in sources}
    tests = [t for t in tests if (ROOT / t).exists()]
    for name in [*tests, *test_helpers()]:
        shutil.copy2(ROOT / name, target / name)
    verdicts = json.loads((target / "recheck.json").read_text()) if (target / "recheck.json").exists() else {}
    env = test_env()
    for name in summarise(module, target, {}, quiet=True)["survivors"]:
        function = re.sub(r"__mutmut_\d+$", "", name.rpartition(".")[2]).removeprefix("x_").split("ǁ")[-1]
        if any(function_source(text, function) != function_source((ROOT / path).read_text(), function)
               for path, text in at_run.items()):
            verdicts[name] = "stale"
            print(f"stale: {name}", flush=True)
            continue
        for path in sources:
            shutil.copy2(ROOT / path, target / path)
        subprocess.run([str(MUTMUT), "apply", name], cwd=target, check=True, capture_output=True)
        try:
            run = subprocess.run(["nice", "-n", NICE, sys.executable, "-m", "pytest", "-x", "-q", "-p",
                                  "no:cacheprovider", *tests], cwd=target, env=env, capture_output=True)
        finally:
            for path, text in at_run.items():
                (target / path).write_text(text)
        verdicts[name] = {0: "survived", 1: "killed", 3: "killed"}.get(run.returncode, "error")
        print(f"{verdicts[name]}: {name}", flush=True)
        (target / "recheck.json").write_text(json.dumps(verdicts, indent=2))


ONE_PROCESS_RECHECK = """
import json, os, sys
import pytest
names, tests = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.path.insert(0, os.getcwd())
for name in names:
    os.environ["MUTANT_UNDER_TEST"] = name  # mutmut's trampoline reads it at every call
    code = int(pytest.main(["-x", "-q", "-p", "no:cacheprovider", "-W", "ignore", *tests]))
    print("RECHECK " + json.dumps([name, code]), flush=True)
"""


def recheck_in_one_process(module: str, target: Path, only: list[str] | None = None) -> None:
    """As `recheck`, but all survivors in one pytest process (imports paid once): the current test files are
    copied into the run's `mutants/` folder and each survivor is switched on through mutmut's trampoline
    (MUTANT_UNDER_TEST), on the mutated source as it was at the run. The test files run in reverse order, so
    the targeted files written for survivors (listed last) fail first. Survivors whose function changed since
    the run are "stale". `only`: run just these test files (those written since the run; a survivor already
    passed the others, whose files have not changed since)."""
    files, tests = MODULES[module]
    sources = [p.relative_to(target) for pattern in files for p in target.glob(pattern)]
    tests = [t for t in (only or tests) if (ROOT / t).exists()]
    for name in [*tests, *test_helpers()]:
        shutil.copy2(ROOT / name, target / "mutants" / name)
    verdicts = json.loads((target / "recheck.json").read_text()) if (target / "recheck.json").exists() else {}
    names = []
    for name in summarise(module, target, {}, quiet=True)["survivors"]:
        function = re.sub(r"__mutmut_\d+$", "", name.rpartition(".")[2]).removeprefix("x_").split("ǁ")[-1]
        if any(function_source((target / path).read_text(), function)
               != function_source((ROOT / path).read_text(), function) for path in sources):
            verdicts[name] = "stale"
        else:
            names.append(name)
    env = test_env()
    run = subprocess.run(["nice", "-n", NICE, sys.executable, "-c", ONE_PROCESS_RECHECK, json.dumps(names),
                          json.dumps(tests[::-1])], cwd=target / "mutants", env=env, capture_output=True, text=True)
    for line in run.stdout.splitlines():
        if line.startswith("RECHECK "):
            name, code = json.loads(line.removeprefix("RECHECK "))
            verdicts[name] = {0: "survived", 1: "killed"}.get(code, "error")
            print(f"{verdicts[name]}: {name}", flush=True)
    (target / "recheck.json").write_text(json.dumps(verdicts, indent=2))


def summarise(module: str, target: Path, extra: dict[str, object], quiet: bool = False) -> dict[str, object]:
    """Score of a (possibly interrupted) run: killed over checked mutants not recorded as equivalent."""
    status = results(target, MUTMUT)
    rechecked = json.loads((target / "recheck.json").read_text()) if (target / "recheck.json").exists() else {}
    status.update({n: "killed (recheck)" for n, v in rechecked.items() if v == "killed" and n in status})
    equivalents = recorded_equivalents()
    killed = [n for n, s in status.items()
              if s in ("killed", "killed (recheck)", "timeout", "segfault", "caught by type check")]
    unchecked = [n for n, s in status.items() if s == "not checked"]
    equivalent = [n for n in status if n in equivalents and n not in killed]
    open_survivors = sorted(n for n in status if n not in killed and n not in equivalent and n not in unchecked)
    scored = len(status) - len(equivalent) - len(unchecked)
    summary = {"module": module, "mutants": len(status), "checked": len(status) - len(unchecked),
               "killed": len(killed), "equivalent": len(equivalent), "survived": len(open_survivors),
               "score": len(killed) / scored if scored else 1.0, **extra, "survivors": open_survivors}
    if quiet:
        return summary
    (target / "summary.json").write_text(json.dumps(summary, indent=2))
    for name in open_survivors:
        diff = subprocess.run([str(MUTMUT), "show", name], cwd=target, capture_output=True, text=True).stdout
        print(f"--- {status[name]}: {name}\n" + "\n".join(diff.splitlines()[3:]))
    print(f"{module}: {len(killed)} of {scored} non-equivalent mutants killed ({100 * summary['score']:.1f} %), "
          f"{len(equivalent)} equivalent, {summary['checked']} of {len(status)} checked"
          + (f", {extra['minutes']} min" if "minutes" in extra else ""))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=f"one of {', '.join(MODULES)}")
    parser.add_argument("--list", action="store_true", help="list the modules and their test files")
    parser.add_argument("--workers", type=int, default=1, help="parallel mutant workers (default 1)")
    parser.add_argument("--recheck", action="store_true",
                        help="run the survivors of the last run again against the current test files")
    parser.add_argument("--one-process", action="store_true",
                        help="with --recheck: all survivors in one pytest process (much faster on a loaded machine)")
    parser.add_argument("--only-tests", nargs="+", metavar="FILE",
                        help="with --recheck --one-process: run only these (new) test files")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run: keep its verdicts, re-test only changed functions")
    parser.add_argument("--report", action="store_true",
                        help="only summarise the last (or a still running, or interrupted) run of each module")
    args = parser.parse_args()
    if args.list or not args.modules:
        for name, (files, tests) in MODULES.items():
            print(f"{name:24s} {' '.join(files)}  <-  {' '.join(tests)}")
        return
    unknown = sorted(set(args.modules) - set(MODULES))
    if unknown:
        parser.error(f"unknown module(s) {unknown}; choose from {', '.join(MODULES)}")
    base = Path(os.environ.get("MUTATION_DIR", "/tmp/mribench-mutation"))
    for module in args.modules:
        if args.recheck:
            if args.one_process:
                recheck_in_one_process(module, base / module, args.only_tests)
            else:
                recheck(module, base / module)
            summarise(module, base / module, {})
        elif args.report:
            summarise(module, base / module, {})
        else:
            run_module(module, base, args.workers, args.resume)


if __name__ == "__main__":
    main()
