"""PySCF and ASE are optional extras; CI installs them, so these tests run there."""

import math

import pytest
import torch

from steerable3d import grid_symmetries, transform_field
from steerable3d.data.atoms import atomic_density_profile, atomic_superposition, centred_grid, voxel_averages
from steerable3d.data.density import ELEMENTS, dft_density, g2_molecules

pytest.importorskip("pyscf")
pytest.importorskip("ase")

WATER = (torch.tensor([8, 1, 1]), torch.tensor([[0.0, 0.0, 0.22], [0.0, 1.43, -0.89], [0.0, -1.43, -0.89]], dtype=torch.float64))


def test_g2_selection_is_closed_shell_hcnof_and_centred():
    molecules = g2_molecules()
    assert len(molecules) == 73 and "C6H6" in molecules and "CH3" not in molecules  # the methyl radical is open-shell
    for numbers, positions in molecules.values():
        assert set(numbers.tolist()) <= set(ELEMENTS) and int(numbers.sum()) % 2 == 0
        assert positions.mean(0).abs().max() < 1e-12


@pytest.mark.parametrize("number", [1, 6, 8, 9])
def test_free_atom_profile_holds_its_electrons(number):
    r, rho = atomic_density_profile(number)
    assert float(torch.trapezoid(4 * math.pi * r**2 * rho, r)) == pytest.approx(number, rel=1e-4)
    assert torch.all(rho >= 0) and rho[0] == rho.max()


def test_voxel_averages_hold_the_electrons_where_point_samples_miss_the_cores():
    origin, axes = centred_grid(24, 0.5)
    r, rho = atomic_density_profile(8)
    density = lambda p: torch.from_numpy(__import__("numpy").interp(p.norm(dim=-1).numpy(), r.numpy(), rho.numpy()))  # noqa: E731
    nucleus = torch.tensor([[0.1, -0.2, 0.05]], dtype=torch.float64)
    shifted = lambda p: density(p - nucleus)  # noqa: E731
    averages = voxel_averages(shifted, origin, axes, (24,) * 3, 4, sharp_points=nucleus)
    points = voxel_averages(shifted, origin, axes, (24,) * 3, 1, refinements=())
    assert float(averages.sum()) * 0.5**3 == pytest.approx(8.0, rel=5e-4)
    assert abs(float(points.sum()) * 0.5**3 - 8.0) > 0.4  # point samples: off by more than 5%


def test_superposition_counts_electrons_and_moves_with_the_molecule():
    numbers, positions = WATER
    origin, axes = centred_grid(16, 0.6)
    guess = atomic_superposition(numbers, positions, ELEMENTS, origin, axes, (16,) * 3)
    assert guess.shape == (5, 16, 16, 16)
    counts = guess.sum(dim=(1, 2, 3)) * 0.6**3
    assert counts[0] == pytest.approx(2.0, rel=2e-3) and counts[3] == pytest.approx(8.0, rel=2e-3)
    assert counts[1] == counts[2] == counts[4] == 0
    for g in grid_symmetries(True)[::5]:
        g = g.to(torch.float64)
        moved = atomic_superposition(numbers, positions @ g.T, ELEMENTS, origin, axes, (16,) * 3)
        assert torch.allclose(moved, transform_field(guess[None], "5x0e", g)[0], atol=1e-10)


def test_periodic_superposition_wraps_around_the_cell():
    origin, axes = torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64) * 0.5
    corner = torch.tensor([[0.1, 0.1, 0.1]], dtype=torch.float64)
    periodic = atomic_superposition(torch.tensor([6]), corner, [6], origin, axes, (20,) * 3, periodic=True)
    assert float(periodic.sum()) * 0.5**3 == pytest.approx(6.0, rel=2e-3)
    shifted = atomic_superposition(torch.tensor([6]), corner + 2.0, [6], origin, axes, (20,) * 3, periodic=True)
    assert torch.allclose(torch.roll(periodic, (4, 4, 4), (1, 2, 3)), shifted, atol=1e-10)


def test_dft_density_integrates_to_the_electrons_and_rotates_with_the_molecule():
    numbers, positions = WATER
    rho = dft_density(numbers, positions, 20, 0.6)
    assert float(rho.sum()) * 0.6**3 == pytest.approx(10.0, rel=2e-3)
    quarter_turn = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    rotated = dft_density(numbers, positions @ quarter_turn.T, 20, 0.6)
    # a new SCF of the rotated molecule: equal to the transformed grid up to the SCF convergence
    expected = transform_field(rho[None, None], "0e", quarter_turn)[0, 0]
    assert float((rotated - expected).abs().max() / rho.max()) < 1e-5
    assert float((rotated - rho).abs().max() / rho.max()) > 1e-2  # and the rotation did move it


def test_bad_molecules_are_named():
    with pytest.raises(ValueError, match="expected a closed-shell molecule .* got 9 electrons"):
        dft_density(torch.tensor([8, 1]), torch.zeros(2, 3, dtype=torch.float64), 8, 0.5)
    with pytest.raises(ValueError, match=r"atomic numbers \[16\] have no channel"):
        atomic_superposition(torch.tensor([16]), torch.zeros(1, 3), ELEMENTS, *centred_grid(4, 0.5), (4, 4, 4))
