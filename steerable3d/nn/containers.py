"""Type-checked composition of equivariant modules."""

from __future__ import annotations

import torch
from e3nn import o3

from .._validation import as_irreps, check_field
from .conv import SteerableConv3d

__all__ = ["Sequential", "Residual", "Concatenate"]


def _irreps_of(module: torch.nn.Module, attribute: str, position: int) -> o3.Irreps:
    if not hasattr(module, attribute):
        raise ValueError(
            f"module {position} ({type(module).__name__}) has no {attribute}: every module in a steerable "
            "container must declare irreps_in and irreps_out"
        )
    return getattr(module, attribute)


class Sequential(torch.nn.Sequential):
    """``torch.nn.Sequential`` that checks at construction that each module's ``irreps_out`` equals the
    next module's ``irreps_in`` (as channel layouts: ``4x0e+2x0e`` equals ``6x0e``), and names the first
    mismatch.

    >>> from steerable3d.nn import SteerableConv3d, Gate
    >>> gate = Gate("4x0e", [torch.relu], "2x0e", [torch.sigmoid], "2x1o")
    >>> net = Sequential(SteerableConv3d("0e", "4x0e + 2x0e + 2x1o", 3), gate)
    >>> net.irreps_in, net.irreps_out
    (1x0e, 4x0e+2x1o)
    """

    def __init__(self, *modules: torch.nn.Module) -> None:
        if not modules:
            raise ValueError("Sequential: expected at least one module")
        super().__init__(*modules)
        for i in range(1, len(modules)):
            produced = _irreps_of(modules[i - 1], "irreps_out", i - 1)
            expected = _irreps_of(modules[i], "irreps_in", i)
            if produced.simplify() != expected.simplify():  # same channel layout
                raise ValueError(
                    f"Sequential: module {i} ({type(modules[i]).__name__}) expects irreps_in {expected}, but module "
                    f"{i - 1} ({type(modules[i - 1]).__name__}) gives irreps_out {produced}"
                )
        self.irreps_in = _irreps_of(modules[0], "irreps_in", 0)
        self.irreps_out = _irreps_of(modules[-1], "irreps_out", len(modules) - 1)


class Residual(torch.nn.Module):
    """``y = module(x) + skip(x)``: the identity when the irreps match, else an equivariant 1x1 projection
    (:class:`SteerableConv3d` with ``kernel_size=1``: the self-connection only, so output irreps absent from
    the input get zero), or any ``projection`` given.

    The module must keep the spatial shape (or the projection must change it the same way).

    >>> from steerable3d.nn import SteerableConv3d
    >>> block = Residual(SteerableConv3d("2x0e + 1o", "2x0e + 1o + 1o", 3))
    >>> block(torch.randn(1, 5, 4, 4, 4)).shape
    torch.Size([1, 8, 4, 4, 4])
    """

    def __init__(self, module: torch.nn.Module, projection: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.module = module
        self.irreps_in = _irreps_of(module, "irreps_in", 0)
        self.irreps_out = _irreps_of(module, "irreps_out", 0)
        if projection is None and self.irreps_in != self.irreps_out:
            projection = SteerableConv3d(self.irreps_in, self.irreps_out, 1, bias=False, allow_unreachable=True)
        if projection is not None and (projection.irreps_in != self.irreps_in or projection.irreps_out != self.irreps_out):
            raise ValueError(
                f"Residual: projection maps {projection.irreps_in} -> {projection.irreps_out}, expected "
                f"{self.irreps_in} -> {self.irreps_out}"
            )
        self.projection = projection

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, irreps_in.dim, X, Y, Z] -> [B, irreps_out.dim, X', Y', Z']``."""
        skip = x if self.projection is None else self.projection(x)
        return self.module(x) + skip


class Concatenate(torch.nn.Module):
    """Concatenate fields along channels (skip connections): ``forward(x1, x2, ...)``.

    ``irreps_out`` is the irreps concatenated in order; with ``sort=True`` the channels are reordered so
    that equal irreps are adjacent and ``irreps_out`` is sorted and simplified (e3nn's ``Irreps.sort``).
    ``irreps_in`` is the tuple of the inputs' irreps.

    >>> cat = Concatenate("2x0e + 1o", "1x0e", sort=True)
    >>> cat.irreps_out
    3x0e+1x1o
    >>> cat(torch.randn(1, 5, 2, 2, 2), torch.randn(1, 1, 2, 2, 2)).shape
    torch.Size([1, 6, 2, 2, 2])
    """

    def __init__(self, *irreps, sort: bool = False) -> None:
        super().__init__()
        if not irreps:
            raise ValueError("Concatenate: expected the irreps of at least one input")
        self.irreps_in = tuple(as_irreps(ir, f"irreps {i}") for i, ir in enumerate(irreps))
        joined = sum(self.irreps_in, o3.Irreps([]))
        self.sort = sort
        if sort:
            order = sorted(range(len(joined)), key=lambda i: joined[i].ir)
            slices = joined.slices()
            index = torch.cat([torch.arange(slices[i].start, slices[i].stop) for i in order])
            self.irreps_out = o3.Irreps([joined[i] for i in order]).simplify()
        else:
            index = torch.arange(joined.dim)
            self.irreps_out = joined
        self.register_buffer("_index", index, persistent=False)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        """``[B, C_i, X, Y, Z]`` for each input -> ``[B, sum C_i, X, Y, Z]``."""
        if not torch.compiler.is_compiling():  # as check_field: the compiled graph is specialized anyway
            if len(xs) != len(self.irreps_in):
                raise ValueError(f"Concatenate: expected {len(self.irreps_in)} inputs, got {len(xs)}")
            for i, (x, irreps) in enumerate(zip(xs, self.irreps_in)):
                check_field(x, irreps, f"input {i}")
        y = torch.cat(xs, dim=1)
        return y.index_select(1, self._index) if self.sort else y
