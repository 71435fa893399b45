"""Read vessel masks and TOF volumes (NIfTI, or MetaImage / NRRD through SimpleITK) in RAS+ voxel order,
refusing what cannot be read as one binary vessel mask with one paragraph that names the file.

Accepted masks: 3D (a trailing axis of length 1 is dropped), integer or float voxels holding exactly the
values 0 and 1. Refused: a 4th axis longer than 1, NaN or Inf, non-integer values (a soft or resampled
mask: threshold it first), other values without `data.label_map` (0/255 exports, multiclass artery
labels such as TopCoW's 1-15: the message gives the map to pass), a map that misses a value present,
and a mask without a single vessel voxel.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from benchmark.data.labels import present_values
from benchmark.data.nifti import Volume
from benchmark.errors import DataError

ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")


def _read_itk(path: Path, kind: str) -> Volume:
    """A MetaImage / NRRD file through SimpleITK, as a RAS+ Volume (LPS physical space flipped)."""
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise DataError(f"{path}: cannot read this {kind} with SimpleITK ({str(error).splitlines()[0]}); the file "
                        "may be truncated or not a MetaImage/NRRD file.") from error
    data = sitk.GetArrayFromImage(image)  # (z, y, x) or (z, y, x, components)
    data = np.moveaxis(data, (0, 1, 2), (2, 1, 0)) if data.ndim >= 3 else data
    direction = np.array(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = direction * np.array(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine  # LPS -> RAS
    canonical = nib.as_closest_canonical(nib.Nifti1Image(np.asarray(data), affine))
    return Volume(np.asarray(canonical.dataobj), canonical.affine, path)


def read_volume(path: Path, *, kind: str = "image") -> Volume:
    """Any supported file as a RAS+ Volume with its stored values (NIfTI via nibabel, MetaImage / NRRD via
    SimpleITK); DataError naming the file when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: the {kind} file does not exist.")
    if path.name.lower().endswith(ITK_SUFFIXES):
        volume = _read_itk(path, kind)
    else:
        try:
            raw = nib.as_closest_canonical(nib.load(str(path)))
            volume = Volume(np.asarray(raw.dataobj), raw.affine, path)
        except (OSError, EOFError, ValueError, zlib.error, nib.filebasedimages.ImageFileError) as error:
            raise DataError(f"{path}: cannot read this {kind} as NIfTI ({type(error).__name__}: {error}); the file may "
                            "be truncated or not a NIfTI file: re-export or re-download it.") from error
    return volume


def _three_d(volume: Volume, kind: str) -> np.ndarray:
    data = volume.data
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataError(f"{volume.path}: a {kind} must be a 3D volume, got shape {tuple(volume.data.shape)} (a 4D file "
                        "holds several volumes or a time series: save the one volume to use as its own file).")
    return data


def read_tof(path: Path) -> Volume:
    """A TOF-MRA volume as float32 (X, Y, Z) in RAS+; DataError for a 4th axis longer than 1 or NaN/Inf."""
    volume = read_volume(path, kind="TOF image")
    data = _three_d(volume, "TOF image").astype(np.float32)
    if not np.isfinite(data).all():
        raise DataError(f"{path}: the TOF image holds NaN or Inf voxels; replace them (e.g. by 0) before using it.")
    return Volume(data, volume.affine, volume.path)


def vessel_map_hint(values: list[int]) -> str:
    """The `data.label_map` that reads every non-zero value as vessel."""
    return "data.label_map='{" + ", ".join(f"{v}: {int(v > 0)}" for v in values) + "}'"


def binary_vessels(data: np.ndarray, label_map: dict[int, int] | None, path: Path) -> np.ndarray:
    """The vessel mask (bool) of a label volume: values 0/1 as they are, others through `label_map`
    (value -> 0 background or > 0 vessel). DataError for anything else (see the module docstring)."""
    if not np.isfinite(data).all():
        raise DataError(f"{path}: the vessel mask holds NaN or Inf voxels; a mask holds 0 (background) and 1 (vessel).")
    if not np.issubdtype(data.dtype, np.integer) and not np.array_equal(data, np.round(data)):
        example = float(data[data != np.round(data)][0])
        raise DataError(f"{path}: the vessel mask holds non-integer values (e.g. {example:g}); it looks like a soft "
                        "or resampled mask. Threshold it into 0 (background) and 1 (vessel), "
                        "e.g. at 0.5, and save it again.")
    values = [int(v) for v in present_values(data.astype(np.int64) if data.min() >= 0 else data)]
    if label_map is None:
        if not set(values) <= {0, 1}:
            raise DataError(f"{path}: the vessel mask holds the values {values}, not 0/1; if they are vessel labels "
                            f"(a 0/255 export, multiclass artery labels such as TopCoW's 1-15) say which are vessel "
                            f"with {vessel_map_hint(values)}.")
        vessels = data > 0
    else:
        missing = [v for v in values if v not in label_map]
        if missing:
            listed = dict(sorted(label_map.items()))
            raise DataError(f"{path}: the vessel mask holds the values {missing}, which data.label_map {listed} does "
                            f"not list; add them, e.g. {vessel_map_hint(values)}.")
        lookup = np.zeros(max(max(label_map), max(values)) + 1, dtype=bool)
        for source, target in label_map.items():
            lookup[source] = target > 0
        vessels = lookup[data.astype(np.int64)]
    if not vessels.any():
        raise DataError(f"{path}: the vessel mask is empty (no voxel is vessel); a vessel study needs at least one "
                        "vessel per mask: check the file or leave it out.")
    return vessels


def read_vessel_mask(path: Path, label_map: dict[int, int] | None = None) -> Volume:
    """A vessel mask file as a RAS+ Volume of bool (X, Y, Z); see the module docstring for what is refused."""
    volume = read_volume(path, kind="vessel mask")
    data = _three_d(volume, "vessel mask")
    return Volume(binary_vessels(data, label_map, Path(path)), volume.affine, volume.path)


def tof_header(path: Path) -> Volume:
    """A NIfTI TOF volume's grid without reading its voxels: a Volume whose `data` is a zero-cost
    placeholder of its (X, Y, Z) shape in RAS+ order. DataError for a 4th axis longer than 1, or for a
    format the study's loader does not read (it reads NIfTI)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: the TOF image file does not exist.")
    if not path.name.lower().endswith((".nii", ".nii.gz")):
        raise DataError(f"{path}: the study reads TOF images as NIfTI (.nii or .nii.gz); convert this file, e.g. "
                        "SimpleITK.WriteImage(SimpleITK.ReadImage(path), 'tof.nii.gz').")
    try:
        image = nib.load(str(path))
        shape = tuple(int(n) for n in image.shape)
    except (OSError, EOFError, ValueError, zlib.error, nib.filebasedimages.ImageFileError) as error:
        raise DataError(f"{path}: cannot read this TOF image as NIfTI ({type(error).__name__}: {error}).") from error
    if len(shape) != 3:
        raise DataError(f"{path}: a TOF image must be a 3D volume, got shape {shape} (a 4D file holds several "
                        "volumes or a time series: save the one volume to use as its own file).")
    orientation = nib.orientations.io_orientation(image.affine)
    affine = image.affine @ nib.orientations.inv_ornt_aff(orientation, shape)
    order = np.argsort(orientation[:, 0])
    canonical_shape = tuple(shape[int(i)] for i in order)
    return Volume(np.broadcast_to(np.float32(0), canonical_shape), affine, path)
