import pickle

import pytest
import torch

from steerable3d.nn import Gate, NormActivation
from steerable3d.testing import assert_equivariant


def varied_batch(dim, n):
    x = torch.randn(2, dim, n, n, n)
    x[1] = 3.0 * x[1] + 0.5
    return x


def test_gate_layout_and_parity_follow_e3nn():
    from e3nn import nn as e3nn_nn

    args = ("3x0e + 2x0o", [torch.relu, torch.tanh], "2x0e + 1x0o", [torch.sigmoid, torch.tanh], "1x1o + 1x2e + 1x1e")
    ours, theirs = Gate(*args), e3nn_nn.Gate(*args)
    assert ours.irreps_in == theirs.irreps_in and ours.irreps_out == theirs.irreps_out
    x = torch.randn(2, ours.irreps_in.dim, 3, 3, 3)
    expected = theirs(x.movedim(1, -1)).movedim(-1, 1)
    assert torch.allclose(ours(x), expected, atol=1e-6)
    # even activation on a pseudoscalar gives a scalar
    assert str(Gate("0o", [torch.abs], "", [], "").irreps_out) == "1x0e"
    with pytest.raises(ValueError, match="even or odd"):
        Gate("0o", [torch.relu], "", [], "")
    with pytest.raises(ValueError, match="one gate per gated field"):
        Gate("0e", [torch.relu], "2x0e", [torch.sigmoid], "1x1o")


@pytest.mark.parametrize("size", [5, 6])
def test_gate_exact_over_48(size, float64):
    gate = Gate("2x0e + 0o", [torch.relu, torch.tanh], "3x0e", [torch.sigmoid], "1o + 1e + 2e")
    assert_equivariant(gate, varied_batch(gate.irreps_in.dim, size), gate.irreps_in, gate.irreps_out, tolerance=1e-10)


def test_norm_activation_exact_over_48_and_float32(float64):
    act = NormActivation("2x0e + 0o + 1o + 1e + 2e", torch.relu, bias=True)
    with torch.no_grad():
        act.bias.uniform_(-0.5, 0.5)
    assert_equivariant(act, varied_batch(act.irreps_in.dim, 5), act.irreps_in, act.irreps_out, tolerance=1e-10)
    act32 = act.float()
    x = varied_batch(act.irreps_in.dim, 5).float()
    assert_equivariant(act32, x, act.irreps_in, act.irreps_out, tolerance=1e-5)


def test_norm_activation_values_and_pickle():
    act = NormActivation("1o", torch.relu, normalize=False)
    x = torch.randn(1, 3, 2, 2, 2)
    assert torch.allclose(act(x), x * x.norm(dim=1, keepdim=True))
    assert torch.equal(pickle.loads(pickle.dumps(act))(x), act(x))
    gate = Gate("0e", [torch.relu], "0e", [torch.sigmoid], "1o")
    y = torch.randn(1, 5, 2, 2, 2)
    assert torch.equal(pickle.loads(pickle.dumps(gate))(y), gate(y))
