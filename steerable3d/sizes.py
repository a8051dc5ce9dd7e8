"""Which grid sizes keep the grid symmetries exact.

A window of length ``k`` moved with stride ``s`` over ``N`` voxels padded symmetrically by ``p`` maps the
output grid onto itself under the axis flips iff ``(N + 2p - k) % s == 0``: then the first and last
windows sit symmetrically about the centre. Odd kernels with stride 2 need odd sizes, even windows
(2x2x2 pooling) need even sizes, and L strided levels compound.
"""

from __future__ import annotations

import copy
from typing import Iterable

import torch

__all__ = ["window_is_exact", "exact_sizes"]


def window_is_exact(n: int, kernel: int, stride: int, padding: int) -> bool:
    """The size rule for one axis: ``(n + 2 padding - kernel) % stride == 0`` (and the window fits).

    >>> window_is_exact(37, 5, 2, 2), window_is_exact(36, 5, 2, 2), window_is_exact(16, 2, 2, 0)
    (True, False, True)
    """
    span = n + 2 * padding - kernel
    return span >= 0 and span % stride == 0


def exact_sizes(module: torch.nn.Module, sizes: Iterable[int] = range(1, 129)) -> list[int]:
    """The cubic input sizes ``N`` (``[B, C, N, N, N]``) on which ``module`` keeps the grid symmetries exact.

    Every submodule with an ``is_exact(spatial_shape)`` method is asked about the shape that reaches it;
    the shapes come from a forward pass on the ``meta`` device (no memory, no arithmetic).

    >>> from steerable3d.nn import SteerableConv3d
    >>> conv = SteerableConv3d("0e", "0e", 5, stride=2, antialias=False)
    >>> exact_sizes(conv, range(8, 14))
    [9, 11, 13]
    """
    meta = copy.deepcopy(module).to("meta")
    channels = meta.irreps_in.dim
    seen: list[tuple[torch.nn.Module, tuple[int, ...]]] = []
    hooks = [
        m.register_forward_pre_hook(lambda m, args: seen.append((m, tuple(args[0].shape[2:]))))
        for m in meta.modules()
        if hasattr(m, "is_exact")
    ]
    good = []
    try:
        for n in sizes:
            seen.clear()
            try:
                with torch.no_grad():
                    meta(torch.empty(1, channels, n, n, n, device="meta"))
            except (RuntimeError, ValueError):
                continue  # too small for the windows
            if all(m.is_exact(shape) for m, shape in seen):
                good.append(n)
    finally:
        for h in hooks:
            h.remove()
    return good
