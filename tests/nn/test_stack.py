"""Every layer composed into one deep network: exact over the 48 grid symmetries, and bf16 autocast."""

import pytest
import torch

from steerable3d import exact_sizes
from steerable3d.nn import (
    AvgPool3d,
    BatchNorm3d,
    Dropout,
    Gate,
    InstanceNorm3d,
    LowPassPool3d,
    NormActivation,
    NormMaxPool3d,
    Residual,
    SelfTensorProduct,
    Sequential,
    SteerableConv3d,
    SteerableConvTranspose3d,
    Upsample,
)
from steerable3d.testing import assert_equivariant, equivariance_error

IRREPS_IN = "0e + 0o + 1o"


def deep_stack():
    gate = Gate("2x0e + 0o", [torch.relu, torch.tanh], "3x0e", [torch.sigmoid], "1o + 1e + 2e")
    hidden = gate.irreps_out  # 2x0e + 0o + 1o + 1e + 2e
    net = Sequential(
        SteerableConv3d(IRREPS_IN, gate.irreps_in, 5, stride=2),  # 16 -> 8 (anti-aliased, any size)
        gate,
        BatchNorm3d(hidden),
        NormActivation(hidden, torch.sigmoid, bias=True),
        Dropout(hidden, p=0.3),
        NormMaxPool3d(hidden, 2),  # 8 -> 4
        Upsample(hidden, 2, mode="trilinear"),  # 4 -> 8
        SteerableConvTranspose3d(hidden, hidden, 3, stride=2),  # 8 -> 15
        InstanceNorm3d(hidden),
        Residual(SteerableConv3d(hidden, hidden, 3, padding_mode="circular")),
        LowPassPool3d(hidden, 2),  # 15 -> 8
        AvgPool3d(hidden, 2),  # 8 -> 4
    )
    x = torch.randn(4, 5, 16, 16, 16)
    net(x)  # one training-mode pass: running statistics
    return net.eval()


def varied_batch(n, dtype=None):
    x = torch.randn(2, 5, n, n, n, dtype=dtype or torch.get_default_dtype())
    x[1] = 3.0 * x[1] + 0.5
    return x


def test_deep_stack_exact_over_48(float64):
    torch.manual_seed(0)
    net = deep_stack()
    assert 16 in exact_sizes(net, [16])
    errors = assert_equivariant(net, varied_batch(16), net.irreps_in, net.irreps_out, tolerance=1e-10)
    assert set(errors) == {"0e", "0o", "1o", "1e", "2e"}


def test_deep_stack_float32():
    torch.manual_seed(0)
    net = deep_stack()
    assert_equivariant(net, varied_batch(16, torch.float32), net.irreps_in, net.irreps_out, tolerance=1e-5)


def test_exact_sizes_rule_out_odd_inputs_of_the_stack():
    torch.manual_seed(0)
    sizes = exact_sizes(deep_stack(), range(12, 18))
    assert 16 in sizes and 17 not in sizes  # 17 -> 9 after the conv: the 2x2x2 max-pool needs even sizes


def _continuous_layers():
    h = "2x0e + 0o + 1o + 1e + 2e"
    gate = Gate("2x0e + 0o", [torch.relu, torch.tanh], "3x0e", [torch.sigmoid], "1o + 1e + 2e")
    return [
        (SteerableConv3d(h, h, 3, stride=2), h),
        (SteerableConvTranspose3d(h, h, 3), h),
        (gate, gate.irreps_in),
        (NormActivation(h, torch.sigmoid), h),
        (BatchNorm3d(h), h),
        (InstanceNorm3d(h), h),
        (LowPassPool3d(h, 2), h),
        (AvgPool3d(h, 2), h),
        (Upsample(h, 2, mode="trilinear"), h),
        (NormMaxPool3d(h, 2), h),
        (SelfTensorProduct(h, "0e + 0o + 1o", factors="1o + 1e"), h),
        (Residual(SteerableConv3d(h, h, 3)), h),
        (Sequential(Dropout(h, p=0.5), SteerableConv3d(h, h, 3)).eval(), h),
    ]


def under_bf16_autocast(layer):
    def run(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return layer(x)

    return run


@pytest.mark.parametrize("index", range(13))
def test_bfloat16_autocast_keeps_equivariance_within_bf16_precision(index):
    torch.manual_seed(index)
    layer, irreps = _continuous_layers()[index]
    dim = layer.irreps_in.dim
    x = torch.randn(2, dim, 8, 8, 8)
    x[1] = 3.0 * x[1] + 0.5
    with torch.no_grad():
        reference = layer(x)
        y = under_bf16_autocast(layer)(x)
    assert y.dtype in (torch.bfloat16, torch.float32)
    assert float((y.float() - reference).norm() / reference.norm()) < 2e-2
    # the layer runs under autocast, the group acts exactly outside it (float32)
    errors = equivariance_error(lambda t: under_bf16_autocast(layer)(t).float(), x, layer.irreps_in, layer.irreps_out)
    assert max(errors.values()) < 5e-2, errors
