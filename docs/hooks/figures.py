"""MkDocs hook: draws the small figures the concept pages show (docs/figures/, not committed) with
steerable3d.plot before the pages are collected, so the pictures always match the code."""

from __future__ import annotations

from pathlib import Path

FIGURES = Path(__file__).resolve().parent.parent / "figures"


def on_pre_build(config, **kwargs) -> None:
    import torch

    from steerable3d import grid_symmetries, transform_field
    from steerable3d.nn import SteerableConv3d
    from steerable3d.plot import equivariance_bars, field_slice, kernel_basis_slices, kernel_isosurfaces, save_figure
    from steerable3d.testing import equivariance_error

    FIGURES.mkdir(exist_ok=True)
    torch.manual_seed(0)
    save_figure(kernel_basis_slices(SteerableConv3d("0e", "1o", 7)), FIGURES / "kernel_0e_1o.png", dpi=90)
    save_figure(kernel_basis_slices(SteerableConv3d("1o", "1o", 5), max_paths=3), FIGURES / "kernel_1o_1o.png", dpi=90)

    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 3.6), layout="constrained")
    conv = SteerableConv3d("0e", "2e", 7)
    for i, m in enumerate((0, 2, 4)):
        kernel_isosurfaces(conv, entry=(m, 0), ax=figure.add_subplot(1, 3, i + 1, projection="3d"))
    save_figure(figure, FIGURES / "kernel_0e_2e_isosurfaces.png", dpi=90)

    # two scalar bumps of different sizes, the field a steerable layer makes of them, and the same after a
    # quarter turn about z (a grid symmetry that keeps the plane z = 0): the arrows turn with the pattern
    size = 21
    x = torch.linspace(-1, 1, size, dtype=torch.float64)
    r2 = lambda cx, cy: (x[:, None, None] - cx) ** 2 + (x[None, :, None] - cy) ** 2 + x[None, None, :] ** 2
    bumps = torch.exp(-12 * r2(0.35, 0.2)) + 0.6 * torch.exp(-25 * r2(-0.4, -0.3))
    layer = SteerableConv3d("0e", "0e + 1o", 5).double()
    with torch.no_grad():
        layer.weight.normal_()
        field = layer(bumps[None, None])
    quarter_turn = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    assert any(torch.equal(quarter_turn, g) for g in grid_symmetries())
    figure = Figure(figsize=(9, 3.8), layout="constrained")
    field_slice(field, "0e + 1o", every=2, ax=figure.add_subplot(1, 2, 1), title="f(x): scalar and vector outputs")
    turned = transform_field(field, "0e + 1o", quarter_turn)
    field_slice(turned, "0e + 1o", every=2, ax=figure.add_subplot(1, 2, 2), title="g f(x), g a quarter turn about z")
    save_figure(figure, FIGURES / "field_slice.png", dpi=90)

    smooth = torch.nn.functional.avg_pool3d(torch.randn(1, 1, 29, 29, 29, dtype=torch.float64), 5, 1, 2)
    smooth = torch.nn.functional.avg_pool3d(smooth, 5, 1, 2)
    conv = SteerableConv3d("0e", "0e + 1o + 2e", 5).double()
    errors = {
        "48 grid symmetries (exact)": equivariance_error(conv, smooth, "0e", "0e + 1o + 2e"),
        "random rotations (resampled)": equivariance_error(conv, smooth, "0e", "0e + 1o + 2e", group="continuous", rotations=4),
    }
    save_figure(equivariance_bars(errors, tolerance=1e-12, title="SteerableConv3d 0e -> 0e + 1o + 2e, float64"),
                FIGURES / "equivariance_bars.png", dpi=90)
