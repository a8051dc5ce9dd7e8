"""Atoms to grid features: one channel per element, a normalized Gaussian per atom (the standard splat input
of density models). A ``0e`` field per element, so rotating the molecule rotates the features."""

from __future__ import annotations

import math
from typing import Sequence

import torch

__all__ = ["grid_points", "atom_splats"]


def grid_points(origin: torch.Tensor, axes: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Positions ``[N1, N2, N3, 3]`` of the points ``origin + i axes[0] + j axes[1] + k axes[2]``."""
    index = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=axes.dtype, device=axes.device) for n in shape], indexing="ij"), -1)
    return origin.to(axes.dtype) + index @ axes


def atom_splats(
    numbers: torch.Tensor,
    positions: torch.Tensor,
    elements: Sequence[int],
    origin: torch.Tensor,
    axes: torch.Tensor,
    shape: Sequence[int],
    sigma: float = 0.5,
    periodic: bool = False,
) -> torch.Tensor:
    """Gaussian splats ``[len(elements), N1, N2, N3]``: channel ``e`` sums, over the atoms of atomic number
    ``elements[e]``, the normalized Gaussian ``exp(-|r - R|^2 / (2 sigma^2)) / (2 pi sigma^2)^(3/2)`` at the
    grid points: a density (per unit volume), so the values times the voxel volume ``|det(axes)|`` sum to
    about 1 per atom (exactly in the limit of fine voxels and a grid that holds the atom).

    Args:
        numbers: ``[n]`` atomic numbers; positions: ``[n, 3]``, same length unit as ``origin`` and ``axes``
            (e.g. Bohr, as in :class:`~steerable3d.io.Cube`).
        elements: atomic numbers, one channel each; atoms of other elements raise a ``ValueError``.
        origin, axes, shape: the grid (``axes`` rows are the step vectors).
        sigma: Gaussian width, same unit.
        periodic: the grid is one cell of a periodic crystal (cell vectors ``shape[i] * axes[i]``): each atom
            contributes through its nearest image of every grid point (``sigma`` well below half the cell).
    """
    numbers, positions = torch.as_tensor(numbers), torch.as_tensor(positions, dtype=axes.dtype)
    if positions.shape != (len(numbers), 3):
        raise ValueError(f"positions: expected [{len(numbers)}, 3] for {len(numbers)} atomic numbers, got {tuple(positions.shape)}")
    unknown = sorted(set(numbers.tolist()) - set(elements))
    if unknown:
        raise ValueError(f"numbers: atomic numbers {unknown} have no channel in elements {list(elements)}")
    if not sigma > 0:
        raise ValueError(f"sigma: expected a positive width, got {sigma!r}")
    points = grid_points(origin, axes, shape)  # [N1, N2, N3, 3]
    cell = axes * torch.tensor(list(shape), dtype=axes.dtype, device=axes.device)[:, None]
    inverse = torch.linalg.inv(cell) if periodic else None
    norm = (2 * math.pi * sigma**2) ** -1.5
    out = torch.zeros(len(elements), *shape, dtype=axes.dtype, device=axes.device)
    channel = {z: i for i, z in enumerate(elements)}
    for z, r in zip(numbers.tolist(), positions):
        d = points - r
        if periodic:  # nearest image: fractional offsets into [-1/2, 1/2)
            fractional = d @ inverse
            d = (fractional - torch.round(fractional)) @ cell
        out[channel[z]] += norm * torch.exp(-(d * d).sum(-1) / (2 * sigma**2))
    return out
