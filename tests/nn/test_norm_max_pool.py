import pickle

import pytest
import torch

from steerable3d import grid_symmetries, transform_field
from steerable3d.nn import NormMaxPool3d
from steerable3d.testing import assert_equivariant, equivariance_error

IRREPS = "2x0e + 0o + 1o + 1e + 2e"
DIM = 2 + 1 + 3 + 3 + 5


def varied_batch(n, dtype=None):
    x = torch.randn(2, DIM, n, n, n, dtype=dtype or torch.get_default_dtype())
    x[1] = 3.0 * x[1] + 0.5
    return x


@pytest.mark.parametrize("kernel_size, stride, padding, size", [(2, 2, 0, 8), (3, 2, 0, 9), (3, 2, 1, 7), (3, 1, 1, 6)])
def test_exact_over_48(kernel_size, stride, padding, size, float64):
    pool = NormMaxPool3d(IRREPS, kernel_size, stride, padding)
    assert pool.is_exact((size,) * 3)
    assert_equivariant(pool, varied_batch(size), IRREPS, IRREPS, tolerance=1e-10)


def test_exact_on_mirror_symmetric_input_with_ties(float64):
    """A field symmetric under a flip has exact ties in the windows across the mirror plane."""
    pool = NormMaxPool3d(IRREPS, 2)
    x = varied_batch(6)
    flip = grid_symmetries()[[tuple(m.diagonal().tolist()) for m in grid_symmetries()].index((-1.0, 1.0, 1.0))]
    x = x + transform_field(x, IRREPS, flip)  # invariant under the flip
    assert torch.allclose(transform_field(x, IRREPS, flip), x)
    assert_equivariant(pool, x, IRREPS, IRREPS, tolerance=1e-10)
    # without tie averaging the vector's flipped component would survive in the middle windows
    y = pool(x)
    assert torch.allclose(transform_field(y, IRREPS, flip), y, atol=1e-12)


def test_float32_and_broken_size(float64):
    pool = NormMaxPool3d(IRREPS, 2)
    assert_equivariant(pool, varied_batch(8, torch.float32), IRREPS, IRREPS, tolerance=1e-5)
    assert not pool.is_exact((9, 9, 9))
    assert max(equivariance_error(pool, varied_batch(9), IRREPS, IRREPS).values()) > 1e-2


def test_values_per_batch_element_and_pseudoscalars():
    """Each batch element picks its own maximizer; a pseudoscalar is compared by |x|, keeping its sign."""
    pool = NormMaxPool3d("0o + 1o", 2)
    x = torch.randn(3, 4, 4, 4, 4)
    y = pool(x)
    for b in range(3):
        for c, sl in ((0, slice(0, 1)), (1, slice(1, 4))):
            window = x[b, sl, :2, :2, :2].reshape(sl.stop - sl.start, -1)
            best = window.norm(dim=0).argmax()
            assert torch.allclose(y[b, sl, 0, 0, 0], window[:, best])
    assert torch.equal(pickle.loads(pickle.dumps(pool))(x), y)


def test_bfloat16_by_relative_error_and_flipped_choices():
    """bf16: norms are compared in float32, so on the same (bf16-rounded) input the choices are those of
    float32 and only the output rounding differs; against the unrounded input, bf16 rounding flips a small
    share of near-tied choices."""
    torch.manual_seed(0)
    pool = NormMaxPool3d(IRREPS, 2)
    x = varied_batch(8, torch.float32)
    low = pool(x.bfloat16())
    assert low.dtype == torch.bfloat16
    same_input = pool(x.bfloat16().float())
    assert float((low.float() - same_input).norm() / same_input.norm()) < 4e-3  # bf16 output rounding

    def choices(v):
        picks = []
        for (mul, ir), sl in zip(pool.irreps_in, pool.irreps_in.slices()):
            norms = v[:, sl].unflatten(1, (mul, ir.dim)).float().pow(2).sum(2)
            picks.append(pool._windows(norms).argmax(-1).flatten())
        return torch.cat(picks)

    # each flipped window swaps one field value for another of nearly the same norm: an O(1) change there,
    # inherent to max pooling of bf16-rounded inputs, so the share of flips is the figure to watch
    flipped = float((choices(x) != choices(x.bfloat16())).float().mean())
    assert flipped < 0.01, flipped


def test_bad_arguments():
    with pytest.raises(ValueError, match="tolerance"):
        NormMaxPool3d("0e", 2, tolerance=2.0)
    with pytest.raises(ValueError, match="channels"):
        NormMaxPool3d("1o", 2)(torch.randn(1, 2, 4, 4, 4))
