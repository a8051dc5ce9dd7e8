import pytest
import torch
from e3nn import o3

from steerable3d import grid_symmetries, irreps_D, random_rotations, rotate_field, transform_field

IRREPS = "2x0e + 0o + 1o + 1e + 2e + 2o + 3o"


def test_grid_group_structure():
    g = grid_symmetries()
    assert g.shape == (48, 3, 3) and g.dtype == torch.float64
    assert torch.equal(g[0], torch.eye(3, dtype=torch.float64))
    det = torch.det(g)
    assert bool((det[:24] > 0).all()) and bool((det[24:] < 0).all())
    assert torch.equal(grid_symmetries(parity=False), g[:24])
    # closed under products, all distinct
    keys = {tuple(m.flatten().tolist()) for m in g}
    assert len(keys) == 48
    for a in g[::7]:
        for b in g[::5]:
            assert tuple((a @ b).flatten().tolist()) in keys


def test_irreps_D_matches_e3nn_in_float64(float64):
    for m in list(grid_symmetries()) + list(random_rotations(4, seed=3, parity=True)):
        ours = irreps_D(IRREPS, m)
        theirs = o3.Irreps(IRREPS).D_from_matrix(m)
        assert torch.allclose(ours, theirs, atol=1e-12)


def test_irreps_D_is_a_representation_for_any_default_dtype():
    a, b = random_rotations(2, seed=1, parity=True)
    lhs = irreps_D(IRREPS, a @ b)
    assert torch.allclose(lhs, irreps_D(IRREPS, a) @ irreps_D(IRREPS, b), atol=1e-13)
    assert torch.allclose(irreps_D(IRREPS, a) @ irreps_D(IRREPS, a).T, torch.eye(lhs.shape[0], dtype=torch.float64), atol=1e-13)


@pytest.mark.parametrize("origin", ["centre", "voxel0"])
def test_transform_field_is_a_group_action(origin, float64):
    x = torch.randn(2, o3.Irreps(IRREPS).dim, 5, 5, 5)
    g = grid_symmetries()
    for i, j in [(3, 17), (30, 41), (25, 25)]:
        once = transform_field(x, IRREPS, g[i] @ g[j], origin)
        twice = transform_field(transform_field(x, IRREPS, g[j], origin), IRREPS, g[i], origin)
        assert torch.allclose(once, twice, atol=1e-12)


def test_transform_field_moves_points_as_documented():
    # a delta at position p (from the centre) goes to M p; a vector value v becomes M v
    x = torch.zeros(1, 3, 5, 5, 5)
    x[0, :, 3, 2, 4] = torch.tensor([1.0, 2.0, 3.0])  # p = (1, 0, 2)
    m = torch.tensor([[0.0, -1, 0], [0, 0, 1], [1, 0, 0]], dtype=torch.float64)  # M p = (0, 2, 1)
    y = transform_field(x, "1o", m)
    assert torch.allclose(y[0, :, 2, 4, 3], torch.tensor([-2.0, 3.0, 1.0]))
    assert int((y != 0).sum()) == 3
    # voxel0 origin: index i -> -i mod N
    x = torch.zeros(1, 1, 4, 4, 4)
    x[0, 0, 1, 0, 0] = 1
    y = transform_field(x, "0e", torch.diag(torch.tensor([-1.0, 1, 1], dtype=torch.float64)), origin="voxel0")
    assert y[0, 0, 3, 0, 0] == 1


def test_transform_field_rejects_bad_input():
    x = torch.randn(1, 1, 4, 4, 6)
    with pytest.raises(ValueError, match="different sizes"):
        transform_field(x, "0e", torch.tensor([[1.0, 0, 0], [0, 0, 1], [0, 1, 0]]))
    with pytest.raises(ValueError, match="signed permutation"):
        transform_field(torch.randn(1, 1, 4, 4, 4), "0e", random_rotations(1)[0])
    with pytest.raises(ValueError, match="channels"):
        transform_field(torch.randn(1, 2, 4, 4, 4), "1o", torch.eye(3))
    with pytest.raises(ValueError, match="irreps"):
        transform_field(x, "3x1q", torch.eye(3))


def test_rotate_field_agrees_with_exact_grid_symmetries():
    x = torch.randn(2, 4, 7, 7, 7, dtype=torch.float64)
    for m in grid_symmetries()[[1, 9, 30]]:
        assert torch.allclose(rotate_field(x, "0e + 1e", m, order=1), transform_field(x, "0e + 1e", m), atol=1e-10)


def test_rotate_field_is_spacing_aware():
    # on a grid with spacing (1, 1, 2), a 90 degree turn about x swaps y and z physically
    x = torch.zeros(1, 1, 9, 9, 9, dtype=torch.float64)
    x[0, 0, 4, 6, 4] = 1  # y = +2 physical units
    r = torch.tensor([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]], dtype=torch.float64)  # y -> z
    y = rotate_field(x, "0e", r, spacing=(1, 1, 2), order=1)
    assert y[0, 0, 4, 4, 5] == pytest.approx(1.0)  # z = +2 physical = 1 voxel
