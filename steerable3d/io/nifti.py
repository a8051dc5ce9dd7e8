"""NIfTI volumes as ``[C, X, Y, Z]`` tensors with their voxel-to-world affine (mm).

Tensor axes 1, 2, 3 of a volume are the image's voxel axes i, j, k, in the order they are stored in the
file; the affine maps a voxel index ``(i, j, k)`` to world coordinates in mm. Spacing-aware layers take
:attr:`Volume.spacing` (the voxel size along each tensor axis) and assume the voxel axes are orthogonal,
so an oblique image is refused unless asked to resample it (see :func:`load_nifti`).

>>> import os, tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = save_nifti(os.path.join(tmp, "t1.nii.gz"), torch.rand(1, 4, 5, 6),
...                       affine=np.diag([-0.75, -1.0, 2.5, 1.0]))  # axes point L, P, S
...     volume = load_nifti(path)
...     ras = load_nifti(path, ras=True)
>>> volume.orientation, ras.orientation, ras.shape, ras.spacing
(('L', 'P', 'S'), ('R', 'A', 'S'), (4, 5, 6), (0.75, 1.0, 2.5))
>>> torch.equal(from_ras(ras, like=volume).data, volume.data)
True
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from dataclasses import dataclass

import nibabel as nib
import numpy as np
import torch
from nibabel.filebasedimages import ImageFileError
from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, io_orientation, ornt_transform
from nibabel.spatialimages import HeaderDataError, SpatialImage
from scipy import ndimage

from .._files import atomic_path

__all__ = ["Volume", "load_nifti", "save_nifti", "to_ras", "from_ras"]

_OBLIQUE = ("error", "resample", "keep")
_AXIS_TOLERANCE = 1e-4  # largest off-axis direction cosine still taken as axis-aligned (0.006 degrees)
_READ_ERRORS = (ImageFileError, HeaderDataError, EOFError, OSError, ValueError, zlib.error)


@dataclass(eq=False, repr=False)
class Volume:
    """One image: ``data`` ``[C, X, Y, Z]`` and the ``affine`` (4x4, float64) from voxel index to world mm.

    ``header`` is the NIfTI header the volume was read from (``None`` for a volume made in memory);
    :func:`save_nifti` uses it as the template for the file it writes. ``path`` is the file it came from.
    Volumes compare by identity: compare ``data`` and ``affine`` to compare contents.

    >>> v = Volume(torch.zeros(2, 4, 5, 6), np.diag([-0.75, 1.0, 2.5, 1.0]))
    >>> v
    Volume(shape=(2, 4, 5, 6), dtype=torch.float32, spacing=(0.75, 1.0, 2.5),
           orientation=('L', 'A', 'S'), path=None)
    """

    data: torch.Tensor
    affine: np.ndarray
    header: nib.Nifti1Header | None = None
    path: str | None = None

    def __post_init__(self):
        if not isinstance(self.data, torch.Tensor) or self.data.dim() != 4:
            shape = tuple(self.data.shape) if hasattr(self.data, "shape") else type(self.data).__name__
            raise ValueError(f"Volume.data: expected a torch.Tensor [C, X, Y, Z], got {shape}")
        self.affine = np.asarray(self.affine, dtype=np.float64)
        if self.affine.shape != (4, 4):
            raise ValueError(
                f"Volume.affine: expected a 4x4 voxel-to-world matrix, got shape {self.affine.shape}"
            )

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size (mm) along tensor axes 1, 2, 3: the column norms of ``affine[:3, :3]``."""
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))

    @property
    def shape(self) -> tuple[int, int, int]:
        """Spatial shape ``(X, Y, Z)``."""
        return tuple(self.data.shape[1:])

    @property
    def orientation(self) -> tuple[str, str, str]:
        """World direction each voxel axis points to, e.g. ``('R', 'A', 'S')`` (nibabel's axis codes)."""
        return nib.aff2axcodes(self.affine)

    def __repr__(self) -> str:
        return (
            f"Volume(shape={tuple(self.data.shape)}, dtype={self.data.dtype}, spacing={self.spacing}, "
            f"orientation={self.orientation}, path={self.path!r})"
        )


def load_nifti(
    path: str | os.PathLike,
    *,
    dtype: torch.dtype = torch.float32,
    ras: bool = False,
    oblique: str = "error",
    order: int = 1,
) -> Volume:
    """Read a ``.nii`` or ``.nii.gz`` file into a :class:`Volume`.

    A 3-d image ``[X, Y, Z]`` gives ``C = 1``; a 4-d image ``[X, Y, Z, C]`` has its last axis moved first
    (a 5-d ``[X, Y, Z, 1, C]`` vector image, as NIfTI stores vectors, is read as 4-d). The file's scaling
    (``scl_slope``, ``scl_inter``) is applied.

    Args:
        path: the file.
        dtype: dtype of ``data`` (an integer dtype such as ``torch.long`` reads a label map exactly).
        ras: reorient to RAS with :func:`to_ras` (flips and axis permutations only, no interpolation).
        oblique: what to do when the voxel axes are not aligned with the world axes (direction cosines off
            the axes by more than 1e-4): ``"error"`` raises; ``"resample"`` interpolates (spline of degree
            ``order``) onto an axis-aligned grid with the same voxel sizes that covers the same field of
            view, closest to the stored axis order and directions, zero outside the source grid (values fade
            to 0 within one voxel past the edge voxel centres); ``"keep"`` returns the data and affine as
            stored, and spacing-aware layers then treat the axes as if they were orthogonal.
        order: spline degree (0 to 5) used by ``oblique="resample"``.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be read, is not 3-d or 4-d, holds NaN or infinite values, or is oblique
            with ``oblique="error"``.

    Example (a label map on 2 mm voxels, read back exactly as ``torch.long``):
        >>> import tempfile
        >>> labels = torch.randint(0, 3, (1, 4, 5, 6))
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = save_nifti(os.path.join(tmp, "labels.nii.gz"), labels, affine=np.diag([2.0, 2.0, 2.0, 1.0]))
        ...     volume = load_nifti(path, dtype=torch.long)
        >>> volume.shape, volume.spacing, volume.orientation, torch.equal(volume.data, labels)
        ((4, 5, 6), (2.0, 2.0, 2.0), ('R', 'A', 'S'), True)
    """
    if oblique not in _OBLIQUE:
        raise ValueError(f"oblique: expected one of {', '.join(map(repr, _OBLIQUE))}, got {oblique!r}")
    if not isinstance(order, int) or not 0 <= order <= 5:
        raise ValueError(f"order: expected a spline degree 0 to 5, got {order!r}")
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"dtype: expected a torch.dtype, got {dtype!r}")
    path = os.fspath(path)
    image = _open(path)
    try:
        # float64 keeps integer label values and large intensities exact for the non-float32 dtypes
        precision = np.float32 if dtype in (torch.float32, torch.float16, torch.bfloat16) else np.float64
        array = image.get_fdata(dtype=precision)
    except _READ_ERRORS as error:
        raise ValueError(f"{path}: cannot read the image data ({type(error).__name__}: {error})") from None

    shape = array.shape
    if array.ndim == 5 and shape[3] == 1:
        array = array[:, :, :, 0, :]
    if array.ndim == 3:
        array = array[None]
    elif array.ndim == 4:
        array = np.moveaxis(array, 3, 0)
    else:
        raise ValueError(f"{path}: expected a 3-d [X, Y, Z] or 4-d [X, Y, Z, C] image, got shape {shape}")
    bad = array.size - np.count_nonzero(np.isfinite(array))
    if bad:
        raise ValueError(
            f"{path}: {bad} of {array.size} voxels are NaN or infinite; replace them (e.g. numpy.nan_to_num) "
            "before loading"
        )

    affine = image.affine.astype(np.float64)
    cosines = _direction_cosines(affine, path)
    if oblique != "keep" and not _is_axis_aligned(cosines):
        if oblique == "error":
            raise ValueError(
                f"{path}: the voxel axes are oblique (not aligned with the world axes), but spacing-aware "
                "layers need axis-aligned voxels; direction cosines (columns: voxel axes i, j, k):\n"
                f"{np.array2string(cosines, precision=4, suppress_small=True)}\n"
                "Pass oblique='resample' to interpolate onto an axis-aligned grid with the same voxel sizes, "
                "or oblique='keep' to use the data as stored."
            )
        array, affine = _resample_axis_aligned(array, affine, order)

    data = torch.from_numpy(np.ascontiguousarray(array)).to(dtype)
    volume = Volume(data, affine, image.header.copy(), path)
    return to_ras(volume) if ras else volume


def save_nifti(
    path: str | os.PathLike,
    data: torch.Tensor | np.ndarray | Volume,
    *,
    like: str | os.PathLike | nib.Nifti1Image | Volume | None = None,
    affine: np.ndarray | None = None,
) -> str:
    """Write ``data`` to a ``.nii`` or ``.nii.gz`` file (compressed by the extension) and return the path.

    Args:
        path: the file to write; its directory must exist. An existing file is replaced atomically: the
            image is written to a temporary file next to it, then renamed, so a crash never leaves a
            half-written file.
        data: ``[C, X, Y, Z]`` or ``[X, Y, Z]`` (tensor or array), or a :class:`Volume`. ``C = 1`` is
            written as a 3-d image, ``C > 1`` as a 4-d image with the channels last. Floating data are
            stored as float32; integer or bool data (label maps) keep an integer type, the smallest of
            uint8, int16, int32, int64 that holds their values.
        like: template giving the affine and the header (codes, units, ...): a path, a nibabel image or a
            :class:`Volume` with the same spatial shape. Its intensity scaling and display range are reset
            so the values are stored as given.
        affine: 4x4 voxel-to-world matrix (mm), when there is no template; the header is then new, with
            units mm (or the header of ``data`` when it is a :class:`Volume`).

    A :class:`Volume` brings its own affine and header; ``like`` or ``affine`` override them. Otherwise
    exactly one of ``like`` and ``affine`` must be given.

    Example (three channels of probabilities, then a label map on the same grid):
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     probs = save_nifti(os.path.join(tmp, "p.nii.gz"), torch.rand(3, 4, 5, 6), affine=np.eye(4))  # 1 mm
        ...     labels = save_nifti(os.path.join(tmp, "l.nii.gz"), torch.zeros(4, 5, 6, dtype=torch.long), like=probs)
        ...     [(nib.load(f).shape, nib.load(f).get_data_dtype().name) for f in (probs, labels)]
        [((4, 5, 6, 3), 'float32'), ((4, 5, 6), 'uint8')]
    """
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    if not name.lower().endswith((".nii", ".nii.gz")):
        raise ValueError(f"path: expected a file name ending in .nii or .nii.gz, got {path!r}")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{path}: the directory {directory!r} does not exist")
    if like is not None and affine is not None:
        raise ValueError("save_nifti: give the affine through like= or affine=, not both")

    header = None
    if isinstance(data, Volume):
        if like is None:
            header = data.header
            affine = data.affine if affine is None else affine
        data = data.data
    array = _as_image_array(data)
    if like is not None:
        affine, header, like_shape = _template(like)
        if like_shape != array.shape[:3]:
            raise ValueError(f"save_nifti: data has spatial shape {array.shape[:3]} but like= has {like_shape}")
    elif affine is None:
        raise ValueError(
            "save_nifti: no affine; pass like= (a path, nibabel image or Volume) "
            "or affine= (4x4 voxel-to-world, mm)"
        )
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.isfinite(affine).all():
        raise ValueError(f"affine: expected a finite 4x4 voxel-to-world matrix (mm), got {affine!r}")

    disk_dtype = _disk_dtype(array, path)
    header = _prepare_header(header)
    image = nib.Nifti1Image(array.astype(disk_dtype, copy=False), affine, header, dtype=disk_dtype)
    if header is None:
        image.header.set_xyzt_units("mm")
    else:
        # nibabel resets the codes to 'aligned'/'unknown' when the affine differs from the template's
        image.set_sform(affine, int(header["sform_code"]) or "aligned")
        image.set_qform(affine, int(header["qform_code"]))

    suffix = ".nii.gz" if name.lower().endswith(".nii.gz") else ".nii"  # nibabel picks the format by it
    with atomic_path(path, suffix) as temporary:
        nib.save(image, temporary)
    return path


def to_ras(volume: Volume) -> Volume:
    """Reorient so the voxel axes point Right, Anterior, Superior, by flipping and permuting tensor axes.

    No interpolation: every voxel keeps its value and its world position, and :func:`from_ras` undoes it
    exactly. An oblique volume gets the orientation closest to RAS. A volume already in RAS keeps its
    ``data`` tensor (not a copy).

    Example (axes pointing left, posterior, superior): the last voxel moves to the first row and column and
    keeps its world position (mm).
        >>> v = Volume(torch.arange(24.0).reshape(1, 2, 3, 4), np.diag([-1.0, -1.0, 2.0, 1.0]))
        >>> r = to_ras(v)
        >>> r.orientation, r.shape, r.spacing, float(r.data[0, 0, 0, 3]), float(v.data[0, 1, 2, 3])
        (('R', 'A', 'S'), (2, 3, 4), (1.0, 1.0, 2.0), 23.0, 23.0)
        >>> (r.affine @ [0, 0, 3, 1]).tolist(), (v.affine @ [1, 2, 3, 1]).tolist()
        ([-1.0, -2.0, 6.0, 1.0], [-1.0, -2.0, 6.0, 1.0])
    """
    return _reorient(volume, axcodes2ornt("RAS"))


def from_ras(volume: Volume, like: Volume | str | os.PathLike | nib.Nifti1Image) -> Volume:
    """Reorient ``volume`` (e.g. a result computed on :func:`to_ras` output) back to the orientation of
    ``like`` (a :class:`Volume`, a path or a nibabel image): the exact inverse of :func:`to_ras`.

    Only ``like``'s orientation is used; when the result lies on ``like``'s voxel grid it takes ``like``'s
    affine verbatim, so ``from_ras(to_ras(v), v)`` reproduces ``v.affine`` bit for bit.

    >>> v = Volume(torch.rand(1, 2, 3, 4), np.diag([-1.0, -1.0, 2.0, 1.0]))  # axes L, P, S
    >>> back = from_ras(to_ras(v), like=v)
    >>> back.orientation, torch.equal(back.data, v.data), np.array_equal(back.affine, v.affine)
    (('L', 'P', 'S'), True, True)
    """
    target_affine, _, target_shape = _template(like)
    result = _reorient(volume, io_orientation(target_affine))
    # undoing a flip moves the origin back by (n - 1) voxels, which can be off by an ulp in floating point
    if result.shape == target_shape and np.allclose(result.affine, target_affine, rtol=1e-9, atol=1e-9):
        result.affine = np.array(target_affine, dtype=np.float64)
    return result


def _open(path: str):
    """``nib.load`` with the library's errors: the header is read, the data stay on disk."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        image = nib.load(path)
    except _READ_ERRORS as error:
        raise ValueError(f"{path}: cannot read as NIfTI ({type(error).__name__}: {error})") from None
    if not isinstance(image, nib.Nifti1Pair):
        raise ValueError(f"{path}: expected a NIfTI image, got {type(image).__name__}")
    return image


def _template(like) -> tuple[np.ndarray, nib.Nifti1Header | None, tuple[int, ...]]:
    """Affine, header and spatial shape of a Volume, a nibabel image or a file."""
    if isinstance(like, Volume):
        return like.affine, like.header, like.shape
    if isinstance(like, (str, os.PathLike)):
        like = _open(os.fspath(like))
    if not isinstance(like, SpatialImage):
        raise ValueError(f"like: expected a path, a nibabel image or a Volume, got {type(like).__name__}")
    return like.affine, like.header, tuple(like.shape[:3])


def _as_image_array(data) -> np.ndarray:
    """``[C, X, Y, Z]`` or ``[X, Y, Z]`` tensor/array -> numpy in NIfTI layout ``[X, Y, Z(, C)]``."""
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    if not isinstance(data, np.ndarray):
        raise ValueError(f"data: expected a tensor, array or Volume [C, X, Y, Z], got {type(data).__name__}")
    if data.ndim == 3:
        return data
    if data.ndim == 4:
        return data[0] if data.shape[0] == 1 else np.moveaxis(data, 0, -1)
    raise ValueError(f"data: expected [C, X, Y, Z] or [X, Y, Z], got shape {data.shape}")


def _disk_dtype(array: np.ndarray, path: str) -> np.dtype:
    if array.dtype.kind == "f":
        return np.dtype(np.float32)
    if array.dtype.kind not in "biu":
        raise ValueError(f"{path}: expected real or integer data, got dtype {array.dtype}")
    low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
    for candidate in (np.uint8, np.int16, np.int32, np.int64):
        info = np.iinfo(candidate)
        if info.min <= low and high <= info.max:
            return np.dtype(candidate)
    raise ValueError(f"{path}: integer values {low}..{high} do not fit in int64")


def _prepare_header(header):
    if header is None:
        return None
    # a copy, converted from other formats if need be; Nifti1Image resets its scl_slope / scl_inter
    header = nib.Nifti1Header.from_header(header)
    header["cal_min"] = header["cal_max"] = 0  # the template's display range says nothing of the new data
    return header


def _direction_cosines(affine: np.ndarray, path: str) -> np.ndarray:
    zooms = np.linalg.norm(affine[:3, :3], axis=0)
    if not (np.isfinite(zooms).all() and (zooms > 0).all()):
        raise ValueError(f"{path}: expected positive finite voxel sizes in the affine, got {zooms}")
    cosines = affine[:3, :3] / zooms
    if abs(np.linalg.det(cosines)) < 1e-6:
        raise ValueError(f"{path}: the affine's voxel axes are degenerate (parallel):\n{affine}")
    return cosines


def _is_axis_aligned(cosines: np.ndarray) -> bool:
    """Whether the direction cosines form a signed permutation, up to ``_AXIS_TOLERANCE``."""
    on_axis = np.abs(cosines) > _AXIS_TOLERANCE
    return bool((on_axis.sum(axis=0) == 1).all() and (on_axis.sum(axis=1) == 1).all())


def _resample_axis_aligned(array: np.ndarray, affine: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate ``[C, X, Y, Z]`` onto the axis-aligned grid closest to ``affine``'s axes, with the same
    voxel sizes, whose box covers the source's box of voxels."""
    zooms = np.linalg.norm(affine[:3, :3], axis=0)
    ornt = io_orientation(affine)
    linear = np.zeros((3, 3))
    linear[ornt[:, 0].astype(int), np.arange(3)] = ornt[:, 1] * zooms
    shape = np.array(array.shape[1:])
    # corners of the voxel box (voxel centres +-0.5), in index units of the new grid (origin at world 0)
    corners = np.stack(np.meshgrid(*[(-0.5, n - 0.5) for n in shape], indexing="ij"), -1).reshape(-1, 3)
    box = np.linalg.solve(linear, affine[:3, :3] @ corners.T + affine[:3, 3:])
    low, high = box.min(axis=1), box.max(axis=1)
    new_shape = np.maximum(np.ceil(high - low - 1e-6), 1).astype(int)
    start = (low + high) / 2 - (new_shape - 1) / 2  # centre the new grid on the box
    new_affine = np.eye(4)
    new_affine[:3, :3], new_affine[:3, 3] = linear, linear @ start
    new_to_old = np.linalg.solve(affine, new_affine)
    resampled = np.stack([
        ndimage.affine_transform(
            channel, new_to_old[:3, :3], new_to_old[:3, 3], output_shape=tuple(new_shape), order=order,
            mode="grid-constant", cval=0.0,
        )
        for channel in array
    ])
    return resampled, new_affine


def _reorient(volume: Volume, target: np.ndarray) -> Volume:
    """Flip and permute the tensor axes from ``volume``'s orientation to ``target`` (nibabel ornt array)."""
    transform = ornt_transform(io_orientation(volume.affine), target)
    if np.array_equal(transform, axcodes2ornt("RAS")):  # the identity: no copy of the data
        return dataclasses.replace(volume, affine=volume.affine.copy())
    array = volume.data.detach().cpu().numpy()
    # apply_orientation acts on the leading axes: put the channels last for it
    array = np.moveaxis(apply_orientation(np.moveaxis(array, 0, -1), transform), -1, 0)
    data = torch.from_numpy(np.ascontiguousarray(array)).to(volume.data.device)
    affine = volume.affine @ inv_ornt_aff(transform, volume.shape)
    header = volume.header
    if header is not None:
        # frequency / phase / slice axes move with the data, as in nibabel's as_reoriented
        header = header.copy()
        axes = header.get_dim_info()
        header.set_dim_info(*(None if axis is None else int(transform[axis, 0]) for axis in axes))
    return dataclasses.replace(volume, data=data, affine=affine, header=header)
