"""steerable3d.export: plain-PyTorch fx graphs equal to the steerable models (eval mode)."""

import subprocess
import sys

import pytest
import torch

from steerable3d.export import export
from steerable3d.nn import (
    AvgPool3d,
    BatchNorm3d,
    Concatenate,
    Dropout,
    Gate,
    GlobalPool,
    InstanceNorm3d,
    LowPassPool3d,
    NormActivation,
    Residual,
    SelfTensorProduct,
    Sequential,
    SteerableConv3d,
    SteerableConvTranspose3d,
    Upsample,
)

FORBIDDEN = ("steerable3d", "e3nn")


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def assert_plain(gm: torch.fx.GraphModule) -> None:
    for m in gm.modules():
        if m is gm:
            continue
        assert not type(m).__module__.startswith(FORBIDDEN), type(m)
        assert type(m).__module__.startswith("torch.nn"), type(m)
    for node in gm.graph.nodes:
        target = node.target
        if callable(target):
            assert not (getattr(target, "__module__", "") or "").startswith(FORBIDDEN), node
    code = gm.code
    assert "steerable3d" not in code and "e3nn" not in code


def big_model(pool_mode: str = "mean") -> Sequential:
    torch.manual_seed(0)
    irreps = "3x0e + 2x0e + 2x1o"  # scalars + gates + gated
    return Sequential(
        SteerableConv3d("2x0e + 1o", irreps, 3, stride=2, padding_mode="circular"),
        BatchNorm3d(irreps),
        Gate("3x0e", [torch.relu], "2x0e", [torch.sigmoid], "2x1o"),  # -> 3x0e + 2x1o
        SelfTensorProduct("3x0e + 2x1o", "1x1e"),  # -> 3x0e + 2x1o + 1x1e
        Residual(SteerableConv3d("3x0e + 2x1o + 1e", "3x0e + 2x1o + 1e", 3)),
        Residual(SteerableConv3d("3x0e + 2x1o + 1e", "2x0e + 2x1o", 3)),  # projection skip
        NormActivation("2x0e + 2x1o", torch.nn.functional.silu, bias=True),
        InstanceNorm3d("2x0e + 2x1o"),
        Dropout("2x0e + 2x1o", p=0.3),
        LowPassPool3d("2x0e + 2x1o", 2),
        Upsample("2x0e + 2x1o", 2, mode="trilinear"),
        Upsample("2x0e + 2x1o", (1, 2, 1), mode="nearest"),
        Upsample("2x0e + 2x1o", (1, 1, 2), mode="trilinear", padding_mode="circular"),
        AvgPool3d("2x0e + 2x1o", 2),
        SteerableConvTranspose3d("2x0e + 2x1o", "2x0e + 1o", 3, stride=2, output_padding=1),
        GlobalPool("2x0e + 1o", mode=pool_mode, invariant=True),
    )


def trained(model: torch.nn.Module, x: torch.Tensor) -> torch.nn.Module:
    """A train-mode forward (running statistics move, non-trivial BN/biases), then eval."""
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1 and p.numel() < 64:
                p.add_(0.3 * torch.randn_like(p))
    model.train()
    with torch.no_grad():
        model(x)
    return model.eval()


@pytest.mark.parametrize("pool_mode", ["mean", "max_norm"])
def test_full_model_matches(pool_mode):
    torch.manual_seed(1)
    x = torch.randn(2, 5, 10, 9, 10)
    model = trained(big_model(pool_mode), x)
    gm = export(model, x)
    assert_plain(gm)
    with torch.no_grad():
        expected = model(x)
        got = gm(x)
    assert got.shape == expected.shape
    assert rel_err(got, expected) <= 1e-6
    # another input of the same size and batch size 1
    x2 = torch.randn(1, 5, 10, 9, 10)
    with torch.no_grad():
        assert rel_err(gm(x2), model(x2)) <= 1e-6
    assert not model.training  # flags restored (eval)


def test_train_flags_restored():
    model = Sequential(SteerableConv3d("0e", "0e + 1o", 3), BatchNorm3d("0e + 1o")).train()
    export(model, torch.randn(1, 1, 5, 5, 5))
    assert all(m.training for m in model.modules())


def test_concatenate_top_level():
    cat = Concatenate("2x0e + 1o", "1x0e + 1x1o", sort=True)
    xs = (torch.randn(2, 5, 3, 3, 3), torch.randn(2, 4, 3, 3, 3))
    gm = export(cat, xs)
    assert_plain(gm)
    assert torch.equal(gm(*xs), cat(*xs))


@pytest.mark.parametrize("mode", ["circular", "reflect", "replicate", "zeros"])
def test_padding_mode_and_dilation(mode):
    torch.manual_seed(2)
    conv = SteerableConv3d("0e + 1o", "2x0e + 1o + 2e", 3, padding_mode=mode, stride=(2, 1, 2), dilation=(1, 2, 1), padding=(1, 2, 2)).eval()
    x = torch.randn(2, 4, 9, 10, 8)
    gm = export(conv, x)
    assert_plain(gm)
    (layer,) = [m for m in gm.modules() if isinstance(m, torch.nn.Conv3d)]
    assert layer.padding_mode == mode
    with torch.no_grad():
        assert rel_err(gm(x), conv(x)) <= 1e-6


def test_transpose_output_padding():
    torch.manual_seed(3)
    up = SteerableConvTranspose3d("0e + 1o", "0e + 1o", 3, stride=2, output_padding=(1, 0, 1)).eval()
    x = torch.randn(1, 4, 4, 5, 4)
    gm = export(up, x)
    (layer,) = [m for m in gm.modules() if isinstance(m, torch.nn.ConvTranspose3d)]
    assert layer.output_padding == (1, 0, 1)
    with torch.no_grad():
        ref = up(x)
        got = gm(x)
    assert got.shape == ref.shape == (1, 4, 8, 9, 8)
    assert rel_err(got, ref) <= 1e-6


def test_gate_with_module_activation_and_pseudoscalars():
    torch.manual_seed(4)
    gate = Gate("2x0e + 1x0o", [torch.nn.SiLU(), torch.tanh], "1x0e + 1x0o", [torch.sigmoid, torch.tanh], "1x1o + 1x2e").eval()
    x = torch.randn(2, gate.irreps_in.dim, 4, 4, 4)
    gm = export(gate, x)
    assert_plain(gm)
    assert torch.allclose(gm(x), gate(x), rtol=0, atol=1e-6)


def test_gate_with_bias_inside_the_activation():
    torch.manual_seed(5)
    gate = Gate("2x0e + 1x0o", [torch.nn.SiLU(), torch.tanh], "2x0e", [torch.sigmoid], "1x1o + 1x2e", bias=True).eval()
    with torch.no_grad():
        gate.scalar_bias.uniform_(-1, 1)
        gate.gate_bias.uniform_(-1, 1)
    x = torch.randn(2, gate.irreps_in.dim, 4, 4, 4)
    gm = export(gate, x)
    assert_plain(gm)
    assert torch.allclose(gm(x), gate(x), rtol=0, atol=1e-6)
    assert float(gm(torch.zeros_like(x)).abs().max()) == 0.0  # zero stays zero in the export too


def test_unsupported_raises():
    with pytest.raises(ValueError, match="Linear"):
        export(torch.nn.Sequential(torch.nn.Linear(3, 3)), torch.randn(1, 3))
    gate = Gate("2x0e", [lambda t: t.clamp(min=0)], "1x0e", [torch.sigmoid], "1x1o")
    with pytest.raises(ValueError, match="lambda"):
        export(gate, torch.randn(1, 6, 3, 3, 3))


def test_save_load_without_steerable3d(tmp_path):
    torch.manual_seed(5)
    x = torch.randn(2, 5, 10, 9, 10)
    model = trained(big_model("max_norm"), x)
    gm = export(model, x)
    with torch.no_grad():
        expected = model(x)
    torch.save(gm, tmp_path / "model.pt")
    torch.save({"x": x, "expected": expected}, tmp_path / "data.pt")
    child = r"""
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('steerable3d', 'e3nn'):
            raise ImportError('blocked: ' + name)
        return None
sys.meta_path.insert(0, Block())
sys.path = [p for p in sys.path if p and not p.endswith(('/work/main',))]
import torch
folder = sys.argv[1]
gm = torch.load(folder + '/model.pt', weights_only=False)
data = torch.load(folder + '/data.pt')
with torch.no_grad():
    got = gm(data['x'])
err = float((got - data['expected']).abs().max() / data['expected'].abs().max())
assert err <= 1e-6, err
assert not any(m.split('.')[0] in ('steerable3d', 'e3nn') for m in sys.modules), sorted(sys.modules)
print('OK', err)
"""
    result = subprocess.run([sys.executable, "-I", "-c", child, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK")


def test_export_refuses_sizes_of_another_residue():
    """The frozen anti-aliasing blur belongs to the example's size modulo the stride: other residues are
    refused at run time with a message naming the axis, same residues run and match."""
    conv = SteerableConv3d("0e", "0e + 1o", 3, stride=2).eval()
    gm = export(conv, torch.randn(1, 1, 8, 9, 8))
    with torch.no_grad():
        same_residue = torch.randn(2, 1, 10, 7, 6)
        assert rel_err(gm(same_residue), conv(same_residue)) <= 1e-6
        with pytest.raises(Exception, match="axis 1"):
            gm(torch.randn(1, 1, 8, 8, 8))
    pool = LowPassPool3d("0e", 2)
    gm = export(pool, torch.randn(1, 1, 9, 9, 9))
    with pytest.raises(Exception, match="LowPassPool3d: axis 0"):
        gm(torch.randn(1, 1, 10, 9, 9))
