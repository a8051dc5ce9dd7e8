"""Measure equivariance: compare ``f(g x)`` with ``g f(x)`` per output irrep."""

from __future__ import annotations

import statistics
from typing import Callable

import torch

from ._validation import Spacing, as_irreps, as_spacing, check_field
from .symmetry import _signed_permutation, grid_symmetries, random_rotations, rotate_field, transform_field

__all__ = ["equivariance_error", "assert_equivariant"]

DEFAULT_TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5, torch.bfloat16: 3e-2, torch.float16: 5e-3}


def _blocks_by_irrep(irreps):
    """``str(irrep) -> list of channel slices``, in order of first appearance."""
    blocks: dict[str, list[slice]] = {}
    for (_, ir), sl in zip(irreps, irreps.slices()):
        blocks.setdefault(str(ir), []).append(sl)
    return blocks


def _check_nonzero(y: torch.Tensor, irreps) -> None:
    for (mul, ir), sl in zip(irreps, irreps.slices()):
        if mul and not bool((y[:, sl] != 0).any()):
            raise ValueError(
                f"output block {mul}x{ir} (channels {sl.start}:{sl.stop}) is identically zero: "
                "an unreachable output passes any equivariance check; feed inputs that reach it"
            )


def equivariance_error(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    irreps_in,
    irreps_out,
    *,
    group: str = "grid",
    parity: bool = True,
    origin: str = "centre",
    spacing: Spacing = 1.0,
    spacing_out: Spacing | None = None,
    matrices: torch.Tensor | None = None,
    rotations: int | torch.Tensor = 3,
    seed: int = 0,
    crop: int | None = None,
) -> dict[str, float]:
    """Equivariance error of ``fn`` per output irrep.

    Args:
        fn: maps ``[B, irreps_in.dim, X, Y, Z]`` to ``[B, irreps_out.dim, X', Y', Z']``.
        x: the input field.
        group: ``"grid"``: every grid symmetry (48, or 24 with ``parity=False``) that keeps the volume and
            the spacing, applied exactly; error ``max|f(gx) - g f(x)| / max|g f(x)|``, worst over the group.
            ``"continuous"``: ``rotations`` random rotations (or a ``[n, 3, 3]`` tensor; improper ones too
            with ``parity``) applied by cubic-spline resampling; error = relative L2 on the central region
            (``crop`` voxels removed on each side, default a quarter of each size), median over rotations.
        origin: ``"centre"`` or ``"voxel0"`` (periodic boxes), for the grid group.
        spacing, spacing_out: voxel sizes of input and output (``spacing_out`` defaults to ``spacing``).
        matrices: explicit group elements ``[n, 3, 3]`` instead of the default set.

    Returns:
        ``{"0e": error, "1o": error, ...}`` over the distinct output irreps.

    Raises:
        ValueError: an output block is identically zero, or the grid group is asked of a volume that does
            not map onto itself.

    >>> from steerable3d.nn import SteerableConv3d
    >>> conv = SteerableConv3d("0e + 1o", "0e + 1o", 3)
    >>> err = equivariance_error(conv, torch.randn(2, 4, 7, 7, 7), "0e + 1o", "0e + 1o")
    >>> max(err.values()) < 1e-5
    True
    """
    irreps_in, irreps_out = as_irreps(irreps_in, "irreps_in"), as_irreps(irreps_out, "irreps_out")
    check_field(x, irreps_in, "x")
    spacing = as_spacing(spacing)
    spacing_out = spacing if spacing_out is None else as_spacing(spacing_out)
    blocks = _blocks_by_irrep(irreps_out)
    with torch.no_grad():
        y = fn(x)
        check_field(y, irreps_out, "fn(x)")
        _check_nonzero(y, irreps_out)
        if group == "grid":
            if matrices is None:
                shape = tuple(x.shape[2:])
                if len(set(shape)) != 1 and len(set(spacing)) == 1:
                    raise ValueError(
                        f"grid symmetries need a cubic volume (X == Y == Z), got spatial shape {shape}; "
                        "pass matrices= for the subgroup that maps this volume onto itself"
                    )
                matrices = [
                    m for m in grid_symmetries(parity)
                    if all(spacing[s] == spacing[b] and shape[s] == shape[b] for b, s in enumerate(_signed_permutation(m)[0]))
                ]
            errors = {name: 0.0 for name in blocks}
            for m in matrices:
                a = fn(transform_field(x, irreps_in, m, origin, spacing))
                b = transform_field(y, irreps_out, m, origin, spacing_out)
                for name, slices in blocks.items():
                    diff = max(float((a[:, sl] - b[:, sl]).abs().max()) for sl in slices)
                    scale = max(float(b[:, sl].abs().max()) for sl in slices)
                    errors[name] = max(errors[name], diff / scale)
            return errors
        if group != "continuous":
            raise ValueError(f"group: expected 'grid' or 'continuous', got {group!r}")
        if isinstance(rotations, int):
            rotations = random_rotations(rotations, seed=seed, parity=parity)
        per_rotation = {name: [] for name in blocks}
        for r in rotations:
            a = fn(rotate_field(x, irreps_in, r, spacing))
            b = rotate_field(y, irreps_out, r, spacing_out)
            region = tuple(
                slice(c, n - c) for n, c in zip(b.shape[2:], [crop if crop is not None else n // 4 for n in b.shape[2:]])
            )
            a, b = a[(..., *region)], b[(..., *region)]
            for name, slices in blocks.items():
                diff = sum(float((a[:, sl] - b[:, sl]).pow(2).sum()) for sl in slices) ** 0.5
                norm = sum(float(b[:, sl].pow(2).sum()) for sl in slices) ** 0.5
                per_rotation[name].append(diff / norm)
        return {name: statistics.median(values) for name, values in per_rotation.items()}


def assert_equivariant(fn, x, irreps_in, irreps_out, *, tolerance: float | None = None, **kwargs) -> dict[str, float]:
    """Raise ``AssertionError`` naming the irreps whose :func:`equivariance_error` exceeds ``tolerance``.

    The default tolerance (grid group only) follows the dtype of ``x``: 1e-10 for float64, 1e-5 for
    float32. Continuous rotations need an explicit tolerance. Returns the errors. Keyword arguments go to
    :func:`equivariance_error` (``group``, ``parity``, ``spacing``, ...).

    >>> from steerable3d.nn import SteerableConv3d
    >>> conv = SteerableConv3d("0e", "1o", 3)  # a scalar field in, a vector field out
    >>> errors = assert_equivariant(conv, torch.randn(1, 1, 5, 5, 5), "0e", "1o")  # the 48 grid symmetries
    >>> list(errors), errors["1o"] < 1e-5
    (['1o'], True)
    >>> assert_equivariant(lambda x: x, torch.randn(1, 3, 5, 5, 5), "1o", "3x0e")  # a vector is not 3 scalars
    Traceback (most recent call last):
    AssertionError: equivariance error above 1e-05: {'0e': 2.0} (all: {'0e': 2.0})
    """
    if tolerance is None:
        if kwargs.get("group", "grid") != "grid":
            raise ValueError("assert_equivariant: continuous rotations need an explicit tolerance")
        if x.dtype not in DEFAULT_TOLERANCE:
            raise ValueError(
                f"assert_equivariant: no default tolerance for dtype {x.dtype}; expected a floating input "
                f"({', '.join(str(d) for d in DEFAULT_TOLERANCE)}) or an explicit tolerance"
            )
        tolerance = DEFAULT_TOLERANCE[x.dtype]
    errors = equivariance_error(fn, x, irreps_in, irreps_out, **kwargs)
    bad = {k: v for k, v in errors.items() if not v <= tolerance}
    if bad:
        raise AssertionError(f"equivariance error above {tolerance:g}: {bad} (all: {errors})")
    return errors
