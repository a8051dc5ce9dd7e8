"""Periodic cosmological fields made on the spot: Gaussian random fields, the Zel'dovich displacement and
the density of particles moved by it (cloud-in-cell).

Conventions: a periodic box of side ``box_size`` (any length unit, e.g. Mpc/h) sampled on ``N^3`` voxels;
grid point ``i`` at ``i * box_size / N``; Fourier modes ``k = 2 pi n / box_size``. Spectra follow
:mod:`steerable3d.metrics`: ``P(k) = V / N^6 <|delta_k|^2>`` with ``delta_k`` the unnormalized DFT.

Every operation here is exactly equivariant under the 48 grid symmetries of the periodic box (about voxel
0, hence about the centre too: a periodic box maps onto itself under shifts by whole voxels).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from e3nn import o3

__all__ = ["gaussian_random_field", "zeldovich_displacement", "cic_density", "CICPaint", "wavevectors"]


def wavevectors(size: int, box_size: float, dtype=torch.float64) -> torch.Tensor:
    """``[3, N, N, N]`` wavevector of every FFT mode (``2 pi / box_size`` times the integer frequency), with
    the Nyquist frequency of even ``N`` set to 0 along its axis: its sign is ambiguous, so a derivative there
    would break the mirror symmetry and the reality of the field. Units: radians per length unit of
    ``box_size`` (h/Mpc for a box in Mpc/h).

    >>> k = wavevectors(4, box_size=100.0)  # box of 100 Mpc/h on 4^3 voxels
    >>> k.shape, (k[:, 1, 2, 3] / (2 * math.pi / 100.0)).round().tolist()  # frequencies 1, Nyquist, -1
    (torch.Size([3, 4, 4, 4]), [1.0, 0.0, -1.0])
    """
    frequencies = torch.fft.fftfreq(size, d=1.0 / size, dtype=dtype)
    if size % 2 == 0:
        frequencies[size // 2] = 0.0
    k = frequencies * (2 * math.pi / box_size)
    return torch.stack(torch.meshgrid(k, k, k, indexing="ij"))


def _check_box(size: int, box_size: float) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise ValueError(f"size: expected an int >= 2 (voxels per axis), got {size!r}")
    if not box_size > 0:
        raise ValueError(f"box_size: expected a positive length, got {box_size!r}")


def gaussian_random_field(
    size: int, box_size: float, power: Callable[[torch.Tensor], torch.Tensor], *, batch: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A real periodic Gaussian random field ``[N, N, N]`` (``[batch, N, N, N]`` with ``batch``), float64,
    of power spectrum ``power(k)`` (``k`` a tensor of wavenumbers > 0, same length unit as ``box_size``):
    white noise of unit variance, transformed, multiplied by ``sqrt(P(k) N^3 / V)``, transformed back. The
    mean (``k = 0``) is zero.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> delta = gaussian_random_field(32, 100.0, lambda k: 50.0 * k**-1, generator=g)
        >>> delta.shape, abs(float(delta.mean())) < 1e-12
        (torch.Size([32, 32, 32]), True)
    """
    _check_box(size, box_size)
    shape = (size,) * 3 if batch is None else (batch,) + (size,) * 3
    noise = torch.randn(shape, dtype=torch.float64, generator=generator)
    k = torch.fft.fftfreq(size, d=1.0 / size, dtype=torch.float64) * (2 * math.pi / box_size)
    modulus = torch.sqrt(sum(c**2 for c in torch.meshgrid(k, k, k, indexing="ij")))
    amplitude = torch.zeros_like(modulus)
    nonzero = modulus > 0
    amplitude[nonzero] = torch.sqrt(power(modulus[nonzero]).to(torch.float64) * size**3 / box_size**3)
    return torch.fft.ifftn(torch.fft.fftn(noise, dim=(-3, -2, -1)) * amplitude, dim=(-3, -2, -1)).real


def zeldovich_displacement(delta: torch.Tensor, box_size: float) -> torch.Tensor:
    """The linear-theory (Zel'dovich) displacement ``psi(k) = i k delta(k) / k^2`` of a density contrast
    ``[..., N, N, N]``: a vector field ``[..., 3, N, N, N]`` (components x, y, z; same length unit as
    ``box_size``) whose divergence is ``-delta`` (less the Nyquist planes of even ``N``, see
    :func:`wavevectors`). Particles start on the grid points ``q`` and move to ``q + psi(q)``.

    Example: the fundamental mode along x of a box of 100 Mpc/h, ``delta = 0.1 cos(k x)``; the particles
    stream towards the crest at ``x = 0``, ``psi_x = -0.1 sin(k x) / k`` (up to 1.6 Mpc/h), ``psi_y = psi_z = 0``:
        >>> x, k = torch.arange(16, dtype=torch.float64) * 100.0 / 16, 2 * math.pi / 100.0  # Mpc/h, h/Mpc
        >>> psi = zeldovich_displacement(0.1 * torch.cos(k * x)[:, None, None].expand(16, 16, 16), 100.0)
        >>> psi_x = -0.1 * torch.sin(k * x)[:, None, None] / k
        >>> psi.shape, torch.allclose(psi[0], psi_x), float(psi[1:].abs().max()) < 1e-12
        (torch.Size([3, 16, 16, 16]), True, True)
    """
    if delta.dim() < 3 or not delta.shape[-3] == delta.shape[-2] == delta.shape[-1]:
        raise ValueError(f"delta: expected a field [..., N, N, N] on a cubic grid, got shape {tuple(delta.shape)}")
    size = delta.shape[-1]
    _check_box(size, box_size)
    k = wavevectors(size, box_size, torch.float64).to(delta.device)
    k2 = (k**2).sum(0)
    k2[k2 == 0] = 1.0  # the mean mode (and the pure Nyquist modes) have no displacement: their numerator is 0
    spectrum = torch.fft.fftn(delta.to(torch.float64), dim=(-3, -2, -1)).unsqueeze(-4)
    return torch.fft.ifftn(1j * k * spectrum / k2, dim=(-3, -2, -1)).real.to(delta.dtype)


def cic_density(displacement: torch.Tensor, box_size: float) -> torch.Tensor:
    """Density contrast ``[..., N, N, N]`` of one particle per voxel moved from its grid point by
    ``displacement [..., 3, N, N, N]`` (same length unit as ``box_size``), deposited with cloud-in-cell
    (trilinear) weights onto the periodic grid: counts per voxel minus 1. Non-linear in the displacement
    (particles pile up where it converges), with zero mean.

    >>> psi = torch.zeros(3, 4, 4, 4, dtype=torch.float64)
    >>> psi[0, 1, 1, 1] = 0.5  # half a voxel along x (box 4, 4 voxels)
    >>> rho = cic_density(psi, 4.0)
    >>> rho[1, 1, 1].item(), rho[2, 1, 1].item()
    (-0.5, 0.5)
    """
    if displacement.dim() < 4 or displacement.shape[-4] != 3 or not displacement.shape[-3] == displacement.shape[-2] == displacement.shape[-1]:
        raise ValueError(f"displacement: expected a vector field [..., 3, N, N, N], got shape {tuple(displacement.shape)}")
    size = displacement.shape[-1]
    _check_box(size, box_size)
    leading = displacement.shape[:-4]
    psi = displacement.reshape(-1, 3, size**3).to(torch.float64) * (size / box_size)  # voxel units
    grid = torch.stack(torch.meshgrid(*[torch.arange(size, dtype=torch.float64, device=psi.device)] * 3, indexing="ij")).reshape(3, -1)
    position = grid + psi  # [B, 3, P]
    base = torch.floor(position)
    fraction = position - base
    base = base.long()
    counts = torch.zeros(psi.shape[0], size**3, dtype=torch.float64, device=psi.device)
    for corner in range(8):
        offset = [(corner >> a) & 1 for a in range(3)]
        weight = torch.ones_like(fraction[:, 0])
        index = torch.zeros_like(base[:, 0])
        for a in range(3):
            weight = weight * (fraction[:, a] if offset[a] else 1 - fraction[:, a])
            index = index * size + (base[:, a] + offset[a]) % size
        counts.scatter_add_(1, index, weight)
    return (counts - 1).reshape(*leading, size, size, size).to(displacement.dtype)


class CICPaint(torch.nn.Module):
    """A layer that paints a displacement field into a density: :func:`cic_density` with the displacement
    in voxels (one particle per voxel, moved from its grid point, deposited with cloud-in-cell weights on the
    periodic grid; output: counts per voxel minus 1).

    Shapes: ``[B, 3, N, N, N]`` (``irreps_in = "1x1o"``, components x, y, z, in voxels) to ``[B, 1, N, N, N]``
    (``irreps_out = "1x0e"``, a density contrast). No parameters. Differentiable almost everywhere (the
    weights are piecewise linear in the displacement) and exactly equivariant under the 48 grid symmetries
    of the periodic box. Computed in float64, returned in the input's dtype. For a displacement in box
    units (as :func:`zeldovich_displacement` gives it), multiply it by ``N / box_size`` first.

    >>> psi = torch.zeros(1, 3, 4, 4, 4)
    >>> psi[0, 0, 1, 1, 1] = 0.5  # half a voxel along x
    >>> rho = CICPaint()(psi)
    >>> rho.shape, rho[0, 0, 1, 1, 1].item(), rho[0, 0, 2, 1, 1].item()
    (torch.Size([1, 1, 4, 4, 4]), -0.5, 0.5)
    """

    def __init__(self) -> None:
        super().__init__()
        self.irreps_in, self.irreps_out = o3.Irreps("1x1o"), o3.Irreps("1x0e")

    def forward(self, displacement: torch.Tensor) -> torch.Tensor:
        if displacement.dim() != 5:
            raise ValueError(f"displacement: expected [B, 3, N, N, N] in voxels, got shape {tuple(displacement.shape)}")
        return cic_density(displacement, float(displacement.shape[-1]))[:, None]
