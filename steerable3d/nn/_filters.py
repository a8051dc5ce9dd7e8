"""Anti-aliasing filters shared by strided convolutions and low-pass pooling."""

from __future__ import annotations

import math

import torch


def antialias_std(stride: int) -> float:
    """Blur for downsampling by ``stride``: standard deviation ``0.5 sqrt(stride^2 - 1)`` voxels (the blur
    that takes a one-voxel-wide Gaussian to one ``stride`` voxels wide)."""
    return 0.5 * math.sqrt(stride * stride - 1)


def gaussian_taps(std: float, even: bool) -> torch.Tensor:
    """1-d normalized Gaussian, float64, ``std`` in voxels, cut at two deviations, on integer offsets (odd
    length) or half-integer offsets (even length). ``std == 0`` gives ``[1]`` (odd) or ``[0.5, 0.5]`` (even).

    An odd blur keeps a window centred on a voxel, an even one moves it half a voxel: choosing the parity
    from the input size keeps strided windows symmetric about the volume centre.

    >>> gaussian_taps(0.866, even=False).shape, gaussian_taps(0.866, even=True).shape
    (torch.Size([5]), torch.Size([6]))
    """
    if std <= 0:
        return torch.full((2,), 0.5, dtype=torch.float64) if even else torch.ones(1, dtype=torch.float64)
    if even:
        half = math.ceil(2 * std + 0.5)
        offsets = torch.arange(-half, half, dtype=torch.float64) + 0.5
    else:
        half = math.ceil(2 * std)
        offsets = torch.arange(-half, half + 1, dtype=torch.float64)
    taps = torch.exp(-0.5 * (offsets / std) ** 2)
    return taps / taps.sum()
