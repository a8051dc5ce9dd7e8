"""Gaussian cube files (electron densities, orbitals): a scalar grid with its geometry and the atoms.

Layout of the format: two comment lines; the atom count and the origin; for each of the three grid axes
the number of points and the step vector; one line per atom (atomic number, charge, position); then the
values with the last axis fastest, six per line. Lengths are in Bohr; a negative point count marks an axis
given in Angstrom, which :func:`read_cube` converts to Bohr. A negative atom count marks orbital files,
whose extra line lists the orbitals stored per grid point.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .._files import atomic_path
from ..data.atoms import grid_points

__all__ = ["Cube", "read_cube", "write_cube", "BOHR_PER_ANGSTROM"]

BOHR_PER_ANGSTROM = 1.0 / 0.529177210903  # CODATA 2018


@dataclass
class Cube:
    """A cube file's content, in Bohr.

    Attributes:
        data: ``[N1, N2, N3]`` float64 values (``[K, N1, N2, N3]`` for ``K`` orbitals).
        origin: ``(3,)`` position of grid point ``(0, 0, 0)``.
        axes: ``[3, 3]`` step vectors, row ``i`` the step along grid axis ``i`` (diagonal for an
            axis-aligned grid: the voxel size per axis).
        numbers: ``[n]`` atomic numbers (int64).
        positions: ``[n, 3]`` atom positions.
        charges: ``[n]`` the per-atom charge column (often the nuclear charge or 0).
        comments: the two comment lines.
        orbitals: orbital indices for orbital files, else empty.

    Example (the hydrogen 1s density ``exp(-2 r) / pi``, electrons / Bohr^3, integrates to one electron):
        >>> from steerable3d.data.atoms import centred_grid
        >>> origin, axes = centred_grid(24, 0.4)  # 24^3 points 0.4 Bohr apart, centred on the nucleus
        >>> atom = torch.tensor([1]), torch.zeros(1, 3, dtype=torch.float64)
        >>> cube = Cube(torch.zeros(24, 24, 24, dtype=torch.float64), origin, axes, *atom)
        >>> cube.data = torch.exp(-2 * cube.points().norm(dim=-1)) / torch.pi
        >>> cube.shape, cube.spacing, round(cube.integral(), 2)
        ((24, 24, 24), (0.4, 0.4, 0.4), 1.0)
    """

    data: torch.Tensor
    origin: torch.Tensor
    axes: torch.Tensor
    numbers: torch.Tensor
    positions: torch.Tensor
    charges: torch.Tensor | None = None
    comments: tuple[str, str] = ("", "")
    orbitals: list[int] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.data.shape[-3:])

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Step length per grid axis (Bohr): the norms of the rows of ``axes``."""
        return tuple(float(v) for v in self.axes.norm(dim=1))

    def points(self) -> torch.Tensor:
        """Positions ``[N1, N2, N3, 3]`` of the grid points."""
        return grid_points(self.origin, self.axes, self.shape)

    def integral(self) -> float:
        """Sum of the values times the voxel volume ``|det(axes)|`` (the electron count of a density)."""
        return float(self.data.sum() * torch.linalg.det(self.axes).abs())


def _fail(path, message: str) -> ValueError:
    return ValueError(f"{path}: not a valid cube file ({message})")


def read_cube(path: str | os.PathLike) -> Cube:
    """Read a Gaussian cube file into a :class:`Cube` (lengths converted to Bohr where the file uses
    Angstrom); values come back to the 6 significant digits :func:`write_cube` keeps.

    >>> import tempfile
    >>> cube = Cube(torch.rand(3, 4, 5, dtype=torch.float64), torch.zeros(3), 0.2 * torch.eye(3),
    ...             numbers=torch.tensor([8]), positions=torch.zeros(1, 3))  # an oxygen atom at the origin
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     back = read_cube(write_cube(f"{tmp}/rho.cube", cube))
    >>> back.shape, back.spacing, back.numbers.tolist(), torch.allclose(back.data, cube.data, rtol=1e-5, atol=0)
    ((3, 4, 5), (0.2, 0.2, 0.2), [8], True)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    lines = path.read_text().splitlines()
    if len(lines) < 6:
        raise _fail(path, f"{len(lines)} lines, a header needs 6")
    try:
        head = lines[2].split()
        natoms, origin = int(head[0]), [float(v) for v in head[1:4]]
        counts, steps = [], []
        for line in lines[3:6]:
            parts = line.split()
            counts.append(int(parts[0]))
            steps.append([float(v) for v in parts[1:4]])
        atoms = [line.split() for line in lines[6 : 6 + abs(natoms)]]
        numbers = [int(a[0]) for a in atoms]
        charges = [float(a[1]) for a in atoms]
        positions = [[float(v) for v in a[2:5]] for a in atoms]
        body = 6 + abs(natoms)
        orbitals: list[int] = []
        values_text = lines[body:]
        if natoms < 0:  # orbital file: "K i1 i2 ... iK" (may wrap)
            tokens = " ".join(values_text).split()
            k = int(tokens[0])
            orbitals = [int(t) for t in tokens[1 : 1 + k]]
            values = np.array(tokens[1 + k :], dtype=np.float64)
        else:
            values = np.array(" ".join(values_text).split(), dtype=np.float64)
    except (IndexError, ValueError) as error:
        raise _fail(path, str(error)) from None
    if len(atoms) != abs(natoms) or any(len(a) < 5 for a in atoms):
        raise _fail(path, f"expected {abs(natoms)} atom lines of 5 numbers")
    if any(n == 0 for n in counts):
        raise _fail(path, f"grid point counts {counts}")
    scale = [BOHR_PER_ANGSTROM if n < 0 else 1.0 for n in counts]
    if len(set(scale)) > 1:
        raise _fail(path, "axes mixing Bohr and Angstrom")
    unit = scale[0]
    shape = [abs(n) for n in counts]
    per_point = max(len(orbitals), 1)
    if values.size != per_point * int(np.prod(shape)):
        raise _fail(path, f"expected {per_point} x {' x '.join(map(str, shape))} values, got {values.size}")
    data = torch.from_numpy(values.reshape(*shape, per_point))
    data = data.permute(3, 0, 1, 2).contiguous() if orbitals else data[..., 0].contiguous()
    return Cube(
        data=data,
        origin=torch.tensor(origin, dtype=torch.float64) * unit,
        axes=torch.tensor(steps, dtype=torch.float64) * unit,
        numbers=torch.tensor(numbers, dtype=torch.long),
        positions=torch.tensor(positions, dtype=torch.float64).reshape(-1, 3) * unit,
        charges=torch.tensor(charges, dtype=torch.float64),
        comments=(lines[0], lines[1]),
        orbitals=orbitals,
    )


def write_cube(path: str | os.PathLike, cube: Cube) -> Path:
    """Write ``cube`` (Bohr) atomically: a temporary file next to ``path``, then renamed; returns the path.
    Values are written with 5 digits after the point (``%13.5E``), as Gaussian does, the last axis fastest
    and six to a line.

    >>> import tempfile
    >>> cube = Cube(torch.arange(8.0).reshape(1, 1, 8), torch.zeros(3), torch.eye(3) * 0.5, torch.tensor([1]),
    ...             torch.zeros(1, 3), comments=("hydrogen", "8 values along z"))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     print(write_cube(f"{tmp}/h.cube", cube).read_text())
    hydrogen
    8 values along z
        1    0.000000    0.000000    0.000000
        1    0.500000    0.000000    0.000000
        1    0.000000    0.500000    0.000000
        8    0.000000    0.000000    0.500000
        1    0.000000    0.000000    0.000000    0.000000
      0.00000E+00  1.00000E+00  2.00000E+00  3.00000E+00  4.00000E+00  5.00000E+00
      6.00000E+00  7.00000E+00
    <BLANKLINE>
    """
    path = Path(path)
    data = cube.data.detach().to(torch.float64).cpu()
    if data.dim() not in (3, 4) or (data.dim() == 4) != bool(cube.orbitals):
        raise ValueError(f"cube.data: expected [N1, N2, N3] (or [K, N1, N2, N3] with orbitals), got {tuple(data.shape)}")
    shape = data.shape[-3:]
    n = len(cube.numbers)
    charges = cube.charges if cube.charges is not None else torch.zeros(n, dtype=torch.float64)
    lines = [cube.comments[0].replace("\n", " "), cube.comments[1].replace("\n", " ")]
    count = -n if cube.orbitals else n
    lines.append(f"{count:5d}" + "".join(f"{float(v):12.6f}" for v in cube.origin))
    for size, step in zip(shape, cube.axes):
        lines.append(f"{size:5d}" + "".join(f"{float(v):12.6f}" for v in step))
    for z, q, r in zip(cube.numbers.tolist(), charges.tolist(), cube.positions.tolist()):
        lines.append(f"{z:5d}{q:12.6f}" + "".join(f"{v:12.6f}" for v in r))
    if cube.orbitals:
        lines.append(f"{len(cube.orbitals):5d}" + "".join(f"{i:5d}" for i in cube.orbitals))
        flat = data.permute(1, 2, 3, 0).reshape(-1, data.shape[0]).numpy()
    else:
        flat = data.reshape(-1, 1).numpy()
    # each (x, y) row of z values (times the orbitals) wraps at six values per line
    row = shape[2] * flat.shape[1]
    rows = flat.reshape(-1, row)
    for values in rows:
        for start in range(0, row, 6):
            lines.append("".join(f"{v:13.5E}" for v in values[start : start + 6]))
    with atomic_path(path) as temporary:
        temporary.write_text("\n".join(lines) + "\n")
    return path
