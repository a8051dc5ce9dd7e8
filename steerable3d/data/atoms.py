"""Atoms to grid features, one ``0e`` channel per element, so rotating the molecule rotates the features:

* :func:`atom_splats`: a normalized Gaussian per atom (the standard splat input of density models);
* :func:`atomic_superposition`: the superposition of spherically averaged free-atom densities (the standard
  crude guess of a molecule's electron density; needs PySCF), as voxel averages.

Both take the grid as ``origin``, ``axes`` (rows are the step vectors) and ``shape``, and have a periodic
option (nearest images in the cell ``shape[i] * axes[i]``)."""

from __future__ import annotations

import functools
import math
from typing import Callable, Sequence

import numpy as np
import torch

__all__ = ["grid_points", "centred_grid", "atom_splats", "voxel_averages", "atomic_superposition", "atomic_density_profile"]


def grid_points(origin: torch.Tensor, axes: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Positions ``[N1, N2, N3, 3]`` of the points ``origin + i axes[0] + j axes[1] + k axes[2]`` (``origin``
    ``[3]``, ``axes`` ``[3, 3]`` with rows the step vectors, ``shape`` ``(N1, N2, N3)``), in the length unit of
    ``origin`` and ``axes`` and their dtype.

    >>> origin, axes = torch.tensor([1.0, 0.0, -1.0]), torch.diag(torch.tensor([0.5, 1.0, 2.0]))
    >>> points = grid_points(origin, axes, (2, 3, 4))
    >>> points.shape, points[1, 2, 3].tolist()
    (torch.Size([2, 3, 4, 3]), [1.5, 2.0, 5.0])
    """
    index = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=axes.dtype, device=axes.device) for n in shape], indexing="ij"), -1)
    return origin.to(axes.dtype) + index @ axes


def centred_grid(size: int, spacing: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(origin [3], axes [3, 3])`` of a centred cubic grid of ``size^3`` points ``spacing`` apart (float64,
    the length unit of ``spacing``, e.g. Bohr): point ``i`` at ``(i - (size - 1) / 2) * spacing`` on every
    axis.

    >>> points = grid_points(*centred_grid(5, 0.5), (5, 5, 5))
    >>> points[2, 2, 2].tolist(), points[0, 0, 0].tolist(), float(points.mean())
    ([0.0, 0.0, 0.0], [-1.0, -1.0, -1.0], 0.0)
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size: expected a positive int (points per axis), got {size!r}")
    if not spacing > 0:
        raise ValueError(f"spacing: expected a positive length, got {spacing!r}")
    origin = torch.full((3,), -(size - 1) / 2 * spacing, dtype=torch.float64)
    return origin, torch.eye(3, dtype=torch.float64) * spacing


def _cell(axes: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """The periodic cell ``[3, 3]`` of a grid: row ``i`` is ``shape[i] * axes[i]``."""
    return axes * torch.tensor(list(shape), dtype=axes.dtype, device=axes.device)[:, None]


def _subcell_offsets(axes: torch.Tensor, subsamples: int) -> torch.Tensor:
    if isinstance(subsamples, bool) or not isinstance(subsamples, int) or subsamples < 1:
        raise ValueError(f"subsamples: expected a positive int (points per axis and voxel), got {subsamples!r}")
    offsets = (torch.arange(subsamples, dtype=axes.dtype, device=axes.device) + 0.5) / subsamples - 0.5
    return torch.stack(torch.meshgrid(offsets, offsets, offsets, indexing="ij"), -1).reshape(-1, 3) @ axes


REFINEMENTS = ((2.0, 8), (0.6, 16))  # (radius in Bohr, points per axis) about heavy nuclei


def voxel_averages(
    function: Callable[[torch.Tensor], torch.Tensor],
    origin: torch.Tensor,
    axes: torch.Tensor,
    shape: Sequence[int],
    subsamples: int = 4,
    *,
    sharp_points: torch.Tensor | None = None,
    refinements: Sequence[tuple[float, int]] = REFINEMENTS,
    periodic: bool = False,
    chunk: int = 1 << 18,
) -> torch.Tensor:
    """Voxel averages ``[N1, N2, N3]`` of ``function`` (points ``[P, 3] -> values [P]``) by the midpoint
    rule with ``subsamples^3`` points per voxel, and more near ``sharp_points [m, 3]``: each
    ``(radius, s)`` of ``refinements`` (later ones win) gives ``s^3`` points to the voxels whose centre lies
    within ``radius`` plus half the voxel diagonal of a sharp point. Meant for the nuclei of heavy atoms,
    whose core densities decay over a few hundredths of a Bohr: with 4 points per axis alone, 0.4 Bohr
    voxels lose 0.3% of an oxygen atom's electrons, with the default refinements 0.02%. With ``periodic``,
    distances to the sharp points are to their nearest images in the cell ``shape[i] * axes[i]``. Points go
    to ``function`` in chunks of about ``chunk``.

    ``origin``, ``axes`` and ``shape`` are the grid as in :func:`grid_points` (the points are the voxel
    centres); ``function`` gets points in that length unit, and the averages are in the unit of its values.

    A normalized Gaussian of width 0.05 Bohr on 0.4 Bohr voxels, without and with a sharp point at its centre
    (sampling it at the voxel centres alone would give almost nothing: the nearest lies 7 widths away):

    >>> origin, axes = centred_grid(8, 0.4)
    >>> narrow = lambda p: torch.exp(-(p**2).sum(-1) / 0.005) / (0.005 * math.pi) ** 1.5
    >>> plain = voxel_averages(narrow, origin, axes, (8, 8, 8))
    >>> refined = voxel_averages(narrow, origin, axes, (8, 8, 8), sharp_points=torch.zeros(1, 3, dtype=torch.float64))
    >>> round(float(plain.sum() * 0.4**3), 3), round(float(refined.sum() * 0.4**3), 3)  # the integral, 1
    (0.957, 1.0)
    """
    centres = grid_points(origin, axes, shape).reshape(-1, 3)
    points_per_axis = torch.full((len(centres),), subsamples, dtype=torch.long, device=centres.device)
    if sharp_points is not None and len(sharp_points):
        half_diagonal = 0.5 * float(axes.sum(0).norm())
        offsets = _nearest_image(centres[:, None, :] - sharp_points.to(centres.dtype), _cell(axes, shape), periodic)
        distance = offsets.norm(dim=-1).min(1).values
        for radius, s in refinements:
            points_per_axis[distance <= radius + half_diagonal] = s
    out = torch.empty(len(centres), dtype=axes.dtype, device=axes.device)
    for s in points_per_axis.unique().tolist():
        index = (points_per_axis == s).nonzero().flatten()
        offsets = _subcell_offsets(axes, s)
        per_chunk = max(1, chunk // len(offsets))
        for start in range(0, len(index), per_chunk):
            voxels = index[start : start + per_chunk]
            values = function((centres[voxels, None, :] + offsets).reshape(-1, 3))
            out[voxels] = values.reshape(len(voxels), -1).mean(1).to(out.dtype)
    return out.reshape(*shape)


def _nearest_image(d: torch.Tensor, cell: torch.Tensor, periodic: bool) -> torch.Tensor:
    """Displacements ``d [..., 3]`` reduced to their nearest periodic image (fractional offsets into
    ``[-1/2, 1/2)``), or unchanged."""
    if not periodic:
        return d
    fractional = d @ torch.linalg.inv(cell)
    return (fractional - torch.round(fractional)) @ cell


def _check_atoms(numbers, positions, elements, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    numbers, positions = torch.as_tensor(numbers), torch.as_tensor(positions, dtype=dtype)
    if positions.shape != (len(numbers), 3):
        raise ValueError(f"positions: expected [{len(numbers)}, 3] for {len(numbers)} atomic numbers, got {tuple(positions.shape)}")
    unknown = sorted(set(numbers.tolist()) - set(elements))
    if unknown:
        raise ValueError(f"numbers: atomic numbers {unknown} have no channel in elements {list(elements)}")
    return numbers, positions


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

    Example (a water molecule in Bohr: two hydrogens and one oxygen):
        >>> origin, axes = centred_grid(24, 0.4)
        >>> positions = torch.tensor([[0.0, 0.0, 0.22], [0.0, 1.43, -0.89], [0.0, -1.43, -0.89]], dtype=torch.float64)
        >>> x = atom_splats(torch.tensor([8, 1, 1]), positions, [1, 8], origin, axes, (24, 24, 24))
        >>> x.shape, (x.sum((1, 2, 3)) * 0.4**3).round(decimals=6).tolist()  # atoms per channel
        (torch.Size([2, 24, 24, 24]), [2.0, 1.0])
    """
    numbers, positions = _check_atoms(numbers, positions, elements, axes.dtype)
    if not sigma > 0:
        raise ValueError(f"sigma: expected a positive width, got {sigma!r}")
    points = grid_points(origin, axes, shape)  # [N1, N2, N3, 3]
    cell = _cell(axes, shape)
    norm = (2 * math.pi * sigma**2) ** -1.5
    out = torch.zeros(len(elements), *shape, dtype=axes.dtype, device=axes.device)
    channel = {z: i for i, z in enumerate(elements)}
    for z, r in zip(numbers.tolist(), positions):
        d = _nearest_image(points - r, cell, periodic)
        out[channel[z]] += norm * torch.exp(-(d * d).sum(-1) / (2 * sigma**2))
    return out


_PROFILE_RADII = torch.cat([torch.zeros(1, dtype=torch.float64), torch.logspace(-5, math.log10(40.0), 4000, dtype=torch.float64)])


@functools.lru_cache(maxsize=None)
def atomic_density_profile(number: int, basis: str = "6-31g") -> tuple[torch.Tensor, torch.Tensor]:
    """Radii ``r`` (Bohr, 0 to 40) and the spherically averaged free-atom electron density ``rho(r)``
    (electrons / Bohr^3) of atomic number ``number`` in ``basis``: PySCF's atomic Hartree-Fock with
    fractional occupations averaged over each shell (the atoms of its ``init_guess_by_atom``, the
    superposition-of-atomic-densities guess). ``4 pi int r^2 rho dr`` is the electron count ``number``."""
    try:
        from pyscf import gto, scf
    except ImportError as error:  # optional extra
        raise ImportError("atomic densities need PySCF: pip install 'steerable3d[density]'") from error
    mol = gto.M(atom=[[int(number), (0.0, 0.0, 0.0)]], basis=basis, spin=int(number) % 2, verbose=0)
    dm = scf.hf.init_guess_by_atom(mol)
    points = torch.zeros(len(_PROFILE_RADII), 3, dtype=torch.float64)
    points[:, 0] = _PROFILE_RADII
    ao = mol.eval_gto("GTOval", points.numpy())
    rho = np.einsum("pi,ij,pj->p", ao, dm, ao)
    return _PROFILE_RADII.clone(), torch.from_numpy(np.maximum(rho, 0.0))


def _interpolate(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear ``fp(x)`` on increasing knots ``xp``, 0 beyond the last knot."""
    index = torch.searchsorted(xp, x.clamp(max=float(xp[-1])), right=True).clamp(1, len(xp) - 1)
    x0, x1, f0, f1 = xp[index - 1], xp[index], fp[index - 1], fp[index]
    value = f0 + (f1 - f0) * ((x - x0) / (x1 - x0))
    return torch.where(x > xp[-1], torch.zeros_like(value), value)


def atomic_superposition(
    numbers: torch.Tensor,
    positions: torch.Tensor,
    elements: Sequence[int],
    origin: torch.Tensor,
    axes: torch.Tensor,
    shape: Sequence[int],
    *,
    basis: str = "6-31g",
    subsamples: int = 4,
    periodic: bool = False,
) -> torch.Tensor:
    """Superposition of free-atom densities per element, ``[len(elements), N1, N2, N3]`` (electrons /
    Bohr^3): channel ``e`` sums the spherically averaged densities (:func:`atomic_density_profile`) of the
    atoms of atomic number ``elements[e]``, averaged over each voxel with ``subsamples^3`` points, so the sum
    over channels and voxels times the voxel volume is the electron count of the atoms the grid holds.
    Their sum over channels is the standard superposition-of-atomic-densities guess. Needs PySCF.

    Args:
        numbers: ``[n]`` atomic numbers; positions: ``[n, 3]`` in Bohr.
        elements: atomic numbers, one channel each; atoms of other elements raise a ``ValueError``.
        origin, axes, shape: the grid in Bohr (``axes`` rows are the step vectors).
        basis: the PySCF basis of the free atoms.
        subsamples: points per axis and voxel for the voxel averages.
        periodic: nearest images in the cell ``shape[i] * axes[i]`` (atoms far smaller than the cell).

    Example (a water molecule holds 10 electrons):
        >>> origin, axes = centred_grid(24, 0.5)  # 24^3 voxels of 0.5 Bohr
        >>> positions = torch.tensor([[0.0, 0.0, 0.22], [0.0, 1.43, -0.89], [0.0, -1.43, -0.89]], dtype=torch.float64)
        >>> rho = atomic_superposition(torch.tensor([8, 1, 1]), positions, [1, 8], origin, axes, (24, 24, 24))
        >>> rho.shape, round(float(rho.sum() * 0.5**3), 2)
        (torch.Size([2, 24, 24, 24]), 10.0)
    """
    numbers, positions = _check_atoms(numbers, positions, elements, axes.dtype)
    cell = _cell(axes, shape)
    out = torch.zeros(len(elements), *shape, dtype=axes.dtype, device=axes.device)
    for e, z in enumerate(elements):
        atoms = positions[numbers == z]
        if not len(atoms):
            continue
        radii, rho = (t.to(axes.dtype) for t in atomic_density_profile(int(z), basis))

        def density(points: torch.Tensor) -> torch.Tensor:
            return sum(_interpolate(_nearest_image(points - r, cell, periodic).norm(dim=-1), radii, rho) for r in atoms)

        sharp = atoms if z > 2 else None  # H and He have no core
        out[e] = voxel_averages(density, origin, axes, shape, subsamples, sharp_points=sharp, periodic=periodic)
    return out
