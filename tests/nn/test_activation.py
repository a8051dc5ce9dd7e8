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


def _biased_gate():
    """A gate with biases on its 0e scalars and gates, set to nonzero values."""
    gate = Gate("2x0e + 0o", [torch.nn.functional.silu, torch.tanh], "2x0e", [torch.sigmoid], "1o + 2e", bias=True)
    with torch.no_grad():
        gate.scalar_bias.copy_(torch.tensor([0.7, -1.3]))
        gate.gate_bias.copy_(torch.tensor([0.4, -2.0]))
    return gate


def test_gate_bias_acts_inside_the_activation_and_maps_zero_to_zero(float64):
    gate = _biased_gate()
    plain = Gate("2x0e + 0o", [torch.nn.functional.silu, torch.tanh], "2x0e", [torch.sigmoid], "1o + 2e")
    assert gate.scalar_bias.shape == (2,) and gate.gate_bias.shape == (2,)  # 0e only: the 0o scalar has none
    x = varied_batch(gate.irreps_in.dim, 3)
    # channel order of irreps_in (e3nn's sort): 0o, then the 0e scalars and gates, then 1o, 2e
    assert str(gate.irreps_in) == "1x0o+4x0e+1x1o+1x2e"
    shift = torch.zeros(1, gate.irreps_in.dim, 1, 1, 1)
    shift[0, 1:5, 0, 0, 0] = torch.tensor([0.7, -1.3, 0.4, -2.0])
    background = plain(shift)
    background[:, 3:] = 0  # the gated fields are zero where the input is
    assert torch.allclose(gate(x), plain(x + shift) - background, atol=1e-12)
    assert float(background.abs().max()) > 0.1  # a biased convolution + this gate leave a background...
    with torch.no_grad():
        assert float(gate(torch.zeros(2, gate.irreps_in.dim, 4, 4, 4)).abs().max()) == 0.0  # ...this one does not


@pytest.mark.parametrize("size", [5, 6])
def test_biased_gate_exact_over_48(size, float64):
    gate = _biased_gate()
    assert_equivariant(gate, varied_batch(gate.irreps_in.dim, size), gate.irreps_in, gate.irreps_out, tolerance=1e-10)


def test_biased_gates_make_a_fully_padded_network_translation_invariant(float64):
    """With the bias in the gate (zero stays zero) the padded border agrees with the background, so the
    pooled features do not depend on where the object sits; with the bias in the convolution they do."""
    from steerable3d.nn import SteerableConv3d

    torch.manual_seed(0)
    x = torch.zeros(1, 1, 16, 16, 16)
    x[0, 0, 4:7, 4:6, 5:7] = 1.0
    x[0, 0, 6, 6, 6] = 2.0
    shifted = torch.roll(x, (3, 5, 2), (2, 3, 4))  # the object moves; it stays inside the volume

    def pooled_features(conv_bias, gate_bias):
        torch.manual_seed(1)
        layers, irreps = [], "0e"
        for _ in range(3):
            gate = Gate.for_output("3x0e + 1x1o + 1x2e", act_even=torch.nn.functional.silu, bias=gate_bias)
            conv = SteerableConv3d(irreps, gate.irreps_in, 5, padding=4, bias=conv_bias)
            with torch.no_grad():
                for p in (conv.bias, gate.scalar_bias, gate.gate_bias):
                    if p is not None:
                        p.uniform_(-1, 1)
            layers += [conv, gate]
            irreps = gate.irreps_out
        net = torch.nn.Sequential(*layers)
        with torch.no_grad():
            return [net(v).mean(dim=(2, 3, 4)) for v in (x, shifted, torch.zeros_like(x))]

    a, b, empty = pooled_features(conv_bias=False, gate_bias=True)
    assert float(empty.abs().max()) == 0.0
    assert float((a - b).abs().max()) < 1e-12 * float(a.abs().max())
    a, b, empty = pooled_features(conv_bias=True, gate_bias=False)
    object_part = (a - empty).abs()  # what the object adds to the pooled background, per channel
    assert float(((a - b).abs() / (object_part + 1e-12)).max()) > 0.1  # some feature moves by 10% of it


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
