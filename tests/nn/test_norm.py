import copy

import pytest
import torch

from steerable3d.nn import BatchNorm3d, Dropout, InstanceNorm3d
from steerable3d.testing import assert_equivariant

IRREPS = "2x0e + 0o + 1o + 1e + 2e"


def varied_batch(dim, n):
    x = torch.randn(3, dim, n, n, n)
    x[1] = 3.0 * x[1] + 0.5
    x[2] = 0.2 * x[2] - 1.0
    return x


@pytest.mark.parametrize("layer", [BatchNorm3d, InstanceNorm3d])
def test_norms_exact_over_48_in_train_and_eval(layer, float64):
    norm = layer(IRREPS)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    x = varied_batch(norm.irreps_in.dim, 5)
    assert_equivariant(norm, x, IRREPS, IRREPS, tolerance=1e-10)
    norm(x)  # update running statistics
    assert_equivariant(norm.eval(), x, IRREPS, IRREPS, tolerance=1e-10)


def test_batch_norm_statistics():
    norm = BatchNorm3d("0e + 0o + 1o", affine=False, momentum=1.0)
    x = torch.randn(4, 5, 6, 6, 6) * 3 + 2
    y = norm(x)
    assert abs(float(y[:, 0].mean())) < 1e-5 and abs(float(y[:, 0].var(unbiased=False)) - 1) < 1e-3
    assert abs(float(y[:, 1].mean()) - float((x[:, 1] / x[:, 1].pow(2).mean().sqrt()).mean())) < 1e-4  # 0o not centred
    assert abs(float(y[:, 2:].pow(2).mean()) - 1) < 1e-3  # per-component mean square 1
    assert torch.allclose(norm.running_mean, x[:, 0].mean().view(1), atol=1e-4)
    eval_out = norm.eval()(x)
    assert torch.allclose(eval_out, y, atol=1e-4)  # momentum 1: running stats equal the batch stats
    assert list(norm.state_dict()) == ["running_mean", "running_var"]


def test_instance_norm_is_per_sample():
    norm = InstanceNorm3d("0e + 1o", affine=False)
    x = varied_batch(4, 5)
    y = norm(x)
    for b in range(3):
        assert abs(float(y[b, 0].mean())) < 1e-5
        assert abs(float(y[b, 1:].pow(2).mean()) - 1) < 1e-3


def test_dropout_drops_whole_fields_and_is_equivariant_with_a_fixed_seed(float64):
    drop = Dropout(IRREPS, p=0.4)
    x = varied_batch(drop.irreps_in.dim, 5)

    def seeded(v):
        torch.manual_seed(7)
        return drop(v)

    assert_equivariant(seeded, x, IRREPS, IRREPS, tolerance=1e-10)
    torch.manual_seed(3)
    y = drop(torch.ones(64, drop.irreps_in.dim, 2, 2, 2))
    for (mul, ir), sl in zip(drop.irreps_in, drop.irreps_in.slices()):
        block = y[:, sl].unflatten(1, (mul, ir.dim))
        assert bool((block == block[:, :, :1, :1, :1, :1]).all())  # a field is kept or dropped whole
    kept = float((y[:, :, 0, 0, 0] > 0).float().mean())
    assert 0.5 < kept < 0.7
    assert torch.equal(copy.deepcopy(drop).eval()(x), x)
    with pytest.raises(ValueError, match="probability"):
        Dropout(IRREPS, p=1.0)
