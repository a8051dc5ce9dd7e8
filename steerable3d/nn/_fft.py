"""Convolution by FFT: the same cross-correlation as ``conv3d`` (stride 1, no dilation), for large kernels.

Cost: direct convolution takes ``O(B C_in C_out k^3 N^3)``; the FFT route takes FFTs of the input and of the
output, the kernel's spectrum (``C_out x C_in`` small DFTs, ``O(k M^3)`` each) and ``O(B C_in C_out M^3)``
complex products, so it wins for large kernels. The kernel spectrum ``[C_out, C_in, M, M, M/2+1]`` is
large (complex64, about 1 GB for 30 channels at 64^3), so it is built and used in chunks of output
channels.
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


def _dft_matrix(taps: int, size: int, shift: int, half: bool, dtype: torch.dtype, device) -> torch.Tensor:
    """``[taps, frequencies]``: the conjugate DFT on ``size`` points of ``taps`` samples at ``m - shift``,
    ``exp(+2 pi i f (m - shift) / size)`` (all ``size`` frequencies, or ``size // 2 + 1`` for the real
    transform's last axis)."""
    f = torch.arange(size // 2 + 1 if half else size, dtype=torch.float64, device=device)
    m = torch.arange(taps, dtype=torch.float64, device=device) - shift
    angle = 2 * math.pi * torch.outer(m, f) / size
    return torch.polar(torch.ones_like(angle), angle).to(dtype)


def kernel_spectrum_chunks(
    kernel: torch.Tensor, grid: Sequence[int], padding: Sequence[int], circular: bool, chunk_bytes: int = CHUNK_BYTES
) -> list[torch.Tensor]:
    """The conjugated real-input spectrum of the kernel laid out on ``grid`` (tap ``m`` at ``m - p`` modulo
    the grid for circular padding, at ``m`` for zero padding; conjugated since ``conv3d`` is a
    cross-correlation), in chunks of output channels: a list of ``[o, C_in, M0, M1, M2 // 2 + 1]`` complex
    tensors.

    The kernel has ``k^3`` taps on an ``M^3`` grid, so its transform is taken as three small dense DFTs
    (matrix products, ``O(k M^3)`` per channel pair) instead of FFTs of the zero-padded grid
    (``O(M^3 log M)``): several times faster, and differentiable as plain matmuls."""
    out_channels, in_channels = kernel.shape[:2]
    taps = kernel.shape[2:]
    complex_dtype = torch.complex128 if kernel.dtype == torch.float64 else torch.complex64
    shifts = [p if circular else 0 for p in padding]
    ex, ey, ez = (
        _dft_matrix(t, m, shift, axis == 2, complex_dtype, kernel.device)
        for axis, (t, m, shift) in enumerate(zip(taps, grid, shifts))
    )
    frequencies = grid[0] * grid[1] * (grid[2] // 2 + 1)
    per_channel = in_channels * frequencies * 2 * kernel.element_size()
    step = max(1, min(out_channels, chunk_bytes // max(per_channel, 1)))
    chunks = []
    for start in range(0, out_channels, step):
        block = kernel[start : start + step].to(complex_dtype)  # [o, i, x, y, z]
        s = block @ ez  # [o, i, x, y, c]
        s = (s.transpose(-1, -2) @ ey).transpose(-1, -2)  # [o, i, x, b, c]
        s = (s.permute(0, 1, 3, 4, 2) @ ex).permute(0, 1, 4, 2, 3)  # [o, i, a, b, c]
        chunks.append(s)
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
    inputs = spectrum.unsqueeze(2).unbind(1)  # per input channel [B, 1, ...]; unbind's backward is one stack
    for chunk in spectra:  # sum over input channels of elementwise products (complex bmm loops per frequency)
        kernels = chunk.unbind(1)  # per input channel [o, ...]
        total = inputs[0] * kernels[0]
        for x_i, k_i in zip(inputs[1:], kernels[1:]):
            total = total + x_i * k_i
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


def relative_cost(batch: int, spatial: Sequence[int], taps: Sequence[int], grid: Sequence[int], training: bool) -> float:
    """Estimated time of the FFT route over the direct one (< 1: FFT is faster), from CPU measurements
    (``benchmarks/bench_fft.py``: 2 threads, 32^3, batch 2, 30 channels). Both costs are counted per
    ``batch x C_in x C_out x voxels``, in units of one direct-convolution tap: direct ``prod(taps)`` on the
    output grid; FFT about 100 (cached spectrum: input and output transforms and the products) in
    inference, and ``154 + 58 k / batch`` in training (products forward and backward, plus the kernel's
    small DFTs, ``O(k)`` per channel pair and shared by the batch)."""
    direct = math.prod(taps) * math.prod(spatial)
    k = max(taps)
    fft = (154.0 + 58.0 * k / batch if training else 100.0) * math.prod(grid)
    return fft / direct
