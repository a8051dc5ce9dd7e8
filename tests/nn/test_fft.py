"""SteerableConv3d(backend="fft"): the direct convolution's result by products of Fourier transforms."""

import pytest
import torch

from steerable3d.nn import SteerableConv3d
from steerable3d.testing import assert_equivariant

IRREPS = "3x0e + 2x1o + 1x2e"


def pair(kernel_size, **kwargs):
    torch.manual_seed(kernel_size)
    direct = SteerableConv3d(IRREPS, IRREPS, kernel_size, **kwargs)
    fft = SteerableConv3d(IRREPS, IRREPS, kernel_size, backend="fft", **kwargs)
    fft.load_state_dict(direct.state_dict())
    with torch.no_grad():
        direct.bias.normal_()
        fft.bias.copy_(direct.bias)
    return direct, fft


def relative(a, b):
    return float((a - b).detach().abs().max() / b.detach().abs().max())


@pytest.mark.parametrize("padding_mode", ["zeros", "circular"])
@pytest.mark.parametrize("kernel_size", [3, 7, 11])
def test_fft_equals_direct_in_float32(padding_mode, kernel_size):
    direct, fft = pair(kernel_size, padding_mode=padding_mode)
    x = torch.randn(2, direct.irreps_in.dim, 12, 14, 16)
    assert relative(fft(x), direct(x)) <= 1e-5


@pytest.mark.parametrize("padding", [0, 1, 4])
def test_fft_equals_direct_for_explicit_zero_padding(padding):
    direct, fft = pair(5, padding=padding)
    x = torch.randn(1, direct.irreps_in.dim, 10, 10, 10)
    y = direct(x)
    assert fft(x).shape == y.shape and relative(fft(x), y) <= 1e-5


@pytest.mark.parametrize("padding_mode", ["zeros", "circular"])
def test_gradients_match(padding_mode):
    direct, fft = pair(5, padding_mode=padding_mode)
    x = torch.randn(2, direct.irreps_in.dim, 10, 10, 10)
    grads = []
    for conv in (direct, fft):
        xi = x.clone().requires_grad_()
        y = conv(xi)
        (y.square() + y * torch.linspace(-1, 1, y.numel()).view_as(y)).mean().backward()
        grads.append((xi.grad, conv.weight.grad, conv.bias.grad))
    for a, b in zip(*grads):
        assert relative(b, a) <= 1e-4


@pytest.mark.parametrize("padding_mode", ["zeros", "circular"])
def test_fft_is_exact_over_the_48_grid_symmetries_with_mixed_parities(float64, padding_mode):
    irreps = "2x0e + 0o + 1o + 1e + 2e"
    torch.manual_seed(3)
    fft = SteerableConv3d(irreps, irreps, 5, padding_mode=padding_mode, backend="fft")
    x = torch.randn(2, fft.irreps_in.dim, 9, 9, 9)
    x[1] = 3.0 * x[1] + 0.5
    errors = assert_equivariant(fft, x, irreps, irreps, tolerance=1e-10)
    assert set(errors) == {"0e", "0o", "1o", "1e", "2e"}


def test_eval_mode_caches_the_spectrum_until_the_weights_change():
    direct, fft = pair(5)
    fft.eval()
    x = torch.randn(1, fft.irreps_in.dim, 8, 8, 8)
    with torch.no_grad():
        first = fft(x)
        cached = fft._fft_cache[1]
        assert fft(x).equal(first) and fft._fft_cache[1] is cached
        fft.weight.mul_(2.0)
        assert relative(fft(x), first) > 0.1
        assert fft._fft_cache[1] is not cached
    fft.train()
    fft(x)
    assert fft._fft_cache is None  # no cache while training


def test_auto_picks_fft_for_large_kernels_and_earlier_with_a_cached_spectrum():
    small = SteerableConv3d(IRREPS, IRREPS, 3, backend="auto")
    medium = SteerableConv3d(IRREPS, IRREPS, 7, backend="auto", padding_mode="circular")
    large = SteerableConv3d(IRREPS, IRREPS, 15, backend="auto", padding_mode="circular")
    assert not small.uses_fft((32, 32, 32), batch=2) and large.uses_fft((64, 64, 64), batch=2)
    assert not medium.uses_fft((32, 32, 32), batch=2)  # training: the spectrum is rebuilt every call
    with torch.no_grad():
        assert medium.eval().uses_fft((32, 32, 32), batch=2)  # inference: cached
        assert not small.eval().uses_fft((32, 32, 32), batch=2)
    strided = SteerableConv3d(IRREPS, IRREPS, 15, backend="auto", stride=2)
    assert not strided.uses_fft((64, 64, 64))


def test_fft_refuses_what_it_cannot_compute():
    with pytest.raises(ValueError, match="stride 1, dilation 1"):
        SteerableConv3d(IRREPS, IRREPS, 5, backend="fft", stride=2)
    with pytest.raises(ValueError, match="backend"):
        SteerableConv3d(IRREPS, IRREPS, 5, backend="fftw")
    conv = SteerableConv3d(IRREPS, IRREPS, 9, backend="fft", padding_mode="circular")
    with pytest.raises(ValueError, match="taps <= size"):
        conv(torch.randn(1, conv.irreps_in.dim, 6, 6, 6))


def test_fft_under_autocast_runs_in_float32():
    direct, fft = pair(5)
    x = torch.randn(1, fft.irreps_in.dim, 8, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = fft(x)
    assert y.dtype == torch.float32 and relative(y, direct(x)) <= 1e-5
