import copy
import pickle

import pytest
import torch
import torch.nn.functional as F

from steerable3d import grid_symmetries, irreps_D, transform_field
from steerable3d.nn.pooling import AvgPool3d, GlobalPool, LowPassPool3d, Upsample
from steerable3d.testing import assert_equivariant, equivariance_error

IRREPS = "2x0e + 0o + 1o + 1e + 2e"
DIM = 2 + 1 + 3 + 3 + 5


def varied_batch(dim, n, dtype=None):
    """Batch of 2 elements with different scale and offset (default dtype unless given)."""
    x = torch.randn(2, dim, n, n, n, dtype=dtype or torch.get_default_dtype())
    x[1] = 3.0 * x[1] + 0.5
    return x


# -- exact grid symmetry of the spatial layers -----------------------------------------------------------

SPATIAL_LAYERS = [
    ("avg2", lambda: AvgPool3d(IRREPS, 2), 8),
    ("avg2-even10", lambda: AvgPool3d(IRREPS, 2), 10),
    ("avg3-s2-p1", lambda: AvgPool3d(IRREPS, 3, stride=2, padding=1), 9),
    ("avg3-s3", lambda: AvgPool3d(IRREPS, 3), 9),
    ("lowpass2-odd", lambda: LowPassPool3d(IRREPS, 2), 9),
    ("lowpass2-even", lambda: LowPassPool3d(IRREPS, 2), 10),
    ("lowpass3-r1", lambda: LowPassPool3d(IRREPS, 3), 10),
    ("lowpass3-r2", lambda: LowPassPool3d(IRREPS, 3), 11),
    ("lowpass-sigma-odd", lambda: LowPassPool3d(IRREPS, 2, spacing=0.5, sigma=0.6), 9),
    ("lowpass-sigma-even", lambda: LowPassPool3d(IRREPS, 2, spacing=0.5, sigma=0.6), 8),
    ("lowpass-stride1", lambda: LowPassPool3d(IRREPS, 1, sigma=1.0), 7),
    ("lowpass-circular", lambda: LowPassPool3d(IRREPS, 2, padding_mode="circular"), 10),
    ("up-nearest", lambda: Upsample(IRREPS, 2), 5),
    ("up-nearest3", lambda: Upsample(IRREPS, 3), 4),
    ("up-trilinear-odd", lambda: Upsample(IRREPS, 2, mode="trilinear"), 5),
    ("up-trilinear-even", lambda: Upsample(IRREPS, 3, mode="trilinear"), 4),
    ("up-trilinear-circular", lambda: Upsample(IRREPS, 2, mode="trilinear", padding_mode="circular"), 5),
    ("lowpass3-cells", lambda: LowPassPool3d(IRREPS, 3), 9),
    ("lowpass4-cells-circular", lambda: LowPassPool3d(IRREPS, 4, padding_mode="circular"), 12),
]


@pytest.mark.parametrize("make, size", [(m, n) for _, m, n in SPATIAL_LAYERS], ids=[name for name, _, _ in SPATIAL_LAYERS])
def test_exact_over_48_symmetries_float64(make, size, float64):
    layer = make()
    assert layer.is_exact((size,) * 3)
    errors = assert_equivariant(layer, varied_batch(DIM, size), IRREPS, layer.irreps_out, tolerance=1e-10)
    assert set(errors) == {"0e", "0o", "1o", "1e", "2e"}


@pytest.mark.parametrize(
    "make, size",
    [(lambda: AvgPool3d(IRREPS, 2), 8), (lambda: LowPassPool3d(IRREPS, 2), 9), (lambda: LowPassPool3d(IRREPS, 2), 10),
     (lambda: Upsample(IRREPS, 2, mode="trilinear"), 5)],
    ids=["avg", "lowpass-odd", "lowpass-even", "upsample"],
)
def test_exact_over_48_symmetries_float32(make, size):
    layer = make()
    assert_equivariant(layer, varied_batch(DIM, size, torch.float32), IRREPS, IRREPS, tolerance=1e-5)


def test_broken_size_rule_is_detected(float64):
    """The check can fail: a 2x2x2 average on an odd size shifts the output grid off the centre."""
    pool = AvgPool3d(IRREPS, 2)
    assert not pool.is_exact((9, 9, 9))
    errors = equivariance_error(pool, varied_batch(DIM, 9), IRREPS, IRREPS)
    assert max(errors.values()) > 1e-2


def test_lowpass_is_exact_rule():
    for stride in (2, 3):
        assert all(LowPassPool3d("0e", stride).is_exact((n, n, n)) for n in range(3, 20))
    pool = LowPassPool3d("0e", 4)
    assert [n for n in range(4, 16) if pool.is_exact((n, n, n))] == [4, 5, 6, 8, 9, 10, 12, 13, 14]
    # window length parity per axis: odd on 9 (= 1 mod 4), even on 10 (= 2 mod 4) and on 12 (cells of 4)
    assert [len(t) % 2 for t in pool.taps((9, 10, 12))] == [1, 0, 0]


@pytest.mark.parametrize("stride, size", [(2, 8), (3, 9), (3, 12), (4, 12), (5, 10)])
def test_lowpass_cell_centred_when_the_stride_divides_the_size(stride, size, float64):
    pool = LowPassPool3d(IRREPS, stride)
    x = varied_batch(DIM, size)
    y = pool(x)
    assert y.shape[2:] == (size // stride,) * 3 and pool.is_exact((size,) * 3)
    assert max(equivariance_error(pool, x, IRREPS, IRREPS).values()) < 1e-12
    # a constant stays constant in the interior: the windows are normalized and aligned on the cells
    ones = pool(torch.ones(1, DIM, 4 * size, 4 * size, 4 * size))
    assert torch.allclose(ones[:, :, 2:-2, 2:-2, 2:-2], torch.ones(()), atol=1e-12)


def test_lowpass_narrow_blur_stays_cell_centred():
    pool = LowPassPool3d("0e", (4, 1, 1), sigma=0.1)  # two taps, shorter than the cell of 4 voxels
    x = torch.arange(16.0, dtype=torch.float64).reshape(1, 1, 16, 1, 1)
    assert pool.taps((16, 1, 1))[0].tolist() == [0.0, 0.5, 0.5, 0.0]
    assert pool(x).flatten().tolist() == [1.5, 5.5, 9.5, 13.5]  # the mean of each cell's two middle voxels


def test_lowpass_broken_size_is_detected(float64):
    pool = LowPassPool3d(IRREPS, 4)
    assert not pool.is_exact((11, 11, 11))
    errors = equivariance_error(pool, varied_batch(DIM, 11), IRREPS, IRREPS)
    assert max(errors.values()) > 1e-2


# -- GlobalPool: outputs [B, C] transform with D(M) ------------------------------------------------------

def global_pool_error(pool, x):
    """max over the 48 grid symmetries of |f(g x) - D(M) f(x)| / max|f(x)|."""
    y = pool(x)
    assert y.shape == (x.shape[0], pool.irreps_out.dim)
    worst = 0.0
    for m in grid_symmetries():
        a = pool(transform_field(x, pool.irreps_in, m))
        b = y @ irreps_D(pool.irreps_out, m).to(y.dtype).T
        worst = max(worst, float((a - b).abs().max() / y.abs().max()))
    return worst


@pytest.mark.parametrize("mode", ["mean", "max_norm"])
@pytest.mark.parametrize("size", [6, 7])
def test_global_pool_equivariant(mode, size, float64):
    pool = GlobalPool(IRREPS, mode)
    assert pool.irreps_out == pool.irreps_in
    assert global_pool_error(pool, varied_batch(DIM, size)) < 1e-10


@pytest.mark.parametrize("mode", ["mean", "max_norm"])
def test_global_pool_float32(mode):
    pool = GlobalPool(IRREPS, mode)
    assert global_pool_error(pool, varied_batch(DIM, 6, torch.float32)) < 1e-5


def symmetric_field(n):
    """A field invariant under all 48 grid symmetries (the average of a random field over the group):
    every norm appears at several voxels, so max_norm meets exact ties."""
    x = varied_batch(DIM, n)
    return sum(transform_field(x, IRREPS, m) for m in grid_symmetries()) / 48


def test_max_norm_with_exact_ties(float64):
    """A symmetric field plus a field with a symmetry of its own: ties are broken alike."""
    x = symmetric_field(7)
    pool = GlobalPool(IRREPS, "max_norm")
    # invariant under every symmetry: only 0e survives in the pooled vector, the rest averages to zero
    y = pool(x)
    assert y[:, :2].abs().min() > 0
    assert y[:, 2:].abs().max() < 1e-12
    # a field symmetric under one flip only (x -> -x): ties between mirrored voxels, non-zero vectors
    r = varied_batch(DIM, 6)  # even size: no voxel on the mirror plane, every norm appears twice
    flip = torch.diag(torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))
    half = r + transform_field(r, IRREPS, flip)
    norms = half[:, 3:6].norm(dim=1).flatten(1)  # the 1o field: its max norm is tied with the mirror voxel
    assert int((norms >= norms.amax(dim=1, keepdim=True) * (1 - 1e-12)).sum(dim=1).min()) >= 2
    out = pool(half)
    assert global_pool_error(pool, half) < 1e-10
    # the same field with ties broken by a per-voxel argmax would not be equivariant; ours is
    assert torch.allclose(pool(transform_field(half, IRREPS, flip)), out @ irreps_D(IRREPS, flip).T, atol=1e-12)


@pytest.mark.parametrize("mode", ["mean", "max_norm"])
def test_global_pool_invariant(mode, float64):
    pool = GlobalPool(IRREPS, mode, invariant=True)
    assert str(pool.irreps_out) == "2x0e+1x0e+1x0e+1x0e+1x0e"  # one entry per input entry, same multiplicities
    for x in (varied_batch(DIM, 7), symmetric_field(7) + 0.1 * varied_batch(DIM, 7)):
        y = pool(x)
        assert y.shape == (2, 6)
        assert (y[:, 2:] >= 0).all()  # norms, including the 0o pseudoscalar's
        for m in grid_symmetries():
            assert torch.allclose(pool(transform_field(x, IRREPS, m)), y, rtol=0, atol=1e-10 * float(y.abs().max()))


def test_global_pool_invariant_values(float64):
    x = varied_batch(DIM, 6)
    y = GlobalPool(IRREPS, "mean", invariant=True)(x)
    mean = x.mean(dim=(2, 3, 4))
    expected = torch.stack(
        [mean[:, 0], mean[:, 1], mean[:, 2].abs(), mean[:, 3:6].norm(dim=1), mean[:, 6:9].norm(dim=1), mean[:, 9:14].norm(dim=1)],
        dim=1,
    )
    assert torch.allclose(y, expected)


def test_global_pool_invariant_gradient_at_zero():
    x = torch.zeros(1, DIM, 4, 4, 4, requires_grad=True)
    GlobalPool(IRREPS, invariant=True)(x).sum().backward()
    assert torch.isfinite(x.grad).all()


# -- values ----------------------------------------------------------------------------------------------

def test_avgpool_matches_torch():
    x = torch.randn(2, 1, 8, 8, 8)
    assert torch.equal(AvgPool3d("0e", 2)(x), F.avg_pool3d(x, 2))
    y = AvgPool3d("0e", 3, stride=2, padding=1)(x)
    assert torch.allclose(y, F.avg_pool3d(x, 3, 2, 1, count_include_pad=False))
    # the padding is not counted: a constant stays constant up to the border
    assert torch.allclose(AvgPool3d("0e", 3, stride=2, padding=1)(torch.ones(1, 1, 9, 9, 9)), torch.ones(1, 1, 5, 5, 5))


def test_upsample_nearest_matches_repeat_interleave():
    x = torch.randn(2, 4, 3, 4, 5)
    y = Upsample("0e + 1o", 2)(x)
    expected = x.repeat_interleave(2, 2).repeat_interleave(2, 3).repeat_interleave(2, 4)
    assert torch.equal(y, expected)
    assert Upsample("0e", (1, 2, 3))(torch.randn(1, 1, 2, 2, 2)).shape == (1, 1, 2, 4, 6)
    assert Upsample("0e", 2.0).scale_factor == (2, 2, 2)


def test_upsample_trilinear_matches_interpolate():
    x = torch.randn(2, 4, 3, 4, 5)
    y = Upsample("0e + 1o", 2, mode="trilinear")(x)
    assert torch.allclose(y, F.interpolate(x, scale_factor=2, mode="trilinear", align_corners=False))


def test_upsample_trilinear_circular_is_periodic_interpolation():
    x = torch.randn(2, 4, 3, 4, 5, dtype=torch.float64)
    up = Upsample("0e + 1o", (2, 3, 2), mode="trilinear", padding_mode="circular")
    y = up(x)
    assert y.shape == (2, 4, 6, 12, 10)
    # inside, it is plain trilinear interpolation; at the border it wraps around
    plain = F.interpolate(x, scale_factor=(2, 3, 2), mode="trilinear", align_corners=False)
    assert torch.allclose(y[:, :, 1:-1, 2:-2, 1:-1], plain[:, :, 1:-1, 2:-2, 1:-1])
    assert not torch.allclose(y[:, :, :1], plain[:, :, :1])
    # a periodic shift by whole input voxels commutes with it
    assert torch.allclose(up(torch.roll(x, (1, 2, -1), (2, 3, 4))), torch.roll(y, (2, 6, -2), (2, 3, 4)))
    # and the first output sample of axis x is a quarter of the way from the last input voxel to the first
    expected = 0.25 * x[:, :, -1] + 0.75 * x[:, :, 0]
    along_x = Upsample("0e + 1o", (2, 1, 1), mode="trilinear", padding_mode="circular")(x)
    assert torch.allclose(along_x[:, :, 0], expected)


def test_lowpass_preserves_constant_in_interior():
    for size, stride, sigma in ((11, 2, None), (10, 2, None), (13, 3, None), (10, 2, 1.0)):
        pool = LowPassPool3d("0e + 1o", stride, sigma=sigma)
        y = pool(torch.full((1, 4, size, size, size), 2.5))
        k = len(pool.taps((size,) * 3)[0])
        pad = (k - 1) // 2
        # output j reads inputs j*stride - pad ... j*stride - pad + k - 1: inside the volume away from the border
        inner = [j for j in range(y.shape[2]) if j * stride - pad >= 0 and j * stride - pad + k - 1 <= size - 1]
        assert inner
        sl = slice(inner[0], inner[-1] + 1)
        assert torch.allclose(y[..., sl, sl, sl], torch.full_like(y[..., sl, sl, sl], 2.5))
        assert not torch.allclose(y, torch.full_like(y, 2.5))  # the zero padding does reach the border
    # circular padding keeps a constant everywhere
    y = LowPassPool3d("0e", 2, padding_mode="circular")(torch.full((1, 1, 8, 8, 8), 2.5))
    assert torch.allclose(y, torch.full_like(y, 2.5))


def test_lowpass_blur_widths():
    pool = LowPassPool3d("0e", 2)
    tx, ty, tz = pool.taps((9, 10, 9))
    assert len(tx) % 2 == 1 and len(ty) % 2 == 0 and len(tz) % 2 == 1
    assert all(torch.allclose(t.sum(), torch.tensor(1.0, dtype=torch.float64)) for t in (tx, ty, tz))
    # sigma in physical units: std sigma / spacing voxels per axis
    aniso = LowPassPool3d("0e", 2, spacing=(1.0, 0.5, 2.0), sigma=1.0)
    assert aniso.std_voxels() == (1.0, 2.0, 0.5)
    lx, ly, lz = (len(t) for t in aniso.taps((9, 9, 9)))
    assert ly > lx > lz
    assert aniso(torch.randn(1, 1, 9, 9, 9)).shape == (1, 1, 5, 5, 5)


def test_global_pool_values():
    x = torch.randn(2, DIM, 6, 7, 8)
    assert torch.allclose(GlobalPool(IRREPS)(x), x.mean(dim=(2, 3, 4)))
    # max_norm on a field with one clear peak picks that voxel's value
    x = torch.randn(2, 4, 6, 6, 6) * 0.1
    x[0, 1:4, 2, 3, 4] = torch.tensor([3.0, -4.0, 1.0])
    y = GlobalPool("0e + 1o", "max_norm")(x)
    assert torch.equal(y[0, 1:4], x[0, 1:4, 2, 3, 4])
    assert torch.equal(y[:, 0], x[:, 0].flatten(1).gather(1, x[:, 0].flatten(1).abs().argmax(1, keepdim=True))[:, 0])


# -- errors and serialization ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Upsample("0e", 1.5), "scale_factor"),
        (lambda: Upsample("0e", 0), "scale_factor"),
        (lambda: Upsample("0e", 2, mode="bicubic"), "mode"),
        (lambda: Upsample("0e", 2, padding_mode="reflect"), "padding_mode"),
        (lambda: GlobalPool("0e", mode="max"), "mode"),
        (lambda: LowPassPool3d("0e", 0), "stride"),
        (lambda: LowPassPool3d("0e", 2, sigma=-1.0), "sigma"),
        (lambda: LowPassPool3d("0e", 2, padding_mode="reflect"), "padding_mode"),
        (lambda: AvgPool3d("0e", 2, stride=0), "stride"),
        (lambda: AvgPool3d("0e", 2, padding=2), "padding"),
        (lambda: AvgPool3d("0e", 2.5), "kernel_size"),
        (lambda: AvgPool3d("not irreps"), "irreps"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "layer", [AvgPool3d(IRREPS), LowPassPool3d(IRREPS), GlobalPool(IRREPS), Upsample(IRREPS)], ids=lambda l: type(l).__name__
)
def test_wrong_channels(layer):
    with pytest.raises(ValueError, match=f"expected {DIM} channels"):
        layer(torch.randn(1, DIM + 1, 4, 4, 4))
    with pytest.raises(ValueError, match="5-d field"):
        layer(torch.randn(DIM, 4, 4, 4))


def test_pickle_and_deepcopy_round_trip():
    x = torch.randn(2, DIM, 9, 9, 9)
    for layer in (LowPassPool3d(IRREPS, 2, spacing=0.5, sigma=0.7), GlobalPool(IRREPS, "max_norm", invariant=True)):
        for other in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
            assert other.irreps_out == layer.irreps_out
            assert torch.equal(other(x), layer(x))
