"""Write the phantom in the BraTS 2021 layout and cache it by a hash of its parameters.

`<root>/Phantom_0000/Phantom_0000_{t1,t1ce,t2,flair}.nii.gz` (float32) and `Phantom_0000_seg.nii.gz`
(uint8: 1 necrotic core, 2 oedema, 4 enhancing), plus `<root>/phantom.json` with the parameters and
per-subject facts and the size and SHA-256 of every file. A dataset is generated into a hidden temporary
sibling folder and renamed into place only when complete, so an interrupted run never leaves a folder that
looks finished; a cached folder is used only when every listed file is present with its checksum (a
damaged one is regenerated), and temporary folders left by killed runs are removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from benchmark.data.cache import file_digest, writable_cache_dir
from benchmark.data.phantom import MODALITIES, PhantomSubject, generate_phantom_subject, load_mni_template
from benchmark.errors import ConfigError
from benchmark.workers import process_context, worker_count

GENERATOR_VERSION = 2  # bump when the generated data or its files change, so old caches are not reused (2: checksums)
MANIFEST = "phantom.json"
log = logging.getLogger(__name__)


def case_name(index: int) -> str:
    """BraTS-style case id of subject `index`: Phantom_0000, Phantom_0001, ..."""
    return f"Phantom_{index:04d}"


def phantom_parameters(
    *, n_subjects: int, voxel_size_mm: float, max_tumours: int, tumour_free_fraction: float, seed: int
) -> dict[str, Any]:
    """Validated parameters (with the generator version) that identify one phantom dataset."""
    problems = []
    if not (isinstance(n_subjects, int) and 1 <= n_subjects <= 10_000):
        problems.append(f"n_subjects must be an integer in 1..10000, got {n_subjects!r}")
    if not (isinstance(voxel_size_mm, int | float) and 0.5 <= voxel_size_mm <= 8.0):
        problems.append(f"voxel_size_mm must be a number of mm in 0.5..8, got {voxel_size_mm!r}")
    if not (isinstance(max_tumours, int) and 0 <= max_tumours <= 4):
        problems.append(f"max_tumours must be an integer in 0..4, got {max_tumours!r}")
    if not (isinstance(tumour_free_fraction, int | float) and 0.0 <= tumour_free_fraction <= 1.0):
        problems.append(f"tumour_free_fraction must be in [0, 1], got {tumour_free_fraction!r}")
    if not isinstance(seed, int):
        problems.append(f"seed must be an integer, got {seed!r}")
    if problems:
        raise ConfigError("Invalid phantom dataset parameters (data config): " + "; ".join(problems) + ".")
    return {
        "generator_version": GENERATOR_VERSION,
        "n_subjects": n_subjects,
        "voxel_size_mm": float(voxel_size_mm),
        "max_tumours": max_tumours,
        "tumour_free_fraction": float(tumour_free_fraction),
        "seed": seed,
    }


def phantom_folder_name(parameters: dict[str, Any]) -> str:
    """Folder name of a dataset: `phantom_` and 12 hex digits of the SHA-256 of its parameters."""
    digest = hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()
    return f"phantom_{digest[:12]}"


def subject_rng(seed: int, index: int) -> np.random.Generator:
    """Generator of subject `index`: independent of how many subjects the dataset has."""
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def verify_phantom(root: Path) -> str | None:
    """None when `root` holds a complete phantom (phantom.json and every file it lists, with its size and
    SHA-256), else what is wrong."""
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        files = manifest["files"]
    except FileNotFoundError:
        return f"{MANIFEST} is missing"
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"{MANIFEST} is unreadable or lists no files ({type(error).__name__})"
    for name, (size, digest) in files.items():
        path = root / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size or file_digest(path) != digest:
            return f"{name} differs from its checksum (truncated or edited)"
    return None


def remove_stale_partials(cache_dir: Path) -> None:
    """Remove `.phantom_*.partial-<pid>-*` folders whose writing process is gone (killed runs)."""
    for folder in cache_dir.glob(".phantom_*.partial-*"):
        try:
            pid = int(folder.name.split(".partial-", 1)[1].split("-", 1)[0])
            os.kill(pid, 0)
            continue  # its writer is still running
        except ProcessLookupError:
            pass
        except (ValueError, PermissionError):
            continue
        log.info("removing %s, left by a killed phantom generation", folder)
        shutil.rmtree(folder, ignore_errors=True)


def ensure_phantom(
    cache_dir: Path, *, n_subjects: int, voxel_size_mm: float, max_tumours: int, tumour_free_fraction: float, seed: int
) -> Path:
    """Root folder of the phantom with these parameters under `cache_dir`, generated only if missing.

    `n_subjects` 1..10000, `voxel_size_mm` isotropic spacing 0.5..8 mm (1.5 by default in the study),
    `max_tumours` 0..4 per subject, `tumour_free_fraction` share of subjects drawn without tumour,
    `seed` the root of every random draw. A folder counts as complete when every file its phantom.json
    lists has its checksum; a damaged one is regenerated.
    """
    parameters = phantom_parameters(
        n_subjects=n_subjects, voxel_size_mm=voxel_size_mm, max_tumours=max_tumours,
        tumour_free_fraction=tumour_free_fraction, seed=seed,
    )
    cache_dir = writable_cache_dir(Path(cache_dir))
    root = cache_dir / phantom_folder_name(parameters)
    remove_stale_partials(cache_dir)
    problem = verify_phantom(root) if root.exists() else "absent"
    if problem is None:
        return root
    if root.exists():
        log.warning("phantom cache %s is damaged (%s); generating it again", root, problem)
        shutil.rmtree(root, ignore_errors=True)
    partial = cache_dir / f".{root.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        write_phantom(partial, parameters)
        try:
            partial.rename(root)
        except OSError:  # another process finished the same dataset first
            if verify_phantom(root) is not None:
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return root


def generate_and_write(folder: Path, parameters: dict[str, Any], index: int) -> dict[str, Any]:
    """Generate subject `index` (its own seeded random stream, so the order of work does not matter),
    write its files and return its facts."""
    template = load_mni_template(parameters["voxel_size_mm"])
    subject = generate_phantom_subject(
        template, subject_rng(parameters["seed"], index),
        max_tumours=parameters["max_tumours"], tumour_free_fraction=parameters["tumour_free_fraction"],
    )
    write_subject(folder, case_name(index), subject, template.affine)
    return subject.facts


def write_phantom(folder: Path, parameters: dict[str, Any]) -> None:
    """Generate every subject into `folder` (created), on every available core, and write phantom.json
    last."""
    folder.mkdir(parents=True)
    template = load_mni_template(parameters["voxel_size_mm"])
    subjects = {}
    start = time.perf_counter()
    indices = range(parameters["n_subjects"])
    workers = worker_count(0, len(indices))
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=process_context()) as pool:
            facts = list(pool.map(generate_and_write, repeat(folder), repeat(parameters), indices))
    else:
        facts = [generate_and_write(folder, parameters, index) for index in indices]
    for index, subject_facts in zip(indices, facts, strict=True):
        subjects[case_name(index)] = subject_facts
        log.info("phantom %s written (%d tumours)", case_name(index), subject_facts["n_tumours"])
    manifest = {
        "parameters": parameters,
        "layout": "BraTS 2021: <case>/<case>_{t1,t1ce,t2,flair,seg}.nii.gz; seg 1 necrotic, 2 oedema, 4 enhancing",
        "shape": list(template.shape),
        "affine": template.affine.tolist(),
        "subjects": subjects,
        "files": {p.relative_to(folder).as_posix(): [p.stat().st_size, file_digest(p)]
                  for p in sorted(folder.glob("*/*.nii.gz"))},
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    log.info("phantom: %d subjects in %.1f s", parameters["n_subjects"], time.perf_counter() - start)


def write_subject(folder: Path, case: str, subject: PhantomSubject, affine: np.ndarray) -> None:
    """Write one subject's four contrasts (float32) and segmentation (uint8) as NIfTI-1, gzipped."""
    case_dir = folder / case
    case_dir.mkdir()
    volumes = {m: subject.images[m].astype(np.float32) for m in MODALITIES}
    volumes["seg"] = subject.label.astype(np.uint8)
    for suffix, data in volumes.items():
        image = nib.Nifti1Image(data, affine)
        image.header.set_xyzt_units("mm")
        image.set_qform(affine, code=1)  # scanner-anatomical RAS+, millimetres
        image.set_sform(affine, code=1)
        nib.save(image, case_dir / f"{case}_{suffix}.nii.gz")
