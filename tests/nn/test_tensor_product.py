import pytest
import torch
from e3nn import o3

from steerable3d.nn import SelfTensorProduct
from steerable3d.testing import assert_equivariant


def test_matches_e3nn_tensor_product_voxel_by_voxel(float64):
    tp = SelfTensorProduct("2x0e + 2x1o + 1x2e", "2x1e + 1x0e + 1x2o + 1x3o")
    assert tp.irreps_out == o3.Irreps("2x0e + 2x1o + 1x2e + 2x1e + 1x0e + 1x2o + 1x3o")
    x = torch.randn(2, tp.irreps_in.dim, 3, 4, 5)
    y = tp(x)
    assert torch.equal(y[:, : tp.irreps_in.dim], x)  # the input passes through
    factors = x[:, 2:].movedim(1, -1)  # the l > 0 part: 2x1o + 1x2e
    expected = tp.tp(factors, factors).movedim(-1, 1)
    assert torch.allclose(y[:, tp.irreps_in.dim :], expected, atol=1e-12)
    assert expected.abs().max() > 0.1


def test_cross_product_is_the_pseudovector():
    # two vector fields, one product 1e: it must be proportional to their cross product at every voxel
    torch.manual_seed(0)
    tp = SelfTensorProduct("2x1o", "1x1e")
    x = torch.randn(1, 6, 2, 2, 2)
    a, b = x[:, :3], x[:, 3:]
    cross = torch.linalg.cross(a, b, dim=1)
    out = tp(x)[:, 6:]
    ratio = out / cross
    assert torch.allclose(ratio, ratio.flatten()[0].expand_as(ratio), rtol=1e-4)


@pytest.mark.parametrize("size", [4, 5])
def test_exact_over_48_and_continuous_rotations(size, float64):
    tp = SelfTensorProduct("1x0e + 2x1o + 1x2e", "1x0e + 2x1e + 1x2o + 1x3o + 1x4e")
    x = torch.randn(3, tp.irreps_in.dim, size, size, size)
    assert_equivariant(tp, x, tp.irreps_in, tp.irreps_out, tolerance=1e-12)
    # pointwise, so it commutes with any rotation of the components: check one by D(R) directly
    torch.manual_seed(3)
    R = -o3.rand_matrix()  # improper
    D_in, D_out = tp.irreps_in.D_from_matrix(R), tp.irreps_out.D_from_matrix(R)
    rotated = tp(torch.einsum("ij,bjxyz->bixyz", D_in, x))
    assert torch.allclose(rotated, torch.einsum("ij,bjxyz->bixyz", D_out, tp(x)), atol=1e-11)


def test_gradients_reach_the_weights():
    tp = SelfTensorProduct("0e + 2x1o", "1e")
    tp(torch.randn(2, 7, 3, 3, 3)).sum().backward()
    assert tp.tp.weight.grad is not None and tp.tp.weight.grad.abs().sum() > 0


def test_factors_select_the_fields():
    tp = SelfTensorProduct("2x0e + 1x1o + 1x2e + 1x1e", "1x0o", factors="1o + 1e")
    assert tp.irreps_factors == o3.Irreps("1x1o + 1x1e")
    x = torch.randn(1, tp.irreps_in.dim, 2, 2, 2)
    dot = (x[:, 2:5] * x[:, 10:13]).sum(dim=1)  # 1o . 1e is the only pseudoscalar
    ratio = tp(x)[:, -1] / dot
    assert torch.allclose(ratio, ratio.flatten()[0].expand_as(ratio), rtol=1e-4)


def test_clear_errors():
    with pytest.raises(ValueError, match="l > 0"):
        SelfTensorProduct("3x0e", "0e")
    with pytest.raises(ValueError, match="factors: 2o not in"):
        SelfTensorProduct("2x1o", "1x1e", factors="2o")
    with pytest.raises(ValueError, match="0o is not a product"):
        SelfTensorProduct("2x1o", "1x0o")


def test_eval_mode_caches_the_pair_table_until_the_weights_change():
    torch.manual_seed(0)
    layer = SelfTensorProduct("2x0e + 2x1o", "1x1e + 1x0e").eval()
    x = torch.randn(1, 8, 3, 3, 3)
    calls = []
    original = layer.pair_weights
    layer.pair_weights = lambda: calls.append(1) or original()
    with torch.no_grad():
        first = layer(x)
        assert torch.equal(layer(x), first) and len(calls) == 1  # built once
        layer.tp.weight.mul_(2.0)  # an in-place change is seen
        changed = layer(x)
    assert len(calls) == 2 and not torch.allclose(changed, first)
    layer.train()
    y = layer(x)
    assert len(calls) == 3 and y.requires_grad  # training rebuilds it every call, with gradients
