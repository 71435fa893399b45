"""Vessel datasets as cases of the ordinary data stage: a TOF-MRA image (modality `tof`), its vessel mask
(label 1) and a head mask (the imaged head, used where the tumour data use a brain mask), so the study's
preparation, metrics and report run on them unchanged.

`data.source=vessels` and `data.vessels._target_` picks the kind:
- `VesselPhantom`: synthetic arterial trees rendered as TOF-MRA (offline, no download);
- `RenderedMasks`: real vessel masks under `data.root`, rendered as TOF-MRA with the same renderer;
- `TofWithMasks`: a user's TOF volumes and vessel masks, found by `data.patterns` or `data.manifest`.
Rendered subjects are written as NIfTI under `data.cache_dir` (a phantom subject also with its arterial
tree as json, `phantom_tree`) and reused while their inputs and parameters are unchanged.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from omegaconf import DictConfig, OmegaConf

from benchmark.data.cache import file_digest, writable_cache_dir
from benchmark.data.labels import resolve_label_map
from benchmark.data.nifti import check_same_grid
from benchmark.data.readers import CaseFiles
from benchmark.data.vessels.tree import VesselTree
from benchmark.errors import ConfigError, DataError
from benchmark.workers import process_context, worker_count

log = logging.getLogger(__name__)
MODALITY = "tof"
VESSEL_LABEL_MAP = {0: 0, 1: 1}
SUFFIXES = {"tof": "_tof.nii.gz", "vessels": "_vessels.nii.gz", "head": "_head.nii.gz"}
TREE_SUFFIX = "_tree.json"  # a phantom subject's arterial tree (world mm, the grid of its NIfTI files)
MANIFEST = "vessels.json"
CROP_MARGIN_MM = 5.0  # rendered beyond the study's field of view on each side (real masks)
RENDERING_MODULES = ("tree", "rasterise", "anatomy", "tof", "phantom", "real", "masks")


def renderer_fingerprint() -> str:
    """A digest of the source of the modules that shape a rendered subject: renders cached by another
    version of the code are made again, never reused."""
    import hashlib

    digest = hashlib.sha256()
    for name in RENDERING_MODULES:
        digest.update((Path(__file__).parent / f"{name}.py").read_bytes())
    return digest.hexdigest()[:16]


def find_vessel_cases(data_cfg: DictConfig, modalities: Sequence[str]) -> tuple[Path, list[CaseFiles]]:
    """The dataset root and cases of a vessel data config (`data.vessels` names the kind by `_target_`)."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    if tuple(modalities) != (MODALITY,):
        raise ConfigError(f"data.modality={list(modalities)}: vessel data have one modality, {MODALITY} "
                          f"(set data.modality={MODALITY}).")
    try:
        source = instantiate(data_cfg.vessels, _convert_="all")
    except InstantiationException as error:
        if isinstance(error.__cause__, ConfigError):
            raise error.__cause__ from None
        raise ConfigError(f"data.vessels cannot be built ({error}); check data.vessels._target_ and its keys.") \
            from None
    return source.cases(data_cfg)


def phantom_tree(case: CaseFiles) -> VesselTree | None:
    """The arterial tree of a phantom case (world mm), or None for a case that is not a phantom subject."""
    path = Path(case.label).parent / f"{case.subject_id}{TREE_SUFFIX}" if case.label else None
    return VesselTree.from_json(json.loads(path.read_text())) if path is not None and path.is_file() else None


def case_files(root: Path, case: str) -> CaseFiles:
    """The files of one rendered case under `root`."""
    folder = root / case
    return CaseFiles(case, {MODALITY: folder / f"{case}{SUFFIXES['tof']}"}, folder / f"{case}{SUFFIXES['vessels']}",
                     label_map=dict(VESSEL_LABEL_MAP), brain_mask=folder / f"{case}{SUFFIXES['head']}")


def write_case(root: Path, case: str, tof: np.ndarray, vessels: np.ndarray, head: np.ndarray,
               affine: np.ndarray) -> None:
    """Write one rendered case: TOF (float32), vessel mask and head mask (uint8 0/1), NIfTI-1 gzipped."""
    folder = root / case
    folder.mkdir(parents=True, exist_ok=True)
    for key, data in (("tof", tof.astype(np.float32)), ("vessels", vessels.astype(np.uint8)),
                      ("head", head.astype(np.uint8))):
        image = nib.Nifti1Image(data, affine)
        image.header.set_xyzt_units("mm")
        image.set_qform(affine, code=1)
        image.set_sform(affine, code=1)
        nib.save(image, folder / f"{case}{SUFFIXES[key]}")


def _complete(root: Path) -> bool:
    """Whether a rendered folder holds every file its manifest lists, with its size."""
    manifest = root / MANIFEST
    if not manifest.is_file():
        return False
    try:
        files = json.loads(manifest.read_text())["files"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return False
    return all((root / name).is_file() and (root / name).stat().st_size == size for name, size in files.items())


def _cache_dir(data_cfg: DictConfig) -> Path:
    return writable_cache_dir(Path(str(data_cfg.cache_dir)).expanduser())


def render_all(render: Callable[[Path, int], dict[str, Any]], folder: Path, n_cases: int, workers: int
               ) -> list[dict[str, Any]]:
    """`render(folder, index)` for every case, in `workers` processes when more than one. A worker that dies
    (the system kills the largest process when memory runs out; two whole-brain renders at once need 3-5 GB)
    breaks the pool: the cases it had not finished are then rendered one at a time in this process."""
    facts: dict[int, dict[str, Any]] = {}
    if workers > 1:
        try:
            with ProcessPoolExecutor(workers, mp_context=process_context()) as pool:
                futures = {pool.submit(render, folder, index): index for index in range(n_cases)}
                for future in as_completed(futures):
                    facts[futures[future]] = future.result()
        except BrokenProcessPool:
            log.warning("a rendering worker process died (most often killed for lack of memory); rendering the "
                        "%d unfinished subject(s) one at a time in this process (data.workers=1 skips the pool)",
                        n_cases - len(facts))
    for index in range(n_cases):
        if index not in facts:
            facts[index] = render(folder, index)
    return [facts[index] for index in range(n_cases)]


def ensure_rendered(cache_dir: Path, prefix: str, parameters: dict[str, Any], cases: list[str],
                    render: Callable[[Path, int], dict[str, Any]], workers: int = 0) -> Path:
    """The folder of rendered `cases` for these parameters, rendering them only when it is missing or
    incomplete, in `workers` processes (0: every core; `data.workers`) when there are many.
    `render(folder, index)` writes case `index`."""
    from benchmark.data.cache import subject_key

    version = renderer_fingerprint()
    key = subject_key([], {"parameters": parameters, "cases": cases, "version": version}, [])[:16]
    root = cache_dir / f"{prefix}_{key}"
    if _complete(root):
        return root
    shutil.rmtree(root, ignore_errors=True)
    partial = cache_dir / f".{root.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    partial.mkdir(parents=True)
    try:
        workers = worker_count(workers, len(cases))
        log.info("rendering %d %s subjects as TOF-MRA into %s (%d worker(s); reused afterwards)", len(cases),
                 prefix, root, workers)
        facts = render_all(render, partial, len(cases), workers)
        files = {p.relative_to(partial).as_posix(): p.stat().st_size for p in sorted(partial.glob("*/*"))}
        (partial / MANIFEST).write_text(json.dumps({"parameters": parameters, "version": version,
                                                    "subjects": dict(zip(cases, facts, strict=True)),
                                                    "files": files}, indent=1, default=str))
        try:
            partial.rename(root)
        except OSError:  # another process finished the same folder first
            if not _complete(root):
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return root


@dataclass
class VesselPhantom:
    """Synthetic subjects: an arterial tree (`tree.cerebral_arterial_tree`) in the MNI head, rendered as an
    axial TOF-MRA slab around the Circle of Willis.

    n_subjects 3-1000; seed the root of every draw; voxel_mm (X, Y, Z) spacing; box_mm the slab's MNI
    extent [[x0, x1], [y0, y1], [z0, z1]] (the inflow enters at z0); min_radius_mm the smallest branch
    radius drawn; max_segments caps a tree's size.
    """

    n_subjects: int = 12
    seed: int = 0
    voxel_mm: tuple[float, float, float] = (0.5, 0.5, 0.8)
    box_mm: tuple[tuple[float, float], ...] = ((-82.0, 82.0), (-118.0, 86.0), (-44.0, -4.0))
    min_radius_mm: float = 0.15
    max_segments: int = 1500

    def __post_init__(self) -> None:
        if not 3 <= int(self.n_subjects) <= 1000:
            raise ConfigError(f"data.vessels.n_subjects={self.n_subjects} must be 3-1000 (a split needs 3 subjects).")
        if len(self.voxel_mm) != 3 or any(not 0.1 <= float(v) <= 3.0 for v in self.voxel_mm):
            raise ConfigError(f"data.vessels.voxel_mm={list(self.voxel_mm)} must be three spacings of 0.1-3 mm.")
        if len(self.box_mm) != 3 or any(len(b) != 2 or float(b[1]) - float(b[0]) < 10 for b in self.box_mm):
            raise ConfigError(f"data.vessels.box_mm={self.box_mm} must be [[x0, x1], [y0, y1], [z0, z1]] in MNI mm, "
                              "each at least 10 mm long.")
        if not 0.05 <= float(self.min_radius_mm) <= 1.0:
            raise ConfigError(f"data.vessels.min_radius_mm={self.min_radius_mm} must be 0.05-1.0 mm.")

    def grid(self) -> tuple[tuple[int, int, int], np.ndarray]:
        """The slab's shape and voxel-to-MNI affine (RAS+, mm)."""
        spacing = np.array(self.voxel_mm, np.float64)
        lows = np.array([b[0] for b in self.box_mm], np.float64)
        highs = np.array([b[1] for b in self.box_mm], np.float64)
        shape = tuple(int(n) for n in np.floor((highs - lows) / spacing).astype(int))
        affine = np.diag([*spacing, 1.0])
        affine[:3, 3] = lows + spacing / 2
        return shape, affine  # type: ignore[return-value]

    def cases(self, data_cfg: DictConfig) -> tuple[Path, list[CaseFiles]]:
        names = [f"VesselPhantom_{index:04d}" for index in range(int(self.n_subjects))]
        parameters = {"kind": "phantom", **asdict(self)}
        root = ensure_rendered(_cache_dir(data_cfg), "vessel_phantom", parameters, names,
                               _PhantomRenderer(parameters, names), int(data_cfg.workers))
        return root, [case_files(root, name) for name in names]


@dataclass
class _PhantomRenderer:
    """Renders phantom subject `index` into a folder (a picklable callable for worker processes)."""

    parameters: dict[str, Any]
    names: list[str]

    def __call__(self, folder: Path, index: int) -> dict[str, Any]:
        from benchmark.data.vessels.phantom import render_phantom_subject

        settings = {k: v for k, v in self.parameters.items() if k != "kind"}
        subject = render_phantom_subject(VesselPhantom(**settings), index)
        write_case(folder, self.names[index], subject.tof, subject.vessels, subject.head, subject.affine)
        tree_file = folder / self.names[index] / f"{self.names[index]}{TREE_SUFFIX}"
        tree_file.write_text(json.dumps(subject.tree.to_json()))
        return subject.facts


def rendered_extent_mm(data_cfg: DictConfig) -> float | None:
    """The in-plane side (mm) of the column worth rendering for this data config: the largest in-plane
    `data.fov_mm` plus CROP_MARGIN_MM a side (the point spread and the vessel-radius window reach ~3 mm),
    None when the study keeps the whole field of view (`data.fov_mm=null`)."""
    fov = data_cfg.get("fov_mm")
    if fov is None:
        return None
    values = [float(v) for v in (fov if isinstance(fov, (list, tuple)) or OmegaConf.is_list(fov) else [fov])]
    in_plane = values[-2:] if len(values) == 3 else values  # (D, H, W) in 3D: H and W are in-plane
    return max(in_plane) + 2 * CROP_MARGIN_MM


def _relative_name(root: Path, path: Path) -> str:
    name = path.relative_to(root).as_posix()
    for suffix in (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("/", "_")


@dataclass
class RenderedMasks:
    """Real vessel masks under `data.root`, each rendered as a TOF-MRA on its own grid.

    masks: glob patterns relative to data.root (NIfTI, MetaImage or NRRD files); same_subject: groups of
    paths (relative to data.root) that show one person: only the first present of each group is used,
    so no person lands in two splits; seed: the renderer's noise and shading draws; crop_to_field_of_view:
    render only the in-plane square the study crops (`data.fov_mm` around the head's centre, plus
    `CROP_MARGIN_MM` a side) rather than the whole grid (false: the whole grid, as for `data.fov_mm=null`).
    """

    masks: list[str] = field(default_factory=lambda: ["**/*.nii.gz"])
    same_subject: list[list[str]] = field(default_factory=list)
    seed: int = 0
    crop_to_field_of_view: bool = True

    def mask_files(self, root: Path) -> list[Path]:
        """The mask files the patterns match, one per person (see `same_subject`), sorted."""
        found = sorted({p for pattern in self.masks for p in root.glob(pattern) if p.is_file()})
        if not found:
            raise DataError(f"{root}: no vessel mask matches data.vessels.masks={list(self.masks)}; set data.root to "
                            "the folder of the masks or change the patterns.")
        dropped = set()
        for group in self.same_subject:
            present = [root / name for name in group if (root / name) in found]
            dropped.update(present[1:])
        return [p for p in found if p not in dropped]

    def cases(self, data_cfg: DictConfig) -> tuple[Path, list[CaseFiles]]:
        if data_cfg.root is None:
            raise ConfigError("data.root is not set; pass data.root=/path/to/vessel/masks "
                              "(e.g. ../shared/data/vessels).")
        root = Path(str(data_cfg.root)).expanduser()
        if not root.is_dir():
            raise DataError(f"{root}: the vessel mask folder does not exist (set data.root to it).")
        label_map = resolve_label_map(data_cfg.label_map)
        files = self.mask_files(root)
        names = [_relative_name(root, p) for p in files]
        extent = rendered_extent_mm(data_cfg) if self.crop_to_field_of_view else None
        parameters = {"kind": "masks", "seed": int(self.seed), "label_map": label_map, "extent_mm": extent,
                      "digests": {name: file_digest(p) for name, p in zip(names, files, strict=True)}}
        renderer = _MaskRenderer([str(p) for p in files], names, label_map, int(self.seed), extent)
        rendered = ensure_rendered(_cache_dir(data_cfg), "vessel_masks", parameters, names, renderer,
                                   int(data_cfg.workers))
        return root, [case_files(rendered, name) for name in names]


@dataclass
class _MaskRenderer:
    """Renders real mask `index` into a folder (a picklable callable for worker processes)."""

    paths: list[str]
    names: list[str]
    label_map: dict[int, int] | None
    seed: int
    extent_mm: float | None = None

    def __call__(self, folder: Path, index: int) -> dict[str, Any]:
        from benchmark.data.vessels.real import render_mask_file

        subject = render_mask_file(Path(self.paths[index]), self.label_map, np.random.default_rng([self.seed, index]),
                                   extent_mm=self.extent_mm)
        write_case(folder, self.names[index], subject.tof, subject.vessels, subject.head, subject.affine)
        return subject.facts


@dataclass
class TofWithMasks:
    """A user's TOF volumes and vessel masks in any layout the readers know: layout `pattern`
    (data.root + data.patterns.tof / .label / optional .brain_mask) or `manifest` (data.manifest with
    columns subject, tof, label, optional brain_mask). Every mask is checked before any compute (see
    `masks`); `data.label_map` maps multiclass artery labels onto vessel (> 0) and background (0)."""

    layout: str = "pattern"

    def cases(self, data_cfg: DictConfig) -> tuple[Path, list[CaseFiles]]:
        from benchmark.data.sources import find_manifest_cases, find_pattern_cases
        from benchmark.data.vessels.masks import read_vessel_mask, tof_header

        label_map = resolve_label_map(data_cfg.label_map)
        if self.layout == "pattern":
            if data_cfg.root is None:
                raise ConfigError("data.root is not set; pass data.root=/path/to/your/TOF/dataset.")
            root = Path(str(data_cfg.root)).expanduser()
            cases = find_pattern_cases(root, OmegaConf.to_container(data_cfg.patterns), [MODALITY], label_map)
        elif self.layout == "manifest":
            if not data_cfg.manifest:
                raise ConfigError("data.manifest is not set; pass data.manifest=/path/to/cases.csv (columns subject, "
                                  "tof, label).")
            manifest = Path(str(data_cfg.manifest)).expanduser()
            root, cases = manifest.parent, find_manifest_cases(manifest, [MODALITY], label_map)
        else:
            raise ConfigError(f"data.vessels.layout={self.layout} is not pattern or manifest.")
        heads = None if (data_cfg.patterns or {}).get("brain_mask") and self.layout == "pattern" else \
            _cache_dir(data_cfg) / "vessel_heads"
        for case in cases:
            tof = tof_header(case.images[MODALITY])
            if case.label is not None:
                mask = read_vessel_mask(case.label, label_map)
                check_same_grid(tof, mask)
            case.label_map = _as_vessel_map(label_map)
            if case.brain_mask is None and heads is not None:
                case.brain_mask = _head_file(case.images[MODALITY], heads)
        return root, cases


def _head_file(tof_path: Path, folder: Path) -> Path:
    """A head mask of the TOF volume (`masks.head_from_tof`), written once per file content under `folder`:
    the study's brain-mask rule (Otsu) would keep only the bright vessels of a TOF image."""
    from benchmark.data.vessels.masks import head_from_tof, read_tof

    path = folder / f"{file_digest(tof_path)[:24]}_head.nii.gz"
    if not path.is_file():
        volume = read_tof(tof_path)
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.nii.gz"
        image = nib.Nifti1Image(head_from_tof(volume.data).astype(np.uint8), volume.affine)
        nib.save(image, partial)
        partial.rename(path)
    return path


def _as_vessel_map(label_map: dict[int, int] | None) -> dict[int, int]:
    """A label map whose every vessel value becomes 1 (the study's single foreground label)."""
    if label_map is None:
        return dict(VESSEL_LABEL_MAP)
    return {source: int(target > 0) for source, target in label_map.items()}
