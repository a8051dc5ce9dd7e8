import pickle

import pytest
import torch

from steerable3d import grid_symmetries, transform_field
from steerable3d.nn import BatchNorm3d, Concatenate, Gate, Residual, Sequential, SteerableConv3d
from steerable3d.testing import assert_equivariant

def block(irreps_in):
    gate = Gate("3x0e + 0o", [torch.relu, torch.tanh], "2x0e", [torch.sigmoid], "1o + 1e")
    return Sequential(SteerableConv3d(irreps_in, gate.irreps_in, 3), gate)


def test_sequential_checks_irreps_and_is_exact(float64):
    net = Sequential(block("0e + 0o + 1o"), BatchNorm3d("3x0e + 0o + 1o + 1e"))
    assert str(net.irreps_in) == "1x0e+1x0o+1x1o" and str(net.irreps_out) == "3x0e+1x0o+1x1o+1x1e"
    x = torch.randn(2, 5, 6, 6, 6)
    x[1] = 2 * x[1] + 1
    assert_equivariant(net, x, net.irreps_in, net.irreps_out, tolerance=1e-10)
    with pytest.raises(ValueError, match=r"module 1 \(SteerableConv3d\) expects irreps_in 1x0e.*gives irreps_out"):
        Sequential(SteerableConv3d("0e", "1o", 3), SteerableConv3d("0e", "0e", 3))
    with pytest.raises(ValueError, match="no irreps_in"):
        Sequential(SteerableConv3d("0e", "0e", 3), torch.nn.ReLU())


def test_residual_identity_and_projection(float64):
    same = Residual(SteerableConv3d("2x0e + 1o", "2x0e + 1o", 3))
    assert same.projection is None
    x = torch.randn(2, 5, 5, 5, 5)
    assert torch.allclose(same(x), same.module(x) + x)
    projected = Residual(SteerableConv3d("2x0e + 1o", "0e + 2x1o", 3))
    assert isinstance(projected.projection, SteerableConv3d) and projected.projection.kernel_size == 1
    assert_equivariant(projected, x, "2x0e + 1o", "0e + 2x1o", tolerance=1e-10)
    # a 1x1 projection cannot make a vector from a scalar: the skip carries the scalar and leaves the vector zero
    widened = Residual(SteerableConv3d("0e", "0e + 1o", 3))
    with torch.no_grad():
        widened.projection.weight.fill_(2.0)
    s = torch.randn(2, 1, 5, 5, 5)
    skip = widened(s) - widened.module(s)
    assert torch.equal(skip[:, 1:], torch.zeros_like(skip[:, 1:])) and torch.allclose(skip[:, :1], 2 * s)
    assert_equivariant(widened, s, "0e", "0e + 1o", tolerance=1e-10)


def test_concatenate_sorted_is_exact_and_pickles(float64):
    cat = Concatenate("2x0e + 1o", "0o + 0e + 2e", sort=True)
    assert str(cat.irreps_out) == "1x0o+3x0e+1x1o+1x2e"  # e3nn's order: 0o before 0e
    a, b = torch.randn(2, 5, 4, 4, 4), torch.randn(2, 7, 4, 4, 4)
    y = cat(a, b)
    assert torch.equal(y[:, 0], b[:, 0]) and torch.equal(y[:, 1:3], a[:, :2]) and torch.equal(y[:, 3], b[:, 1])
    assert torch.equal(y[:, 4:7], a[:, 2:5]) and torch.equal(y[:, 7:], b[:, 2:])
    for m in grid_symmetries()[::7]:
        lhs = cat(transform_field(a, cat.irreps_in[0], m), transform_field(b, cat.irreps_in[1], m))
        assert torch.allclose(lhs, transform_field(y, cat.irreps_out, m), atol=1e-12)
    assert torch.equal(pickle.loads(pickle.dumps(cat))(a, b), y)
    with pytest.raises(ValueError, match="expected 2 inputs"):
        cat(a)
