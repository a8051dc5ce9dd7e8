import pytest
import torch

from steerable3d import grid_symmetries, transform_field
from steerable3d.inference import blend_window, patch_starts, sliding_window
from steerable3d.models import EquivariantUNet


@pytest.mark.parametrize("size", range(8, 41, 3))
@pytest.mark.parametrize("patch", [4, 7, 8, 16])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.75])
def test_patch_starts_cover_overlap_and_are_symmetric(size, patch, overlap):
    starts = patch_starts(size, patch, overlap)
    if patch >= size:
        assert starts == [0]
        return
    assert starts[0] == 0 and starts[-1] == size - patch
    assert starts == sorted({size - patch - s for s in starts})  # mirror-symmetric
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= 1 and max(gaps) <= max(1, int(patch * (1 - overlap)))  # covered, overlapping enough


def test_blend_window_symmetric_and_positive():
    w = blend_window((6, 8, 7))
    for axis in range(3):
        assert torch.equal(w, w.flip(axis))
    assert float(w.min()) >= 1e-3 and float(w.max()) == 1.0
    assert torch.equal(blend_window((3, 3, 3), "constant"), torch.ones(3, 3, 3))
    with pytest.raises(ValueError, match="mode"):
        blend_window((3, 3, 3), "linear")


@pytest.mark.parametrize("mode", ["gaussian", "constant"])
@pytest.mark.parametrize("shape, patch", [((20, 20, 20), 8), ((13, 9, 30), (8, 16, 7)), ((5, 6, 7), 8)])
def test_pointwise_model_is_reproduced(mode, shape, patch):
    torch.manual_seed(0)
    model = torch.nn.Conv3d(2, 3, 1)
    x = torch.randn(2, 2, *shape)
    out = sliding_window(model, x, patch, mode=mode, batch_size=3)
    with torch.no_grad():
        assert torch.allclose(out, model(x), atol=1e-6)


def test_batches_of_patches_are_bounded_and_output_lives_on_output_device():
    calls = []

    def model(p):
        calls.append(tuple(p.shape))
        return 2 * p

    x = torch.randn(1, 1, 24, 24, 24)
    out = sliding_window(model, x, 8, overlap=0.5, batch_size=5, output_device="cpu")
    assert out.device.type == "cpu" and torch.allclose(out, 2 * x)
    assert len(calls) == 25 and max(c[0] for c in calls) == 5  # 5^3 patches, 5 per call
    assert all(c[1:] == (1, 8, 8, 8) for c in calls)


def test_equivariant_through_stitching(float64):
    """U-Net patches on a symmetric patch grid: the stitched output keeps the grid symmetries exactly."""
    torch.manual_seed(0)
    unet = EquivariantUNet(3, 1, 2, (12, 16), (2,), parity=True).eval()
    x = torch.randn(2, 1, 12, 12, 12)
    y = sliding_window(unet, x, 8, overlap=0.5, batch_size=8)  # corners at 0 and 4 on each axis
    group = grid_symmetries(True)
    for g in group[:: len(group) // 8]:  # 8 of the 48, reflections among them
        rotated = sliding_window(unet, transform_field(x, "0e", g), 8, overlap=0.5, batch_size=8)
        assert (rotated - transform_field(y, "2x0e", g)).abs().max() <= 1e-10 * y.abs().max()
    # not a tautology: corners that are not mirror-symmetric (0, 3, 4) break it
    def stitch(volume, starts):
        out, count = 0, torch.zeros(12, 12, 12)
        for a in starts:
            for b in starts:
                for c in starts:
                    patch = unet(volume[:, :, a : a + 8, b : b + 8, c : c + 8])
                    out = out + torch.nn.functional.pad(patch, (c, 4 - c, b, 4 - b, a, 4 - a))
                    count[a : a + 8, b : b + 8, c : c + 8] += 1
        return out / count

    flip = torch.diag(torch.tensor([-1.0, 1.0, 1.0]))
    with torch.no_grad():
        assert torch.allclose(stitch(x, [0, 4]), sliding_window(unet, x, 8, overlap=0.5, mode="constant"))
        broken = stitch(transform_field(x, "0e", flip), [0, 3, 4]) - transform_field(stitch(x, [0, 3, 4]), "2x0e", flip)
    assert broken.abs().max() > 1e-4 * y.abs().max()


def test_works_inside_monai_sliding_window_inference():
    monai_inferers = pytest.importorskip("monai.inferers")
    torch.manual_seed(0)
    unet = EquivariantUNet(3, 1, 2, (12, 16), (2,)).eval()
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        theirs = monai_inferers.sliding_window_inference(x, (8, 8, 8), 4, unet, overlap=0.5, mode="constant")
    ours = sliding_window(unet, x, 8, overlap=0.5, mode="constant")  # the same corners: 0, 4, 8
    assert torch.allclose(theirs, ours, atol=1e-5)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"volume: expected a tensor \[B, C, X, Y, Z\], got \(1, 8, 8, 8\)"):
        sliding_window(lambda p: p, torch.zeros(1, 8, 8, 8), 4)
    with pytest.raises(ValueError, match="overlap"):
        sliding_window(lambda p: p, torch.zeros(1, 1, 8, 8, 8), 4, overlap=1.0)
    with pytest.raises(ValueError, match="patch_size"):
        sliding_window(lambda p: p, torch.zeros(1, 1, 8, 8, 8), (4, 4))
    with pytest.raises(ValueError, match=r"model: expected an output \[1, C, 4, 4, 4\]"):
        sliding_window(lambda p: p[:, :, :2], torch.zeros(1, 1, 4, 4, 4), 4)
