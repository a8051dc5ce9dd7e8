import math

import pytest
import torch

from steerable3d.io import Cube, read_cube, write_cube
from steerable3d.io.cube import BOHR_PER_ANGSTROM

SMALL = """water, a hand-made 2 x 2 x 3 grid
 SCF Total Density
    3   -1.000000   -2.000000   -3.000000
    2    0.500000    0.000000    0.000000
    2    0.000000    0.600000    0.000000
    3    0.000000    0.000000    0.700000
    8    8.000000    0.000000    0.000000    0.000000
    1    1.000000    1.430000    1.110000    0.000000
    1    1.000000   -1.430000    1.110000    0.000000
  1.00000E+00  2.00000E+00  3.00000E+00
  4.00000E+00  5.00000E+00  6.00000E+00
  7.00000E+00  8.00000E+00  9.00000E+00
  1.00000E+01  1.10000E+01  1.20000E+01
"""


def test_reads_the_header_atoms_and_values_with_z_fastest(tmp_path):
    path = tmp_path / "small.cube"
    path.write_text(SMALL)
    cube = read_cube(path)
    assert cube.shape == (2, 2, 3) and cube.data.dtype == torch.float64
    assert cube.data[0, 0].tolist() == [1.0, 2.0, 3.0] and cube.data[1, 1, 2] == 12.0  # x, y outer; z inner
    assert cube.origin.tolist() == [-1.0, -2.0, -3.0] and cube.spacing == (0.5, 0.6, 0.7)
    assert cube.numbers.tolist() == [8, 1, 1] and cube.positions[1].tolist() == [1.43, 1.11, 0.0]
    assert cube.comments[1].strip() == "SCF Total Density"
    assert torch.allclose(cube.points()[1, 1, 2], torch.tensor([-0.5, -1.4, -1.6], dtype=torch.float64))
    assert math.isclose(cube.integral(), 78 * 0.5 * 0.6 * 0.7)


def test_round_trip_keeps_geometry_and_five_significant_digits(tmp_path):
    torch.manual_seed(0)
    cube = Cube(
        data=torch.rand(5, 4, 7, dtype=torch.float64) * 10 ** torch.randint(-6, 3, (5, 4, 7)).double(),
        origin=torch.tensor([-4.0, -3.5, 2.25], dtype=torch.float64),
        axes=torch.tensor([[0.2, 0.0, 0.0], [0.0, 0.25, 0.0], [0.01, 0.0, 0.3]], dtype=torch.float64),
        numbers=torch.tensor([6, 7], dtype=torch.long),
        positions=torch.tensor([[0.0, 0.1, 0.2], [1.2, -0.4, 0.5]], dtype=torch.float64),
        charges=torch.tensor([6.0, 7.0], dtype=torch.float64),
        comments=("made by a test", "density"),
    )
    path = write_cube(tmp_path / "out.cube", cube)
    back = read_cube(path)
    assert back.shape == cube.shape and back.comments == cube.comments
    assert torch.allclose(back.data, cube.data, rtol=1e-5, atol=0)
    for name in ("origin", "axes", "positions", "charges"):
        assert torch.allclose(getattr(back, name), getattr(cube, name), atol=1e-6), name
    assert back.numbers.equal(cube.numbers)
    assert not list(tmp_path.glob(".out.cube.tmp-*"))  # the temporary file is gone


def test_angstrom_axes_are_converted_to_bohr(tmp_path):
    text = SMALL.splitlines()
    text[3:6] = ["   -2    0.500000    0.000000    0.000000", "   -2    0.000000    0.600000    0.000000",
                 "   -3    0.000000    0.000000    0.700000"]
    path = tmp_path / "angstrom.cube"
    path.write_text("\n".join(text) + "\n")
    cube = read_cube(path)
    assert cube.shape == (2, 2, 3)
    assert math.isclose(cube.spacing[0], 0.5 * BOHR_PER_ANGSTROM) and math.isclose(float(cube.origin[2]), -3 * BOHR_PER_ANGSTROM)


def test_orbital_files_round_trip(tmp_path):
    torch.manual_seed(1)
    cube = Cube(torch.randn(2, 3, 3, 4, dtype=torch.float64), torch.zeros(3, dtype=torch.float64),
                torch.eye(3, dtype=torch.float64) * 0.3, torch.tensor([1]), torch.zeros(1, 3, dtype=torch.float64),
                orbitals=[5, 6])
    back = read_cube(write_cube(tmp_path / "mo.cube", cube))
    assert back.orbitals == [5, 6] and torch.allclose(back.data, cube.data, rtol=1e-5, atol=1e-12)


def test_bad_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.cube"):
        read_cube(tmp_path / "missing.cube")
    truncated = tmp_path / "truncated.cube"
    truncated.write_text("\n".join(SMALL.splitlines()[:-1]) + "\n")
    with pytest.raises(ValueError, match=r"truncated.cube: not a valid cube file \(expected 1 x 2 x 2 x 3 values, got 9\)"):
        read_cube(truncated)
    garbage = tmp_path / "garbage.cube"
    garbage.write_text("a\nb\nthree atoms\n1 2 3\n4 5 6\n7 8 9\n")
    with pytest.raises(ValueError, match="garbage.cube: not a valid cube file"):
        read_cube(garbage)
