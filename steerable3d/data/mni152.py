"""Real MRI data that ships with a package: the MNI152 2009 symmetric template in nilearn's wheel.

The template is a skull-stripped T1 image at 1 mm (197 x 233 x 189 voxels, RAS, axes x = left to right,
y = posterior to anterior, z = inferior to superior) with grey- and white-matter probability maps. It is
exactly left-right symmetric, so held-out data must be split along another axis (here anterior-posterior).

Everything is reduced to 2 mm by averaging 2x2x2 blocks; labels are made from the reduced maps:

* ``tissue``: 0 background and CSF, 1 grey matter, 2 white matter (argmax of ``1 - gm - wm``, ``gm``,
  ``wm``), nearly a per-voxel task;
* ``context``: 0 not grey matter, 1 cortical grey matter, 2 deep grey matter, where deep means at least
  ``depth_mm`` from the brain surface (the border of ``gm + wm > 0.5``): the same intensities, told apart
  only by where they are.

Rotated copies are made at the template's full resolution (cubic spline about a chosen centre), then
reduced and labelled exactly as the unrotated data, so that a rotated label map is what the labelling
rule gives on the rotated anatomy (rotating a coarse label map directly would cost even an exactly
equivariant per-voxel classifier about 2 Dice points).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

__all__ = ["TASKS", "template_path", "MNI152", "load_mni152", "reduce", "make_labels"]

TASKS = {
    "tissue": ("background/CSF", "grey matter", "white matter"),
    "context": ("other", "cortical grey matter", "deep grey matter"),
}
_KINDS = ("t1", "gm", "wm")


def template_path(kind: str) -> Path:
    """Path of one of nilearn's packaged MNI152 2009 files: ``kind`` is ``"t1"``, ``"gm"`` or ``"wm"``.

    >>> path = template_path("gm")
    >>> path.name, path.is_file()
    ('mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz', True)
    """
    if kind not in _KINDS:
        raise ValueError(f"kind: expected one of {_KINDS}, got {kind!r}")
    try:
        import nilearn
    except ImportError:
        raise ImportError("the MNI152 template comes with nilearn: pip install steerable3d[medical]") from None
    path = Path(nilearn.__file__).parent / "datasets" / "data" / f"mni_icbm152_{kind}_tal_nlin_sym_09a_converted.nii.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: this nilearn installation ({nilearn.__version__}) lacks the MNI152 2009 template")
    return path


def reduce(array: np.ndarray, factor: int = 2) -> np.ndarray:
    """Average ``factor^3`` blocks of a 3-d array ``[X, Y, Z]``, giving ``[X // factor, Y // factor,
    Z // factor]`` (trailing voxels that do not fill a block are dropped): 1 mm voxels become ``factor`` mm.

    >>> x = np.random.default_rng(0).random((6, 6, 6))
    >>> reduce(x).shape, bool(np.isclose(reduce(x).mean(), x.mean())), reduce(np.ones((5, 4, 3))).shape
    ((3, 3, 3), True, (2, 2, 1))
    """
    shape = [n // factor for n in array.shape]
    cropped = array[: shape[0] * factor, : shape[1] * factor, : shape[2] * factor]
    return cropped.reshape(shape[0], factor, shape[1], factor, shape[2], factor).mean(axis=(1, 3, 5))


def make_labels(gm: np.ndarray, wm: np.ndarray, task: str, spacing: float, depth_mm: float = 10.0) -> np.ndarray:
    """Label map (int64, shape of ``gm``) of ``task`` from grey/white-matter probabilities in ``[0, 1]``
    (arrays ``[X, Y, Z]`` of voxels ``spacing`` mm wide; see the module). ``depth_mm`` (mm) separates
    cortical from deep grey matter in the ``context`` task.

    A ball of grey matter of radius 20 mm on 2 mm voxels: its core (10 mm or more from the surface) is deep.

    >>> r = 2.0 * np.linalg.norm(np.indices((25, 25, 25)) - 12, axis=0)  # mm from the centre voxel
    >>> labels = make_labels((r < 20).astype(float), np.zeros(r.shape), "context", spacing=2.0)
    >>> labels[12, 12, [12, 17, 19, 24]].tolist()  # 0, 10, 14 and 24 mm from the centre
    [2, 2, 1, 0]
    """
    if task not in TASKS:
        raise ValueError(f"task: expected one of {sorted(TASKS)}, got {task!r}")
    tissue = np.argmax(np.stack([1.0 - gm - wm, gm, wm]), axis=0)
    if task == "tissue":
        return tissue.astype(np.int64)
    depth = ndimage.distance_transform_edt((gm + wm) > 0.5) * spacing  # mm to the nearest non-brain voxel
    labels = np.zeros(gm.shape, np.int64)
    labels[(tissue == 1) & (depth < depth_mm)] = 1
    labels[(tissue == 1) & (depth >= depth_mm)] = 2
    return labels


@dataclass
class MNI152:
    """The template at full resolution: ``t1`` (0-255), ``gm``, ``wm`` (probabilities) as float32 arrays
    ``[197, 233, 189]``, ``spacing`` 1 mm, RAS (after :meth:`reduced` or :meth:`rotated_block`: coarser
    arrays, ``spacing`` in mm).

    A rotation by a grid symmetry, resampled at full resolution, is the same rotation of the reduced maps
    (here stand-in random maps of 16^3 voxels, turned by 90 degrees about z):

    >>> rng = np.random.default_rng(0)
    >>> maps = MNI152(*(rng.random((16, 16, 16), dtype=np.float32) for _ in range(3)))
    >>> quarter = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # x -> y
    >>> block = maps.rotated_block(centre=np.full(3, 7.5), rotation=quarter, size=8)
    >>> block.spacing, block.t1.shape, np.allclose(block.t1, np.rot90(maps.reduced().t1, axes=(0, 1)), atol=1e-5)
    (2.0, (8, 8, 8), True)
    """

    t1: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    spacing: float = 1.0

    def reduced(self, factor: int = 2) -> "MNI152":
        """Block averages: the 2 mm template with ``factor=2``."""
        return MNI152(reduce(self.t1, factor), reduce(self.gm, factor), reduce(self.wm, factor), self.spacing * factor)

    def rotated_block(self, centre: np.ndarray, rotation: np.ndarray, size: int, factor: int = 2, order: int = 3) -> "MNI152":
        """A cube of ``size`` reduced voxels (``factor`` mm each) centred on ``centre`` (full-resolution
        voxel coordinates), of the anatomy rotated by ``rotation`` about that centre: every map is
        resampled at full resolution (spline of degree ``order``, zero outside), then block-averaged.

        The cube's reduced voxel ``j`` averages full-resolution voxels ``factor j .. factor j + factor - 1``,
        so the cube's centre is ``centre`` exactly; ``rotation = I`` gives the plain reduced cube when
        ``centre`` sits on a block corner grid (``centre = factor (j0 + size / 2) - 0.5``)."""
        rotation = np.asarray(rotation, dtype=np.float64)
        n = size * factor
        # output voxel o samples the input at centre + R^T (o - c): the anatomy turns by R
        matrix = rotation.T
        offset = np.asarray(centre, dtype=np.float64) - matrix @ np.full(3, (n - 1) / 2.0)
        maps = []
        for array in (self.t1, self.gm, self.wm):
            sampled = ndimage.affine_transform(array, matrix, offset=offset, output_shape=(n, n, n), order=order, mode="constant", cval=0.0)
            maps.append(reduce(sampled.astype(np.float32), factor))
        return MNI152(maps[0], np.clip(maps[1], 0, 1), np.clip(maps[2], 0, 1), self.spacing * factor)


def load_mni152() -> MNI152:
    """The packaged template (needs nilearn): T1, grey- and white-matter maps at 1 mm.

    >>> mni = load_mni152()
    >>> mni.t1.shape, mni.spacing, np.array_equal(mni.t1, mni.t1[::-1])  # exactly left-right symmetric
    ((197, 233, 189), 1.0, True)
    >>> small = mni.reduced()  # 2 mm
    >>> small.t1.shape, small.spacing, float(small.gm.max()) <= 1.0
    ((98, 116, 94), 2.0, True)
    """
    import nibabel as nib

    arrays = {}
    for kind in _KINDS:
        image = nib.load(template_path(kind))
        if not np.allclose(image.affine[:3, :3], np.eye(3)):
            raise ValueError(f"{template_path(kind)}: expected a 1 mm RAS affine, got {image.affine.tolist()}")
        arrays[kind] = np.asarray(image.get_fdata(dtype=np.float32))
    return MNI152(arrays["t1"], arrays["gm"] / 255.0, arrays["wm"] / 255.0)
