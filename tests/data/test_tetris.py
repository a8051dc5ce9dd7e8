"""steerable3d.data: the Tetris shapes and their voxelization."""

import itertools

import numpy as np
import pytest
import torch

from steerable3d import grid_symmetries, random_rotations
from steerable3d.data import TETRIS_CHIRAL_PAIR, tetris_shapes, tetris_volumes


def canonical(cubes: np.ndarray) -> frozenset:
    """The set of cube positions up to translation."""
    cubes = np.asarray(cubes)
    return frozenset(map(tuple, cubes - cubes.min(0)))


def images(cubes, matrices):
    return {canonical(np.asarray(cubes) @ m.numpy().astype(int).T) for m in matrices}


def test_shapes_order_and_congruence():
    shapes = tetris_shapes()
    assert list(shapes) == ["chiral_1", "chiral_2", "square", "line", "corner", "L", "T", "zigzag"]
    for cubes in shapes.values():
        assert cubes.shape == (4, 3) and len(canonical(cubes)) == 4
        # face-connected: every cube touches another
        for c in cubes:
            assert any(int((c - d).abs().sum()) == 1 for d in cubes)
    rotations, all48 = grid_symmetries(parity=False), grid_symmetries()
    orbits = {name: images(c, rotations) for name, c in shapes.items()}
    for a, b in itertools.combinations(shapes, 2):  # no rotation maps one shape onto another
        assert not orbits[a] & orbits[b], (a, b)
    a, b = (list(shapes)[i] for i in TETRIS_CHIRAL_PAIR)
    mirror = torch.diag(torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))
    assert images(shapes[a], [mirror]) <= orbits[b]  # mirror images of each other
    for name, cubes in shapes.items():  # every other shape is achiral
        if name not in (a, b):
            assert images(cubes, all48) == orbits[name]


def test_volumes_voxelize_every_cube():
    x, y = tetris_volumes(scale=3, pad=2)
    assert x.shape == (8, 1, 16, 16, 16) and x.dtype == torch.float32
    assert y.tolist() == list(range(8))
    assert set(x.unique().tolist()) == {0.0, 1.0}
    for label, cubes in enumerate(tetris_shapes().values()):
        expected = np.zeros((16, 16, 16))
        for i, j, k in cubes.tolist():
            expected[2 + 3 * i : 5 + 3 * i, 2 + 3 * j : 5 + 3 * j, 2 + 3 * k : 5 + 3 * k] = 1
        assert np.array_equal(x[label, 0].numpy(), expected)


def test_grid_rotation_is_exact_and_matches_numpy():
    x, _ = tetris_volumes(scale=2, pad=1, dtype=torch.float64)
    quarter_turn_z = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=torch.float64)  # x -> y
    turned, _ = tetris_volumes(scale=2, pad=1, rotation=quarter_turn_z, dtype=torch.float64)
    # x'(p) = x(R^-1 p): numpy's rot90 over axes (0, 1) turns the x axis into the y axis
    assert np.array_equal(turned[:, 0].numpy(), np.rot90(x[:, 0].numpy(), 1, axes=(1, 2)))


def test_continuous_rotation_keeps_mass_and_moves_the_centroid():
    scale, pad = 4, 6
    x, _ = tetris_volumes(scale, pad, dtype=torch.float64)
    rotations = random_rotations(8, seed=3)
    rotated, _ = tetris_volumes(scale, pad, rotations, order=1, dtype=torch.float64)
    n = x.shape[-1]
    grid = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=torch.float64)] * 3, indexing="ij"), -1) - (n - 1) / 2
    for i in range(8):
        mass, mass_r = x[i, 0].sum(), rotated[i, 0].sum()
        assert abs(float(mass_r / mass) - 1) < 1e-2  # linear interpolation conserves mass only roughly
        centroid = (x[i, 0, ..., None] * grid).sum((0, 1, 2)) / mass
        centroid_r = (rotated[i, 0, ..., None] * grid).sum((0, 1, 2)) / mass_r
        assert torch.allclose(centroid_r, rotations[i] @ centroid, atol=0.05)


def test_smoothing_blurs_and_keeps_mass():
    x, _ = tetris_volumes(scale=2, pad=3, smoothing=1.0, dtype=torch.float64)
    assert 0 < float(x.max()) < 1
    assert torch.allclose(x.sum((1, 2, 3, 4)), torch.full((8,), 32.0, dtype=torch.float64), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"scale": 0}, "scale"), ({"pad": -1}, "pad"), ({"smoothing": -1.0}, "smoothing"),
     ({"rotation": torch.eye(4)}, "rotation"), ({"rotation": torch.ones(3, 3)}, "orthogonal")],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tetris_volumes(**{"scale": 1, "pad": 0, **kwargs})
