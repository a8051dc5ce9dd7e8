"""Electron densities made offline with PySCF, for molecules whose geometries ASE ships (its G2 collection).

Everything is in atomic units: lengths in Bohr, densities in electrons / Bohr^3. Grids are centred cubes
(grid point ``i`` at ``(i - (N - 1) / 2) * spacing`` on every axis) and molecules are placed with the mean
of their atom positions at the centre, so a grid symmetry of the molecule about the centre is the same
symmetry of its density grid.

Targets are voxel averages of the Kohn-Sham density (:func:`~steerable3d.data.atoms.voxel_averages`, more
points near heavy nuclei), so a grid integrates to the electron count; the standard crude guess to improve
on is the superposition of free-atom densities (:func:`~steerable3d.data.atoms.atomic_superposition`).
A rotated copy is the density of the rotated molecule (a new SCF), never a resampled grid.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..io.cube import BOHR_PER_ANGSTROM
from .atoms import centred_grid, voxel_averages

__all__ = ["ELEMENTS", "g2_molecules", "dft_density"]

ELEMENTS = (1, 6, 7, 8, 9)  # H, C, N, O, F


def g2_molecules(elements: Sequence[int] = ELEMENTS) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The closed-shell molecules of ASE's G2 collection made only of ``elements`` (73 for H, C, N, O, F),
    by name in ASE's order: ``name -> (numbers [n], positions [n, 3])``, positions in Bohr with their mean
    at the origin. Needs ASE.

    >>> molecules = g2_molecules()
    >>> len(molecules), molecules["H2O"][0].tolist()
    (73, [8, 1, 1])
    """
    try:
        from ase.collections import g2
    except ImportError as error:  # optional extra
        raise ImportError("the G2 geometries need ASE: pip install 'steerable3d[density]'") from error
    molecules = {}
    for name in g2.names:
        atoms = g2[name]
        numbers = atoms.numbers
        if not set(numbers.tolist()) <= set(elements):
            continue
        if atoms.get_initial_magnetic_moments().any() or int(numbers.sum()) % 2:
            continue  # open shell: a restricted Kohn-Sham density would be the wrong state
        positions = torch.from_numpy(atoms.positions * BOHR_PER_ANGSTROM)
        molecules[name] = (torch.from_numpy(numbers.astype(np.int64)), positions - positions.mean(0))
    return molecules


def dft_density(
    numbers: torch.Tensor,
    positions: torch.Tensor,
    size: int,
    spacing: float,
    *,
    basis: str = "6-31g",
    xc: str = "pbe",
    subsamples: int = 4,
) -> torch.Tensor:
    """Voxel averages ``[size, size, size]`` (electrons / Bohr^3) of the restricted Kohn-Sham density of a
    closed-shell molecule on the centred grid of :func:`~steerable3d.data.atoms.centred_grid`. Needs PySCF.

    Args:
        numbers: ``[n]`` atomic numbers; positions: ``[n, 3]`` in Bohr (relative to the grid centre).
        size, spacing: the grid (points per axis, Bohr).
        basis, xc: PySCF basis and exchange-correlation functional.
        subsamples: points per axis and voxel away from heavy nuclei (see
            :func:`~steerable3d.data.atoms.voxel_averages`).

    Example (H2 along z in a minimal basis: 2 electrons, and the molecule's mirror symmetry z -> -z about
    the grid centre is a symmetry of the grid):
        >>> h2 = torch.tensor([[0.0, 0.0, -0.7], [0.0, 0.0, 0.7]], dtype=torch.float64)
        >>> rho = dft_density(torch.tensor([1, 1]), h2, size=16, spacing=0.6, basis="sto-3g")
        >>> rho.shape, round(float(rho.sum() * 0.6**3), 3), torch.allclose(rho, rho.flip(2))
        (torch.Size([16, 16, 16]), 2.0, True)
    """
    try:
        from pyscf import dft, gto
    except ImportError as error:  # optional extra
        raise ImportError("DFT densities need PySCF: pip install 'steerable3d[density]'") from error
    numbers, positions = torch.as_tensor(numbers), torch.as_tensor(positions, dtype=torch.float64)
    if positions.shape != (len(numbers), 3):
        raise ValueError(f"positions: expected [{len(numbers)}, 3] for {len(numbers)} atomic numbers, got {tuple(positions.shape)}")
    if int(numbers.sum()) % 2:
        raise ValueError(f"numbers: expected a closed-shell molecule (an even electron count), got {int(numbers.sum())} electrons")
    mol = gto.M(
        atom=[[int(z), tuple(r)] for z, r in zip(numbers.tolist(), positions.tolist())], unit="Bohr", basis=basis, verbose=0
    )
    solver = dft.RKS(mol)
    solver.xc = xc
    solver.conv_tol = 1e-9
    solver.kernel()
    if not solver.converged:
        raise RuntimeError(f"the SCF did not converge for the molecule with atomic numbers {numbers.tolist()}")
    dm = solver.make_rdm1()

    def density(points: torch.Tensor) -> torch.Tensor:
        ao = mol.eval_gto("GTOval", points.numpy())
        return torch.from_numpy(dft.numint.eval_rho(mol, ao, dm))

    origin, axes = centred_grid(size, spacing)
    return voxel_averages(density, origin, axes, (size,) * 3, subsamples, sharp_points=positions[numbers > 2])
