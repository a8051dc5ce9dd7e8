"""3D Tetris: eight shapes of four unit cubes, the field's equivariance unit test.

Two of the shapes (``chiral_1``, ``chiral_2``) are mirror images of each other: a rotation never maps one
onto the other, a reflection always does. The other six are achiral.
"""

from __future__ import annotations

import numpy as np
import torch

from ..symmetry import _signed_permutation, rotate_field, transform_field

__all__ = ["tetris_shapes", "tetris_volumes", "TETRIS_CHIRAL_PAIR"]

_SHAPES = (
    ("chiral_1", ((0, 0, 0), (0, 0, 1), (1, 0, 0), (1, 1, 0))),
    ("chiral_2", ((0, 1, 0), (0, 1, 1), (1, 1, 0), (1, 0, 0))),
    ("square", ((0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0))),
    ("line", ((0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 0, 3))),
    ("corner", ((0, 0, 0), (0, 0, 1), (0, 1, 0), (1, 0, 0))),
    ("L", ((0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 0))),
    ("T", ((0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 1))),
    ("zigzag", ((0, 0, 0), (1, 0, 0), (1, 1, 0), (2, 1, 0))),
)

TETRIS_CHIRAL_PAIR = (0, 1)
"""Labels of the two mirror-image shapes (``chiral_1``, ``chiral_2``)."""


def tetris_shapes() -> dict[str, torch.Tensor]:
    """The eight shapes, in label order: ``name -> [4, 3]`` integer coordinates of the unit cubes in a
    4x4x4 index cube. A shape's label is its position in the mapping.

    >>> shapes = tetris_shapes()
    >>> list(shapes)
    ['chiral_1', 'chiral_2', 'square', 'line', 'corner', 'L', 'T', 'zigzag']
    >>> shapes["line"].tolist()
    [[0, 0, 0], [0, 0, 1], [0, 0, 2], [0, 0, 3]]
    """
    return {name: torch.tensor(cubes, dtype=torch.long) for name, cubes in _SHAPES}


def tetris_volumes(
    scale: int = 5,
    pad: int = 8,
    rotation: torch.Tensor | None = None,
    *,
    smoothing: float = 0.0,
    order: int = 3,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Voxelize the eight shapes: one cube becomes ``scale^3`` voxels of value 1.

    The 4x4x4 index cube (``4 scale`` voxels a side) sits in the middle of a volume padded by ``pad``
    voxels of zeros on every side: ``N = 4 scale + 2 pad`` (36 with the defaults, the protocol of the 3D
    Steerable CNN paper). The box's corners lie ``2 sqrt(3) scale`` voxels from the centre, so with
    ``pad >= 0.74 scale`` every rotation keeps the shapes inside the volume.

    Args:
        scale: voxels per cube edge.
        pad: zero voxels added on each side.
        rotation: ``None``, an orthogonal ``[3, 3]`` matrix for all shapes, or ``[8, 3, 3]`` (one per shape),
            applied about the volume centre. A grid symmetry (signed permutation, see
            :func:`~steerable3d.grid_symmetries`) is applied exactly; any other matrix by resampling
            (:func:`~steerable3d.rotate_field`, spline of degree ``order``, zero outside).
        smoothing: standard deviation (voxels) of a Gaussian blur applied before the rotation; 0 for none.
        order: spline degree for continuous rotations (3: cubic, as the paper's protocol).
        dtype: floating dtype of the volumes.

    Returns:
        ``(volumes, labels)``: ``[8, 1, N, N, N]`` and ``[8]`` (``0..7``, the order of
        :func:`tetris_shapes`).

    >>> x, y = tetris_volumes(scale=2, pad=1)
    >>> x.shape, y.tolist(), x.sum((1, 2, 3, 4)).tolist()
    (torch.Size([8, 1, 10, 10, 10]), [0, 1, 2, 3, 4, 5, 6, 7], [32.0, 32.0, 32.0, 32.0, 32.0, 32.0, 32.0, 32.0])
    """
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale: expected a positive int (voxels per cube edge), got {scale!r}")
    if not isinstance(pad, int) or pad < 0:
        raise ValueError(f"pad: expected a non-negative int (voxels on each side), got {pad!r}")
    if not smoothing >= 0:
        raise ValueError(f"smoothing: expected a non-negative standard deviation in voxels, got {smoothing!r}")
    n = 4 * scale + 2 * pad
    volumes = np.zeros((8, 1, n, n, n))
    for label, (_, cubes) in enumerate(_SHAPES):
        for i, j, k in cubes:
            lo = pad + scale * np.array((i, j, k))
            volumes[label, 0, lo[0] : lo[0] + scale, lo[1] : lo[1] + scale, lo[2] : lo[2] + scale] = 1.0
    if smoothing > 0:
        from scipy import ndimage

        volumes = ndimage.gaussian_filter(volumes, sigma=(0, 0, smoothing, smoothing, smoothing))
    x = torch.from_numpy(volumes)
    if rotation is not None:
        rotation = torch.as_tensor(rotation, dtype=torch.float64)
        if rotation.shape == (3, 3):
            x = _rotate(x, rotation, order)
        elif rotation.shape == (8, 3, 3):
            x = torch.cat([_rotate(x[i : i + 1], r, order) for i, r in enumerate(rotation)])
        else:
            raise ValueError(f"rotation: expected [3, 3] or [8, 3, 3] orthogonal matrices, got shape {tuple(rotation.shape)}")
    return x.to(dtype), torch.arange(8)


def _rotate(x: torch.Tensor, rotation: torch.Tensor, order: int) -> torch.Tensor:
    """A grid symmetry exactly, anything else by spline resampling."""
    try:
        _signed_permutation(rotation)
    except ValueError:
        return rotate_field(x, "0e", rotation, order=order)
    return transform_field(x, "0e", rotation)
