import pytest
import torch

from steerable3d import grid_symmetries, transform_field
from steerable3d.models import EquivariantUNet
from steerable3d.models.unet import irreps_for_width
from steerable3d.nn import Residual, SteerableConv3d
from steerable3d.testing import assert_equivariant, equivariance_error


def small_unet(**kwargs):
    options = dict(channels=(12, 16), strides=(2,), kernel_size=5)
    options.update(kwargs)
    return EquivariantUNet(3, 2, 3, options.pop("channels"), options.pop("strides"), **options)


@pytest.mark.parametrize("width", [12, 16, 24, 32, 60, 64, 128])
def test_width_rule_gives_about_width_channels(width):
    irreps = irreps_for_width(width)
    assert irreps.dim == width
    assert [ir for _, ir in irreps] == [ir for _, ir in irreps_for_width(60)]  # 0e, 1o, 2e
    counts = {str(ir): mul * ir.dim for mul, ir in irreps}
    assert counts["0e"] >= width / 3 and counts["1o"] >= 3 and counts["2e"] >= 5


def test_monai_argument_order_and_shapes():
    unet = EquivariantUNet(3, 2, 3, (12, 16, 20), (2, 2))
    assert str(unet.irreps_in) == "2x0e" and str(unet.irreps_out) == "3x0e"
    assert unet.size_multiple == (4, 4, 4)
    assert unet(torch.randn(2, 2, 8, 12, 4)).shape == (2, 3, 8, 12, 4)


@pytest.mark.parametrize("parity", [True, False])
@pytest.mark.parametrize(
    "padding_mode, norm, residual",
    [("zeros", "instance", False), ("circular", "instance", False), ("zeros", "batch", False), ("zeros", None, False),
     ("zeros", "instance", True), ("circular", "instance", True)],
)
def test_grid_symmetries_exact_batch_two(float64, parity, padding_mode, norm, residual):
    torch.manual_seed(0)
    unet = small_unet(channels=(12, 16, 20), strides=(2, 2), parity=parity, padding_mode=padding_mode, norm=norm, residual=residual)
    if norm == "batch":  # non-trivial running statistics
        with torch.no_grad():
            unet(torch.randn(2, 2, 8, 8, 8))
    unet.eval()
    x = torch.randn(2, 2, 8, 8, 8)
    with torch.no_grad():
        y = unet(x)
        for g in grid_symmetries(parity):
            rotated = unet(transform_field(x, "2x0e", g))
            expected = transform_field(y, "3x0e", g)
            assert (rotated - expected).abs().max() <= 1e-10 * expected.abs().max()


@pytest.mark.parametrize("padding_mode, residual", [("zeros", False), ("circular", False), ("zeros", True)])
def test_field_outputs_exact_over_48_symmetries(float64, padding_mode, residual):
    # a field-to-field U-Net: scalar, vector and l=2 outputs from scalar inputs, every block checked
    torch.manual_seed(0)
    unet = EquivariantUNet(
        3, 2, 9, (12, 16), (2,), parity=True, padding_mode=padding_mode, irreps_out="0e + 1o + 2e", residual=residual
    ).eval()
    x = torch.randn(2, 2, 8, 8, 8)
    x[1] = 3 * x[1] + 0.5
    errors = assert_equivariant(unet, x, "2x0e", "0e + 1o + 2e", tolerance=1e-10)
    assert set(errors) == {"0e", "1o", "2e"}


def test_field_outputs_are_checked_against_the_head():
    with pytest.raises(ValueError, match=r"irreps_out: expected 3 channels \(out_channels\), got 1x0e\+1x2e of dimension 6"):
        EquivariantUNet(3, 1, 3, (12, 16), (2,), irreps_out="0e + 2e")
    with pytest.raises(ValueError, match="irreps_out: 1e not among the first level's irreps 4x0e\\+1x1o\\+1x2e"):
        EquivariantUNet(3, 1, 3, (12, 16), (2,), irreps_out="1e")


def test_so3_net_is_not_reflection_equivariant(float64):
    """The parity flag matters: an SO(3) U-Net mixes in chiral (curl-like) paths."""
    torch.manual_seed(0)
    unet = small_unet(parity=False)
    x = torch.randn(1, 2, 8, 8, 8)
    mirror = torch.diag(torch.tensor([-1.0, 1.0, 1.0]))
    error = unet(transform_field(x, "2x0e", mirror)) - transform_field(unet(x), "3x0e", mirror)
    assert error.abs().max() > 1e-3 * unet(x).abs().max()


def test_batch_elements_are_independent():
    torch.manual_seed(0)
    unet = small_unet()
    x = torch.randn(3, 2, 8, 8, 8)
    together = unet(x)
    alone = torch.cat([unet(x[i : i + 1]) for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-5, rtol=1e-5)


def test_circular_padding_commutes_with_periodic_shifts(float64):
    torch.manual_seed(0)
    unet = small_unet(padding_mode="circular")
    x = torch.randn(1, 2, 8, 8, 8)
    shift = (2, -4, 6)  # multiples of the size multiple (2): the coarse grid shifts by whole voxels
    shifted = unet(torch.roll(x, shift, dims=(2, 3, 4)))
    assert torch.allclose(shifted, torch.roll(unet(x), shift, dims=(2, 3, 4)), atol=1e-10)


def test_size_not_divisible_by_strides_is_refused():
    unet = small_unet(channels=(12, 16, 20), strides=(2, 2))
    with pytest.raises(ValueError, match=r"divisible by the product of the strides \(4, 4, 4\), got \(8, 8, 10\)"):
        unet(torch.randn(1, 2, 8, 8, 10))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(spatial_dims=2), "spatial_dims: expected 3"),
        (dict(strides=(2, 2)), "strides: expected len"),
        (dict(strides=(0,)), r"strides\[0\]"),
        (dict(channels=(8, 16)), "width: expected an int >= 12"),
        (dict(irreps=["4x0e"]), "irreps: expected one per level"),
        (dict(padding_mode="reflect"), "padding_mode"),
        (dict(norm="layer"), "norm"),
        (dict(residual=1), "residual: expected a bool"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    options = dict(spatial_dims=3, in_channels=1, out_channels=2, channels=(12, 16), strides=(2,))
    options.update(kwargs)
    with pytest.raises(ValueError, match=message):
        EquivariantUNet(**options)


@torch.no_grad()
def test_residual_path_carries_the_absolute_intensity():
    # instance norm after a bias-free convolution makes a plain U-Net blind to the input's scale (up to the
    # norm's eps, small against an intensity variance of about 1); the un-normalized residual path is what
    # lets a contrast change reach the logits
    torch.manual_seed(0)
    x = 4 * torch.rand(1, 2, 8, 8, 8)
    for residual in (False, True):
        torch.manual_seed(1)
        unet = small_unet(residual=residual)
        change = (unet(3 * x) - unet(x)).abs().max() / unet(x).abs().max()
        if residual:
            assert change > 0.01, change
            paths = [m for m in unet.modules() if isinstance(m, Residual)]
            assert len(paths) == 4 and all(p.projection.kernel_size == 1 for p in paths)  # every block
        else:
            assert change < 1e-4, change


def test_irreps_override():
    unet = small_unet(irreps=["4x0e + 1x1o", "2x2e + 6x0e"])
    assert [str(ir) for ir in unet.level_irreps] == ["4x0e+1x1o", "6x0e+2x2e"]
    assert unet(torch.randn(1, 2, 4, 4, 4)).shape == (1, 3, 4, 4, 4)


def test_spacing_setter_resamples_every_filter_at_the_same_radius():
    torch.manual_seed(0)
    unet = small_unet(channels=(12, 16, 20), strides=(2, 2), spacing=1.0)
    x = torch.randn(1, 2, 8, 8, 8)
    before = unet(x)
    convs = [m for m in unet.modules() if isinstance(m, SteerableConv3d)]
    radii = [m.radius for m in convs]
    spacings = {m.spacing for m in convs}
    assert spacings == {(1.0,) * 3, (2.0,) * 3, (4.0,) * 3}
    unet.spacing = 0.5
    assert unet.spacing == (0.5,) * 3
    assert {m.spacing for m in convs} == {(0.5,) * 3, (1.0,) * 3, (2.0,) * 3}
    assert [m.radius for m in convs] == radii
    assert all(m.taps == (9, 9, 9) for m in convs if m.kernel_size == 5)  # radius 2 voxels -> 4 voxels
    assert not torch.allclose(unet(x), before, atol=1e-3)
    unet.spacing = 1.0
    assert torch.equal(unet(x), before)


@torch.no_grad()
def test_same_weights_on_a_finer_grid_see_the_same_physical_field():
    """A smooth field sampled at spacing 1 and at 0.5: with the spacing set accordingly the outputs agree
    (the fine output averaged over 2x2x2 cells) up to the discretization of the coarse grid (about 13%
    measured), while ignoring the spacing changes them by far more (about 77%)."""
    torch.manual_seed(0)
    unet = small_unet(spacing=1.0)

    def sample(n, h):
        c = (torch.arange(n, dtype=torch.float32) - (n - 1) / 2) * h
        x, y, z = torch.meshgrid(c, c, c, indexing="ij")
        a = torch.exp(-((x - 1) ** 2 + y**2 + (z + 1) ** 2) / 18)
        b = torch.exp(-((x + 2) ** 2 + (y - 1) ** 2 + z**2) / 12)
        return torch.stack([a, b])[None]

    unet.eval()
    coarse = unet(sample(16, 1.0))
    fine_input = sample(32, 0.5)
    unet.spacing = 0.5
    fine = torch.nn.functional.avg_pool3d(unet(fine_input), 2)
    unet.spacing = 1.0
    wrong = torch.nn.functional.avg_pool3d(unet(fine_input), 2)
    interior = (slice(None), slice(None)) + (slice(4, 12),) * 3
    error = (fine - coarse)[interior].abs().max() / coarse[interior].abs().max()
    error_wrong = (wrong - coarse)[interior].abs().max() / coarse[interior].abs().max()
    assert error < 0.2 and error_wrong > 4 * error, (error, error_wrong)


def test_trains():
    torch.manual_seed(0)
    unet = small_unet()
    x = torch.nn.functional.avg_pool3d(torch.randn(2, 2, 8, 8, 8), 3, 1, 1)
    x = x / x.std()
    target = (x[:, 0] > 0).long() + (x[:, 1] > 1).long()  # three classes, from the voxel's own values
    optimizer = torch.optim.Adam(unet.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(unet(x), target)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.6 * losses[0], losses


@torch.no_grad()
def test_stride_three_is_exact_on_multiples_of_three(float64):
    torch.manual_seed(0)
    unet = small_unet(strides=(3,), parity=True).eval()
    x = torch.randn(2, 2, 9, 9, 9)
    y = unet(x)
    assert y.shape == (2, 3, 9, 9, 9)
    for g in grid_symmetries(True)[::5]:
        expected = transform_field(y, "3x0e", g)
        assert (unet(transform_field(x, "2x0e", g)) - expected).abs().max() <= 1e-10 * expected.abs().max()


@pytest.mark.parametrize("parity", [False, True])
def test_bfloat16_autocast_keeps_grid_equivariance_within_bf16_precision(parity):
    torch.manual_seed(0)
    unet = small_unet(parity=parity).eval()
    x = torch.randn(2, 2, 8, 8, 8)
    x[1] = 3.0 * x[1] + 0.5

    def under_autocast(t):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return unet(t)

    with torch.no_grad():
        reference, y = unet(x), under_autocast(x)
    assert y.dtype == torch.bfloat16  # the head is a conv3d, which autocast runs in bf16
    assert float((y.float() - reference).norm() / reference.norm()) < 3e-2
    # the net runs under autocast; the group acts exactly, in float32, outside it
    errors = equivariance_error(lambda t: under_autocast(t).float(), x, unet.irreps_in, unet.irreps_out, parity=parity)
    assert errors["0e"] < 3e-2


@pytest.mark.parametrize("residual", [False, True])
def test_activation_checkpointing_gives_the_same_gradients(residual):
    torch.manual_seed(0)
    unet = small_unet(channels=(12, 16, 20), strides=(2, 2), residual=residual)
    x = torch.randn(2, 2, 8, 8, 8)
    grads = []
    for checkpointing in (False, True):
        unet.checkpointing = checkpointing
        unet.zero_grad()
        loss = unet(x).square().mean()
        loss.backward()
        grads.append([p.grad.clone() for p in unet.parameters()])
    for plain, recomputed in zip(*grads):
        assert torch.allclose(plain, recomputed, rtol=1e-5, atol=1e-7)
    saved = []
    for checkpointing in (False, True):  # bytes kept for the backward pass
        unet.checkpointing, total = checkpointing, [0]

        def pack(t):
            total[0] += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            unet(x).square().mean()
        saved.append(total[0])
    assert saved[1] < saved[0] / 3, saved
    with torch.no_grad():  # eval and no-grad passes are unaffected
        assert torch.equal(unet.eval()(x), unet(x))


def test_activation_checkpointing_refuses_batch_norm():
    with pytest.raises(ValueError, match="running statistics twice"):
        small_unet(norm="batch", checkpointing=True)
