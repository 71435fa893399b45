"""Read one NIfTI file into a canonical (RAS) array, with errors that name the file and the problem."""

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


@contextmanager
def _reading(path: Path, kind: str) -> Iterator[None]:
    """Turn a missing file or nibabel's read errors into a DataError naming the file."""
    if path.is_dir():
        raise DataError(f"{path}: a folder where the {kind} file should be; point to the NIfTI file (or rename the "
                        "folder).")
    if not path.is_file():
        raise DataError(f"{path}: the {kind} file does not exist.")
    try:
        yield
    except (OSError, EOFError, ValueError, zlib.error, nib.filebasedimages.ImageFileError,
            nib.orientations.OrientationError) as error:
        raise DataError(
            f"{path}: cannot read this {kind} as NIfTI ({type(error).__name__}: {error}). The file may be "
            "truncated or not a NIfTI file; re-export or re-download it."
        ) from error


def _at_least_3d(image: nib.Nifti1Image) -> nib.Nifti1Image:
    """A 2D image (X, Y) as (X, Y, 1): reorienting needs a third axis for the affine's third column."""
    if len(image.shape) >= 3:
        return image
    return nib.Nifti1Image(np.asarray(image.dataobj)[:, :, None], image.affine)


def volume_shape(path: Path, *, kind: str = "image") -> tuple[int, ...]:
    """The array shape stored in the file's header, without reading its voxels."""
    path = Path(path)
    with _reading(path, kind):
        return tuple(nib.load(str(path)).shape)


def load_volume(path: Path, *, kind: str = "image") -> Volume:
    """Load `path` with nibabel, reoriented to the closest canonical (RAS+) orientation.

    Images come back as float32 and must be finite; label maps (`kind="label"`) as int64 and must hold
    integer values.
    """
    path = Path(path)
    with _reading(path, kind):
        image = nib.as_closest_canonical(_at_least_3d(nib.load(str(path))))
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
