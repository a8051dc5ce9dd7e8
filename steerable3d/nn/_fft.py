"""Convolution by FFT: the same cross-correlation as ``conv3d`` (stride 1, no dilation), for large kernels.

Cost: direct convolution takes ``O(B C_in C_out k^3 N^3)``; the FFT route takes FFTs of the input, of the
kernel (``C_out x C_in`` transforms of the padded grid) and of the output, plus ``O(B C_in C_out N^3)``
complex products, whatever ``k``. The kernel spectrum ``[C_out, C_in, M, M, M/2+1]`` is large (complex64,
about 1 GB for 30 channels at 64^3), so it is built and used in chunks of output channels.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

CHUNK_BYTES = 256 * 2**20  # kernel spectrum per chunk of output channels


def work_grid(spatial: Sequence[int], taps: Sequence[int], padding: Sequence[int], circular: bool) -> tuple[int, ...]:
    """The FFT grid: the volume itself for circular padding, the zero-padded volume otherwise."""
    return tuple(spatial) if circular else tuple(n + 2 * p for n, p in zip(spatial, padding))


def kernel_spectrum_chunks(
    kernel: torch.Tensor, grid: Sequence[int], padding: Sequence[int], circular: bool, chunk_bytes: int = CHUNK_BYTES
) -> list[torch.Tensor]:
    """``rfftn`` of the kernel laid out on ``grid`` (tap ``m`` at ``m - p`` modulo the grid for circular
    padding, at ``m`` for zero padding), conjugated (``conv3d`` is a cross-correlation), in chunks of output
    channels: a list of ``[o, C_in, M0, M1, M2 // 2 + 1]`` complex tensors."""
    out_channels, in_channels = kernel.shape[:2]
    taps = kernel.shape[2:]
    frequencies = grid[0] * grid[1] * (grid[2] // 2 + 1)
    per_channel = in_channels * frequencies * 2 * kernel.element_size()
    step = max(1, min(out_channels, chunk_bytes // max(per_channel, 1)))
    chunks = []
    # tap m of each axis goes to grid index m - p (wrapped) for circular padding, m for zero padding
    index = [
        (torch.arange(t, device=kernel.device) - (p if circular else 0)) % m for t, p, m in zip(taps, padding, grid)
    ]
    where = (index[0][:, None, None], index[1][None, :, None], index[2][None, None, :])
    for start in range(0, out_channels, step):
        block = kernel[start : start + step]
        placed = block.new_zeros(*block.shape[:2], *grid)
        placed[(slice(None), slice(None), *where)] = block
        chunks.append(torch.fft.rfftn(placed, dim=(2, 3, 4)).conj())
    return chunks


def fft_conv3d(
    x: torch.Tensor, spectra: list[torch.Tensor], bias: torch.Tensor | None, taps: Sequence[int], padding: Sequence[int], circular: bool
) -> torch.Tensor:
    """``conv3d(x, kernel, bias, stride=1, padding)`` (circular: ``F.pad(x, padding, "circular")`` first) from
    the kernel's spectrum chunks (:func:`kernel_spectrum_chunks` on :func:`work_grid`)."""
    if not circular and any(padding):
        x = F.pad(x, [p for p in reversed(padding) for _ in range(2)])
    grid = tuple(x.shape[2:])
    spectrum = torch.fft.rfftn(x, dim=(2, 3, 4))  # [B, C_in, M0, M1, M2 // 2 + 1]
    out = []
    for chunk in spectra:  # sum over input channels of elementwise products (complex bmm loops per frequency)
        total = spectrum[:, :1] * chunk[None, :, 0]
        for i in range(1, chunk.shape[1]):
            total = total + spectrum[:, i : i + 1] * chunk[None, :, i]
        out.append(total)
    y = torch.fft.irfftn(torch.cat(out, dim=1), s=grid, dim=(2, 3, 4))
    if circular:
        sizes = [n + 2 * p - t + 1 for n, p, t in zip(grid, padding, taps)]
    else:
        sizes = [m - t + 1 for m, t in zip(grid, taps)]
    y = y[:, :, : sizes[0], : sizes[1], : sizes[2]]
    if bias is not None:
        y = y + bias.view(1, -1, 1, 1, 1).to(y.dtype)
    return y


def relative_cost(batch: int, in_channels: int, out_channels: int, spatial: Sequence[int], taps: Sequence[int], grid: Sequence[int]) -> float:
    """Estimated time of the FFT route over the direct one (< 1: FFT is faster). Flop counts with weights
    measured on CPU (``benchmarks/bench_fft.py``): an FFT point costs about ``2.5 log2(M^3)`` flops at a
    third of a dense convolution's rate, a complex product 8 flops at a fifth of it."""
    points = math.prod(grid)
    log = math.log2(max(points, 2))
    direct = 2.0 * batch * in_channels * out_channels * math.prod(taps) * math.prod(spatial)
    transforms = (in_channels * out_channels + batch * (in_channels + out_channels)) * points / 2 * 2.5 * log * 3.0
    products = batch * in_channels * out_channels * points / 2 * 8.0 * 5.0
    return (transforms + products) / direct
