"""Read one volume into a canonical (RAS) array, with errors that name the file and the problem.

NIfTI is read with nibabel; the formats of SimpleITK (MetaImage `.mha`/`.mhd`, NRRD `.nrrd`/`.nhdr`) are
read with SimpleITK, their LPS world frame turned into a RAS affine, and then go through the same
reorientation, so one volume stored in either format gives the same array.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from benchmark.errors import DataError


@dataclass
class Volume:
    """A volume in RAS+ voxel order: data (X, Y, Z) or (X, Y, Z, C), affine (4, 4), spacing in mm."""

    data: np.ndarray
    affine: np.ndarray
    path: Path

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))


ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def is_itk_file(path: Path) -> bool:
    """Whether `path` is in a SimpleITK format (MetaImage or NRRD) rather than NIfTI."""
    return Path(path).name.lower().endswith(ITK_SUFFIXES)


@contextmanager
def _reading(path: Path, kind: str) -> Iterator[None]:
    """Turn a missing file or the readers' errors into a DataError naming the file."""
    if path.is_dir():
        raise DataError(f"{path}: a folder where the {kind} file should be; point to the NIfTI file (or rename the "
                        "folder).")
    if not path.is_file():
        raise DataError(f"{path}: the {kind} file does not exist.")
    what = "MetaImage/NRRD (SimpleITK)" if is_itk_file(path) else "NIfTI"
    try:
        yield
    except (OSError, EOFError, ValueError, RuntimeError, zlib.error, nib.filebasedimages.ImageFileError,
            nib.orientations.OrientationError) as error:
        raise DataError(
            f"{path}: cannot read this {kind} as {what} ({type(error).__name__}: {error}). The file may be "
            f"truncated or not a {what} file; re-export or re-download it."
        ) from error


def _at_least_3d(image: nib.Nifti1Image) -> nib.Nifti1Image:
    """A 2D image (X, Y) as (X, Y, 1): reorienting needs a third axis for the affine's third column."""
    if len(image.shape) >= 3:
        return image
    return nib.Nifti1Image(np.asarray(image.dataobj)[:, :, None], image.affine)


def _simpleitk() -> object:
    try:
        import SimpleITK
    except ImportError as error:
        raise DataError("reading MetaImage (.mha/.mhd) or NRRD (.nrrd/.nhdr) volumes needs SimpleITK; install it "
                        "(pip install SimpleITK) or convert the files to NIfTI.") from error
    return SimpleITK


def _itk_as_nifti(path: Path) -> nib.Nifti1Image:
    """A SimpleITK volume (or 2D slice, as one voxel thick) as a NIfTI image in memory: voxel axes (x, y, z[,
    components]) and the RAS affine of its origin, spacing and direction (ITK's world frame is LPS)."""
    sitk = _simpleitk()
    image = sitk.ReadImage(str(path))
    if image.GetDimension() == 2:  # a 2D slice: one voxel thick, like a 2D NIfTI
        image = sitk.JoinSeries(image)
    if image.GetDimension() != 3:
        raise ValueError(f"expected a 2D slice or a 3D volume, got {image.GetDimension()} dimensions")
    array = sitk.GetArrayViewFromImage(image)  # (z, y, x[, components])
    data = np.ascontiguousarray(np.moveaxis(array, (0, 1, 2), (2, 1, 0)))
    direction = np.array(image.GetDirection(), dtype=float).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = LPS_TO_RAS @ direction @ np.diag(image.GetSpacing())
    affine[:3, 3] = LPS_TO_RAS @ np.array(image.GetOrigin(), dtype=float)
    return nib.Nifti1Image(data, affine)


def _open(path: Path) -> nib.Nifti1Image:
    return _itk_as_nifti(path) if is_itk_file(path) else nib.load(str(path))


def volume_shape(path: Path, *, kind: str = "image") -> tuple[int, ...]:
    """The array shape stored in the file's header, without reading its voxels (x, y, z[, c])."""
    path = Path(path)
    with _reading(path, kind):
        if is_itk_file(path):
            reader = _simpleitk().ImageFileReader()
            reader.SetFileName(str(path))
            reader.ReadImageInformation()
            components = reader.GetNumberOfComponents()
            return tuple(reader.GetSize()) + ((components,) if components > 1 else ())
        return tuple(nib.load(str(path)).shape)


def load_volume(path: Path, *, kind: str = "image") -> Volume:
    """Load `path` (NIfTI, or MetaImage / NRRD through SimpleITK), reoriented to the closest canonical (RAS+)
    orientation.

    Images come back as float32 and must be finite; label maps (`kind="label"`) as int64 and must hold
    integer values.
    """
    path = Path(path)
    with _reading(path, kind):
        image = nib.as_closest_canonical(_at_least_3d(_open(path)))
        data = np.asarray(image.dataobj)
    if kind == "label":
        integral = np.issubdtype(data.dtype, np.integer) or (
            np.isfinite(data).all() and np.array_equal(data, np.round(data))
        )
        if not integral:
            raise DataError(f"{path}: the label map holds non-integer or non-finite values.")
        return Volume(data.astype(np.int64), image.affine, path)
    data = data.astype(np.float32)
    bad = ~np.isfinite(data)
    if bad.any():
        raise DataError(
            f"{path}: the image holds {int(bad.sum())} NaN or Inf voxels (of {data.size}); clean the file "
            "(for example replace them with 0) before using it."
        )
    return Volume(data, image.affine, path)


def check_same_grid(reference: Volume, other: Volume, *, atol_mm: float = 1e-3) -> None:
    """Raise when `other` does not share the voxel grid (shape and affine) of `reference`."""
    if reference.data.shape[:3] != other.data.shape[:3]:
        raise DataError(
            f"{other.path}: shape {other.data.shape[:3]} does not match {reference.data.shape[:3]} of "
            f"{reference.path}; image and label must share the voxel grid."
        )
    if not np.allclose(reference.affine, other.affine, atol=atol_mm):
        raise DataError(
            f"{other.path}: its affine (voxel-to-world transform) differs from that of {reference.path}; "
            "image and label must be in the same space (resample one onto the other first)."
        )
