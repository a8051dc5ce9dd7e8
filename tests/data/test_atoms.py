import pytest
import torch

from steerable3d import grid_symmetries, transform_field
from steerable3d.data.atoms import atom_splats, centred_grid

H, C, O = 1, 6, 8


def test_each_atom_integrates_to_one_in_its_elements_channel():
    origin, axes = centred_grid(32, 0.25)
    numbers = torch.tensor([O, H, H])
    positions = torch.tensor([[0.0, 0.0, 0.1], [1.4, 1.1, 0.0], [-1.4, 1.1, 0.0]], dtype=torch.float64)
    splats = atom_splats(numbers, positions, [H, C, O], origin, axes, (32, 32, 32), sigma=0.5)
    volume = 0.25**3
    counts = (splats.sum(dim=(1, 2, 3)) * volume).tolist()
    assert counts == pytest.approx([2.0, 0.0, 1.0], abs=1e-6)


def test_periodic_images_wrap_around_the_cell():
    origin, axes = torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64) * 0.25
    corner = torch.tensor([[0.05, 0.05, 0.05]], dtype=torch.float64)
    periodic = atom_splats(torch.tensor([C]), corner, [C], origin, axes, (16, 16, 16), sigma=0.4, periodic=True)
    open_box = atom_splats(torch.tensor([C]), corner, [C], origin, axes, (16, 16, 16), sigma=0.4)
    volume = 0.25**3
    assert float(periodic.sum()) * volume == pytest.approx(1.0, abs=1e-5)  # nearest images: tails beyond 5 sigma
    assert float(open_box.sum()) * volume < 0.4  # a corner atom lies mostly outside the open box (about 0.3 inside)
    shifted = atom_splats(torch.tensor([C]), corner + 4 * 0.25, [C], origin, axes, (16, 16, 16), sigma=0.4, periodic=True)
    assert torch.allclose(torch.roll(periodic, shifts=(4, 4, 4), dims=(1, 2, 3)), shifted, atol=1e-12)


def test_rotating_the_molecule_by_a_grid_symmetry_transforms_the_splats_exactly():
    torch.manual_seed(0)
    origin, axes = centred_grid(15, 0.3)
    numbers = torch.tensor([C, O, H, H])
    positions = torch.randn(4, 3, dtype=torch.float64)
    splats = atom_splats(numbers, positions, [H, C, O], origin, axes, (15, 15, 15))
    for g in grid_symmetries(True)[::7]:
        g = g.to(torch.float64)
        moved = atom_splats(numbers, positions @ g.T, [H, C, O], origin, axes, (15, 15, 15))
        assert torch.allclose(moved, transform_field(splats[None], "3x0e", g)[0], atol=1e-12)


def test_bad_input_is_named():
    origin, axes = centred_grid(4, 1.0)
    with pytest.raises(ValueError, match=r"atomic numbers \[7\] have no channel"):
        atom_splats(torch.tensor([7]), torch.zeros(1, 3, dtype=torch.float64), [H, C], origin, axes, (4, 4, 4))
    with pytest.raises(ValueError, match=r"expected \[2, 3\]"):
        atom_splats(torch.tensor([1, 1]), torch.zeros(3, dtype=torch.float64), [H], origin, axes, (4, 4, 4))
