"""Input checks shared by every public entry point.

Each check raises a ``ValueError`` that names what was expected and what came, so a user sees the mistake
at the call that made it instead of a shape error deep inside ``conv3d``.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence, Union

import torch
from e3nn import o3

Spacing = Union[float, Sequence[float]]


def as_irreps(irreps, name: str = "irreps") -> o3.Irreps:
    """Parse ``irreps`` (string, ``Irreps`` or list) into ``e3nn.o3.Irreps``; bad input names the argument."""
    try:
        return o3.Irreps(irreps)
    except Exception as error:  # e3nn raises ValueError, AssertionError or TypeError depending on the input
        raise ValueError(
            f"{name}: expected irreps such as '8x0e + 4x1o + 2x2e', got {irreps!r} ({error})"
        ) from None


def as_spacing(spacing: Spacing, name: str = "spacing") -> tuple[float, float, float]:
    """Voxel size per axis (x, y, z) in physical units: one positive number or three."""
    if isinstance(spacing, torch.Tensor):
        spacing = spacing.tolist()
    values = [spacing] * 3 if isinstance(spacing, (int, float)) else list(spacing)
    if len(values) != 3:
        raise ValueError(f"{name}: expected one number or three (x, y, z), got {spacing!r}")
    try:
        values = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected positive numbers, got {spacing!r}") from None
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"{name}: expected positive finite voxel sizes, got {spacing!r}")
    return tuple(values)


class FieldBlock(NamedTuple):
    """One ``mul x ir`` entry of an irreps: its channels are ``x[:, slice]``, ``mul`` fields of ``dim = 2l+1``."""

    mul: int
    l: int
    p: int
    dim: int
    slice: slice


def field_blocks(irreps: o3.Irreps) -> tuple[FieldBlock, ...]:
    """The entries of ``irreps`` as plain tuples of ints, for ``forward`` loops: ``torch.compile`` cannot
    trace iteration over an ``Irreps`` (its ``len`` raises)."""
    return tuple(FieldBlock(mul, ir.l, ir.p, ir.dim, sl) for (mul, ir), sl in zip(irreps, irreps.slices()))


def check_field(x: torch.Tensor, irreps: o3.Irreps, name: str = "input") -> None:
    """A field is ``[batch, irreps.dim, X, Y, Z]``. Skipped while ``torch.compile`` traces (the compiled
    graph is specialized on the shapes it saw, which passed this check eagerly or fail inside the ops)."""
    if torch.compiler.is_compiling():
        return
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor [batch, {irreps.dim}, X, Y, Z], got {type(x).__name__}")
    if x.dim() != 5:
        raise ValueError(
            f"{name}: expected a 5-d field [batch, {irreps.dim}, X, Y, Z] for irreps {irreps}, "
            f"got shape {tuple(x.shape)}"
        )
    if x.shape[1] != irreps.dim:
        raise ValueError(
            f"{name}: expected {irreps.dim} channels for irreps {irreps}, got {x.shape[1]} "
            f"(shape {tuple(x.shape)})"
        )


def as_triple(value, name: str) -> tuple[int, int, int]:
    """An int or three ints, as used by ``stride``, ``dilation`` and integer ``padding``."""
    values = [value] * 3 if isinstance(value, int) else list(value)
    if len(values) != 3 or not all(isinstance(v, int) for v in values):
        raise ValueError(f"{name}: expected an int or three ints, got {value!r}")
    return tuple(values)
