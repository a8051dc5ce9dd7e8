"""Symmetries of fields on a grid: the exact grid group and continuous rotations.

A field ``x`` of type ``irreps`` is transformed by an orthogonal matrix ``M`` as

    x'(p) = D(M) x(M^-1 p),

with ``p`` measured from the volume centre (or from voxel 0 for periodic boxes, ``origin="voxel0"``) and
``D(M)`` the block-diagonal representation of ``irreps`` (e3nn's convention: ``Y_l(M r) = D_l(M) Y_l(r)``
for proper ``M``, times the parity ``p`` of each irrep when ``det M < 0``).

The 48 signed axis permutations map a cubic grid onto itself, so :func:`transform_field` applies them
exactly (index permutations and flips). Any other rotation needs resampling: :func:`rotate_field`.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from e3nn import o3

from ._validation import Spacing, as_irreps, as_spacing, check_field

__all__ = ["grid_symmetries", "irreps_D", "transform_field", "rotate_field", "random_rotations"]


def grid_symmetries(parity: bool = True) -> torch.Tensor:
    """The symmetry group of the cubic grid as float64 matrices.

    Returns ``[48, 3, 3]`` signed permutation matrices (``[24, 3, 3]`` with ``parity=False``): the identity
    first, then the other proper rotations, then (with ``parity``) the improper ones.

    >>> g = grid_symmetries()
    >>> g.shape, bool((g[0] == torch.eye(3, dtype=torch.float64)).all()), bool((torch.det(g[24:]) < 0).all())
    (torch.Size([48, 3, 3]), True, True)
    """
    matrices = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            m = torch.zeros(3, 3, dtype=torch.float64)
            for row, (col, sign) in enumerate(zip(perm, signs)):
                m[row, col] = sign
            matrices.append(m)
    identity = torch.eye(3, dtype=torch.float64)
    # stable order: identity, proper, improper
    matrices.sort(key=lambda m: (not torch.equal(m, identity), bool(torch.det(m) < 0)))
    group = torch.stack(matrices)
    return group if parity else group[:24]


def _fit_points(l: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1234 + l)
    return torch.randn(4 * (2 * l + 1) + 8, 3, dtype=torch.float64, generator=generator)


def irreps_D(irreps, matrix: torch.Tensor) -> torch.Tensor:
    """The representation ``D(M)`` of ``irreps``, ``[irreps.dim, irreps.dim]`` float64, for any default dtype.

    Computed from the defining property ``Y_l(M r) = D_l(M) Y_l(r)`` by least squares on fixed points in
    float64 (exact to ~1e-15), times the parity of each irrep for improper ``M``. This is independent of
    e3nn's ``Irreps.D_from_matrix``, which is accurate only with torch's default dtype set to float64.

    >>> torch.allclose(irreps_D("1o", -torch.eye(3, dtype=torch.float64)), -torch.eye(3, dtype=torch.float64))
    True
    """
    irreps = as_irreps(irreps)
    m = torch.as_tensor(matrix, dtype=torch.float64)
    if m.shape != (3, 3):
        raise ValueError(f"matrix: expected a 3x3 orthogonal matrix, got shape {tuple(m.shape)}")
    if not torch.allclose(m @ m.T, torch.eye(3, dtype=torch.float64), atol=1e-8):
        raise ValueError("matrix: expected an orthogonal 3x3 matrix (M @ M.T == I)")
    improper = bool(torch.det(m) < 0)
    proper = -m if improper else m
    blocks: dict[int, torch.Tensor] = {}
    out = torch.zeros(irreps.dim, irreps.dim, dtype=torch.float64)
    for (mul, ir), sl in zip(irreps, irreps.slices()):
        if ir.l not in blocks:
            pts = _fit_points(ir.l)
            y = o3.spherical_harmonics(ir.l, pts, normalize=True, normalization="component")
            y_rot = o3.spherical_harmonics(ir.l, pts @ proper.T, normalize=True, normalization="component")
            # y_rot = y @ D^T  (least squares, overdetermined and well conditioned)
            blocks[ir.l] = torch.linalg.lstsq(y, y_rot).solution.T
        d = blocks[ir.l] * (ir.p if improper else 1)
        out[sl, sl] = torch.block_diag(*([d] * mul))
    return out


def _signed_permutation(matrix: torch.Tensor) -> tuple[list[int], list[bool]]:
    """For a signed permutation ``M``: output axis ``b`` reads source axis ``src[b]``, flipped if ``flip[b]``."""
    m = torch.as_tensor(matrix, dtype=torch.float64)
    if m.shape != (3, 3):
        raise ValueError(f"matrix: expected a 3x3 signed permutation matrix, got shape {tuple(m.shape)}")
    entries_ok = bool(((m == 0) | (m.abs() == 1)).all())
    if not entries_ok or not bool(((m != 0).sum(0) == 1).all()) or not bool(((m != 0).sum(1) == 1).all()):
        raise ValueError(
            "matrix: expected a signed permutation matrix (one +-1 per row and column), got "
            f"{m.tolist()}; use rotate_field for other rotations"
        )
    src = [int(m[b].abs().argmax()) for b in range(3)]
    flip = [bool(m[b, src[b]] < 0) for b in range(3)]
    return src, flip


def transform_field(
    x: torch.Tensor,
    irreps,
    matrix: torch.Tensor,
    origin: str = "centre",
    spacing: Spacing | None = None,
) -> torch.Tensor:
    """Apply a grid symmetry exactly: ``x'(p) = D(M) x(M^-1 p)``.

    Args:
        x: field ``[batch, irreps.dim, X, Y, Z]``.
        irreps: the field's irreps.
        matrix: a signed permutation ``[3, 3]`` (see :func:`grid_symmetries`).
        origin: ``"centre"`` (``p`` from the volume centre: ``i -> N - 1 - i`` under a flip) or ``"voxel0"``
            (``p`` from voxel 0 of a periodic box: ``i -> -i mod N``).
        spacing: voxel sizes; if given, ``M`` must map the spacing onto itself.

    Returns:
        the transformed field, same shape and dtype. The volume must map onto itself: axes that ``M``
        swaps need equal sizes (and spacings).

    >>> x = torch.randn(2, 3, 4, 4, 4)
    >>> m = grid_symmetries()[5]
    >>> y = transform_field(transform_field(x, "1o", m), "1o", m.T)
    >>> bool(torch.allclose(x, y))
    True
    """
    irreps = as_irreps(irreps)
    check_field(x, irreps, "x")
    src, flip = _signed_permutation(matrix)
    shape = x.shape[2:]
    if any(shape[src[b]] != shape[b] for b in range(3)):
        raise ValueError(
            f"transform_field: the symmetry {torch.as_tensor(matrix).tolist()} swaps axes of different "
            f"sizes {tuple(shape)}; grid symmetries need a volume that maps onto itself (cubic for all 48)"
        )
    if spacing is not None:
        h = as_spacing(spacing)
        if any(h[src[b]] != h[b] for b in range(3)):
            raise ValueError(
                f"transform_field: the symmetry {torch.as_tensor(matrix).tolist()} swaps axes of different "
                f"spacing {h}; it is not a symmetry of this grid"
            )
    if origin not in ("centre", "voxel0"):
        raise ValueError(f"origin: expected 'centre' or 'voxel0', got {origin!r}")
    y = x.permute(0, 1, 2 + src[0], 2 + src[1], 2 + src[2])
    flip_dims = [2 + b for b in range(3) if flip[b]]
    if flip_dims:
        y = y.flip(flip_dims)
        if origin == "voxel0":
            y = y.roll([1] * len(flip_dims), flip_dims)
    d = irreps_D(irreps, matrix)
    # For a signed permutation the entries of D are exact algebraic numbers (0, +-1, +-1/2, ...): snap the
    # least-squares noise (~1e-16) off the zeros and units so that scalars and vectors move bit-exactly.
    for value in (0.0, 1.0, -1.0):
        d = torch.where((d - value).abs() < 1e-12, torch.full_like(d, value), d)
    return torch.einsum("ij,bj...->bi...", d.to(dtype=x.dtype, device=x.device), y)


def random_rotations(n: int, seed: int = 0, parity: bool = False) -> torch.Tensor:
    """``n`` Haar-random rotations ``[n, 3, 3]`` float64 (with ``parity``, every other one improper: the
    rotation negated), the same for the same ``seed``.

    >>> r = random_rotations(4, seed=0, parity=True)
    >>> orthogonal = torch.allclose(r @ r.mT, torch.eye(3, dtype=torch.float64))
    >>> r.shape, orthogonal, torch.det(r).round().tolist(), torch.equal(r[::2], random_rotations(4, seed=0)[::2])
    (torch.Size([4, 3, 3]), True, [1.0, -1.0, 1.0, -1.0], True)
    """
    from scipy.spatial.transform import Rotation

    mats = torch.as_tensor(Rotation.random(n, random_state=seed).as_matrix(), dtype=torch.float64)
    if parity:
        mats[1::2] = -mats[1::2]
    return mats


def rotate_field(
    x: torch.Tensor,
    irreps,
    rotation: torch.Tensor,
    spacing: Spacing = 1.0,
    order: int = 3,
    mode: str = "constant",
) -> torch.Tensor:
    """Apply any orthogonal matrix by resampling: ``x'(p) = D(R) x(R^-1 p)`` about the volume centre.

    Positions are physical (``p = spacing * (index - centre)``), so anisotropic grids rotate correctly.
    Values between voxels come from scipy's spline interpolation of the given ``order`` (3: cubic spline).
    Points that map from outside the volume read ``mode`` (scipy.ndimage: "constant" reads 0).

    Args:
        x: ``[batch, irreps.dim, X, Y, Z]``.
        rotation: ``[3, 3]`` orthogonal matrix (improper ones apply the parity of each irrep).
    Returns:
        the rotated field, same shape, dtype and device as ``x``.

    >>> x = torch.randn(1, 1, 9, 9, 9)
    >>> y = rotate_field(x, "0e", grid_symmetries()[1], order=1)
    >>> bool(torch.allclose(y, transform_field(x, "0e", grid_symmetries()[1]), atol=1e-6))
    True
    """
    from scipy import ndimage

    irreps = as_irreps(irreps)
    check_field(x, irreps, "x")
    h = np.asarray(as_spacing(spacing))
    r = torch.as_tensor(rotation, dtype=torch.float64)
    d = irreps_D(irreps, r)
    # input index = S^-1 R^T S (output index - centre) + centre
    matrix = np.diag(1 / h) @ r.numpy().T @ np.diag(h)
    centre = (np.asarray(x.shape[2:]) - 1) / 2
    offset = centre - matrix @ centre
    data = x.detach().to("cpu", torch.float64).numpy()
    out = np.empty_like(data)
    for b in range(data.shape[0]):
        for c in range(data.shape[1]):
            out[b, c] = ndimage.affine_transform(data[b, c], matrix, offset, order=order, mode=mode)
    rotated = torch.einsum("ij,bj...->bi...", d, torch.from_numpy(out))
    return rotated.to(dtype=x.dtype, device=x.device)
