"""steerable3d.plot draws what it is given: the arrows are the field's in-plane components at the right
places, the images are the right planes, the bars are the errors; bad input is refused with a message."""

import numpy as np
import pytest
import torch

pytest.importorskip("matplotlib")

from steerable3d.nn import SteerableConv3d
from steerable3d.plot import equivariance_bars, field_slice, kernel_basis_slices, kernel_isosurfaces, training_curves


def quiver_of(figure):
    from matplotlib.quiver import Quiver

    (quiver,) = [c for c in figure.axes[0].collections if isinstance(c, Quiver)]
    return quiver


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_field_slice_shows_the_plane_and_the_in_plane_components(axis):
    torch.manual_seed(0)
    field = torch.randn(1, 2 + 3 + 3, 5, 6, 7)  # 2x0e + 1o + 1e: show scalar 1 and the second vector (1e)
    figure = field_slice(field, "2x0e + 1o + 1e", scalar=1, vector=1, axis=axis, index=2, spacing=(1.0, 2.0, 0.5))
    plane = [a for a in range(3) if a != axis]
    expected = field[0].select(1 + axis, 2)  # [C, A, B]
    image = figure.axes[0].get_images()[0].get_array()
    np.testing.assert_allclose(np.asarray(image), expected[1].T.numpy(), rtol=1e-6)  # scalar copy 1, drawn transposed
    quiver = quiver_of(figure)
    np.testing.assert_allclose(quiver.U.ravel(), expected[5 + plane[0]].numpy().ravel(), rtol=1e-6)
    np.testing.assert_allclose(quiver.V.ravel(), expected[5 + plane[1]].numpy().ravel(), rtol=1e-6)
    spacing = (1.0, 2.0, 0.5)
    first = [-(field.shape[2 + a] - 1) / 2 * spacing[a] for a in plane]
    np.testing.assert_allclose(quiver.get_offsets()[0], first)  # arrows sit at the centred physical coordinates


def test_field_slice_refuses_bad_input():
    field = torch.zeros(4, 5, 5, 5)
    with pytest.raises(ValueError, match=r"expected \[4, X, Y, Z\]"):
        field_slice(field[:3], "0e + 1o")
    with pytest.raises(ValueError, match="vector: expected None or an index below 1"):
        field_slice(field, "0e + 1o", vector=1)
    with pytest.raises(ValueError, match="axis"):
        field_slice(field, "0e + 1o", axis="w")
    with pytest.raises(ValueError, match="nothing to draw"):
        field_slice(field, "0e + 1o", scalar=None, vector=None)
    with pytest.raises(ValueError, match="index"):
        field_slice(field, "0e + 1o", index=5)


def test_equivariance_bars_are_the_errors():
    errors = {"grid": {"0e": 1e-7, "1o": 2e-7}, "continuous": {"0e": 0.01, "1o": 0.03, "2e": 0.05}}
    figure = equivariance_bars(errors)
    heights = sorted(p.get_height() for p in figure.axes[0].patches)
    assert heights == pytest.approx(sorted([1e-7, 2e-7, 0.01, 0.03, 0.05]))
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["0e", "1o", "2e"]
    with pytest.raises(ValueError, match="empty"):
        equivariance_bars({})


def test_training_curves_mean_and_smoothing():
    figure = training_curves({"a": [[1.0, 3.0, 5.0, 7.0], [3.0, 5.0, 7.0, 9.0]]}, smooth=2, log=False)
    (line,) = figure.axes[0].get_lines()
    np.testing.assert_allclose(line.get_ydata(), [3.0, 5.0, 7.0])  # mean of the runs, moving average of 2
    np.testing.assert_allclose(line.get_xdata(), [1, 2, 3])
    with pytest.raises(ValueError, match="smooth"):
        training_curves({"a": [1.0]}, smooth=0)


def test_kernel_slices_show_the_basis():
    conv = SteerableConv3d("0e", "1o", 5)
    figure = kernel_basis_slices(conv, axis="y")
    block = conv.basis.sample(conv.spacing)[0]  # [paths, 3, 1, 5, 5, 5]
    images = [ax.get_images()[0].get_array() for ax in figure.axes if ax.get_images()]
    assert len(images) == block.shape[0] * 3
    np.testing.assert_allclose(np.asarray(images[2]), block[0, 2, 0, :, 2, :].T.numpy(), rtol=1e-6)  # path 0, z, plane y=0
    with pytest.raises(ValueError, match="parity selection rule"):
        kernel_basis_slices(SteerableConv3d("0e + 0o", "0e", 3), pair=(0, 1))
    with pytest.raises(TypeError, match="KernelBasis"):
        kernel_basis_slices(torch.nn.Conv3d(1, 1, 3))


def test_isosurfaces_follow_the_kernel():
    pytest.importorskip("skimage")
    from steerable3d.plot import _isosurfaces

    # the z component of a scalar-to-vector kernel is odd in z: a positive lobe above, its mirror image below
    conv = SteerableConv3d("0e", "1o", 5)
    volume = conv.basis.sample(0.25)[0][0, 2, 0].numpy()  # path 0, output z, 4x finer than the layer
    (plus, up, _), (minus, down, _) = _isosurfaces(volume, 0.4 * np.abs(volume).max(), (0.25,) * 3)
    assert (plus, minus) == (1, -1)
    assert (up[:, 2] > 0).all() and (down[:, 2] < 0).all()
    mirrored = down * np.array([1, 1, -1])
    np.testing.assert_allclose(np.sort(mirrored, axis=0), np.sort(up, axis=0), atol=1e-6)
    figure = kernel_isosurfaces(conv, entry=(2, 0), level=0.4)
    assert len(figure.axes[0].collections) == 2
    with pytest.raises(ValueError, match="level"):
        kernel_isosurfaces(conv, level=1.5)
