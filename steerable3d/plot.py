"""Pictures of steerable networks: kernel bases, typed fields, equivariance errors and training curves.

Needs matplotlib (``pip install 'steerable3d[plot]'``; isosurfaces also scikit-image). Every function draws on
the axes it is given, or on a new :class:`matplotlib.figure.Figure` (no pyplot state, so it works under any
backend and in threads), and returns the figure; :func:`save_figure` writes one atomically.

Conventions as everywhere in steerable3d: tensor axes 2, 3, 4 (or 1, 2, 3 without a batch) are x, y, z, the
grid is centred, coordinates are physical (voxel index times ``spacing``, centre at 0), and ``l = 1``
components come in (x, y, z) order.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
import torch

from ._files import atomic_path
from ._validation import Spacing, as_irreps, as_spacing
from .basis import KernelBasis

__all__ = ["subplots", "kernel_basis_slices", "kernel_isosurfaces", "field_slice", "equivariance_bars", "training_curves",
           "save_figure"]

AXES = "xyz"


def _new_figure(figsize):
    try:
        from matplotlib.figure import Figure
    except ImportError as error:  # optional extra
        raise ImportError("steerable3d.plot needs matplotlib: pip install 'steerable3d[plot]'") from error
    return Figure(figsize=figsize, layout="constrained")


def subplots(rows: int = 1, columns: int = 1, *, figsize: tuple[float, float] | None = None):
    """``(figure, axes [rows, columns])``: a new figure with a grid of axes, like ``pyplot.subplots`` but
    without pyplot's global state (no backend is chosen, nothing stays open); ``figsize`` in inches,
    default 4 x 3.4 per panel. Draw on the axes with the functions below, then :func:`save_figure`.

    >>> figure, axes = subplots(1, 2)
    >>> axes.shape, len(figure.axes)
    ((1, 2), 2)
    """
    figure = _new_figure(figsize or (4.0 * columns, 3.4 * rows))
    return figure, figure.subplots(rows, columns, squeeze=False)


def _figure(ax, figsize):
    """``(figure, axes)``: the given axes, or one new axes on a new figure."""
    if ax is not None:
        return ax.figure, ax
    figure = _new_figure(figsize)
    return figure, figure.add_subplot()


def _axis(axis) -> int:
    """A spatial axis given as 0, 1, 2 or "x", "y", "z"."""
    if axis in (0, 1, 2) and not isinstance(axis, bool):
        return int(axis)
    if isinstance(axis, str) and axis in AXES:
        return AXES.index(axis)
    raise ValueError(f"axis: expected 0, 1, 2 or 'x', 'y', 'z', got {axis!r}")


def _coordinates(size: int, step: float) -> np.ndarray:
    """Physical coordinates of ``size`` voxels of side ``step``, centred on 0."""
    return (np.arange(size) - (size - 1) / 2) * step


def _basis_of(kernel) -> tuple[KernelBasis, tuple[float, float, float]]:
    """A :class:`~steerable3d.basis.KernelBasis` and its spacing, from a basis or a layer that has one."""
    if isinstance(kernel, KernelBasis):
        return kernel, kernel._at_construction[0]
    if isinstance(getattr(kernel, "basis", None), KernelBasis):
        return kernel.basis, kernel.spacing
    raise TypeError(f"expected a KernelBasis or a layer with one (SteerableConv3d), got {type(kernel).__name__}")


def _pair_block(basis: KernelBasis, pair: tuple[int, int], spacing) -> tuple[list, torch.Tensor]:
    if pair not in basis.pair_paths:
        raise ValueError(f"pair: expected (i_out, i_in) with i_out < {len(basis.irreps_out)} and i_in < {len(basis.irreps_in)}, got {pair!r}")
    paths = basis.pair_paths[pair]
    if not paths:
        out, inp = basis.irreps_out[pair[0]].ir, basis.irreps_in[pair[1]].ir
        raise ValueError(f"pair {pair}: no kernel maps {inp} to {out} (parity selection rule)")
    return paths, basis.sample(spacing)[list(basis.pair_paths).index(pair)]


def _component_label(l: int, m: int) -> str:
    return AXES[m] if l == 1 else ("" if l == 0 else f"m={m - l:+d}")


def kernel_basis_slices(kernel, pair: tuple[int, int] = (0, 0), *, axis=2, max_paths: int = 6, max_components: int = 9):
    """Central slices of the steerable kernel basis between one input and one output irrep.

    One row per basis function (filter order ``l_f`` and radial shell), one column per matrix entry of the
    ``(2 l_out + 1) x (2 l_in + 1)`` block (``l = 1`` entries labelled by axis); each image is the plane
    through the kernel centre perpendicular to ``axis``, in physical units, red positive and blue negative
    on a scale shared along the row.

    Args:
        kernel: a :class:`~steerable3d.basis.KernelBasis` (sampled at its construction spacing) or a layer
            with one, e.g. :class:`~steerable3d.nn.SteerableConv3d` (sampled at the layer's spacing).
        pair: ``(i_out, i_in)``, indices into the irreps lists (``Irreps("2x0e")`` is one irrep entry).
        axis: the slice normal, 0-2 or "x", "y", "z".
        max_paths, max_components: caps on rows and columns.

    >>> from steerable3d.nn import SteerableConv3d
    >>> figure = kernel_basis_slices(SteerableConv3d("0e", "1o", 5))   # scalar to vector: 3 entries
    >>> len(figure.axes)                                               # 2 shells x 3 components + a colour bar each
    8
    """
    basis, spacing = _basis_of(kernel)
    axis = _axis(axis)
    paths, block = _pair_block(basis, pair, spacing)
    paths, block = paths[:max_paths], block[:max_paths]
    l_out, l_in = basis.irreps_out[pair[0]].ir.l, basis.irreps_in[pair[1]].ir.l
    entries = [(mo, mi) for mo in range(2 * l_out + 1) for mi in range(2 * l_in + 1)][:max_components]
    plane = [a for a in range(3) if a != axis]
    extent = []
    for a in plane:
        c = _coordinates(block.shape[3 + a], spacing[a])
        extent += [c[0] - spacing[a] / 2, c[-1] + spacing[a] / 2]

    figure = _new_figure((1.9 * len(entries) + 0.8, 1.9 * len(paths) + 0.4))
    grid = figure.subplots(len(paths), len(entries), squeeze=False)
    for row, path, functions in zip(grid, paths, block):
        middle = functions.select(2 + axis, functions.shape[2 + axis] // 2)  # [2 l_out + 1, 2 l_in + 1, A, B]
        scale = float(middle.abs().max()) or 1.0
        for ax, (mo, mi) in zip(row, entries):
            image = ax.imshow(middle[mo, mi].T.numpy(), origin="lower", extent=extent, cmap="RdBu_r", vmin=-scale, vmax=scale)
            ax.set_xticks([])
            ax.set_yticks([])
            label = ", ".join(s for s in (_component_label(l_out, mo) and f"out {_component_label(l_out, mo)}",
                                          _component_label(l_in, mi) and f"in {_component_label(l_in, mi)}") if s)
            if label:
                ax.set_title(label, fontsize=8)
        row[0].set_ylabel(f"l_f={path.l}, r={basis.shells[path.shell].radius:.3g}", fontsize=8)
        figure.colorbar(image, ax=list(row), shrink=0.8)
    out, inp = basis.irreps_out[pair[0]].ir, basis.irreps_in[pair[1]].ir
    figure.suptitle(f"kernel basis {inp} -> {out}: slices {AXES[plane[0]]}{AXES[plane[1]]} through the centre", fontsize=10)
    return figure


def kernel_isosurfaces(kernel, pair: tuple[int, int] = (0, 0), path: int = 0, entry: tuple[int, int] = (0, 0), *,
                       level: float = 0.3, refine: int = 3, ax=None):
    """Isosurfaces of one kernel basis function at ``+-level`` times its largest magnitude (red positive,
    blue negative), sampled ``refine`` times finer than the layer's voxels for a smooth picture.

    Args:
        kernel: a :class:`~steerable3d.basis.KernelBasis` or a layer with one.
        pair: ``(i_out, i_in)`` irrep indices; ``path``: index into that pair's basis functions;
            ``entry``: ``(m_out, m_in)`` matrix entry of the block.
        level: fraction of the largest magnitude, in (0, 1).
        ax: 3D axes (``projection="3d"``) to draw on.

    >>> from steerable3d.nn import SteerableConv3d
    >>> figure = kernel_isosurfaces(SteerableConv3d("0e", "1o", 5), entry=(2, 0))   # the z component: two lobes
    >>> len(figure.axes[0].collections)
    2
    """
    basis, spacing = _basis_of(kernel)
    if not 0 < level < 1:
        raise ValueError(f"level: expected a fraction of the largest magnitude in (0, 1), got {level!r}")
    if isinstance(refine, bool) or not isinstance(refine, int) or refine < 1:
        raise ValueError(f"refine: expected a positive integer, got {refine!r}")
    fine = tuple(s / refine for s in spacing)
    paths, block = _pair_block(basis, pair, fine)
    if not 0 <= path < len(paths):
        raise ValueError(f"path: expected an index below {len(paths)} (the basis functions of pair {pair}), got {path!r}")
    if not (0 <= entry[0] < block.shape[1] and 0 <= entry[1] < block.shape[2]):
        raise ValueError(f"entry: expected (m_out, m_in) within {tuple(block.shape[1:3])}, got {entry!r}")
    volume = block[path, entry[0], entry[1]].numpy()
    threshold = level * float(np.abs(volume).max())
    if ax is None:
        ax = _new_figure((4.2, 4.2)).add_subplot(projection="3d")
    figure = ax.figure
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    for sign, vertices, faces in _isosurfaces(volume, threshold, fine):
        colour = "tab:red" if sign > 0 else "tab:blue"
        ax.add_collection3d(Poly3DCollection(vertices[faces], facecolor=colour, edgecolor="none", alpha=0.55))
    half = max((n - 1) / 2 * f for n, f in zip(volume.shape, fine))
    ax.set(xlim=(-half, half), ylim=(-half, half), zlim=(-half, half), xlabel="x", ylabel="y", zlabel="z")
    ax.set_box_aspect((1, 1, 1))
    l_f = paths[path].l
    ax.set_title(f"{basis.irreps_in[pair[1]].ir} -> {basis.irreps_out[pair[0]].ir}, l_f={l_f}, entry {tuple(entry)}\n"
                 f"surfaces at +-{level:g} of the largest value", fontsize=8)
    return figure


def _isosurfaces(volume: np.ndarray, threshold: float, step: tuple[float, float, float]) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """``(sign, vertices [V, 3], faces [F, 3])`` of the surfaces ``sign * volume = threshold`` (marching
    cubes), vertices in centred physical coordinates, for each sign whose region is not empty."""
    from skimage.measure import marching_cubes

    origin = np.array([(n - 1) / 2 * h for n, h in zip(volume.shape, step)])
    surfaces = []
    for sign in (1, -1):
        if (sign * volume).max() > threshold:
            # the zero pad closes surfaces cut by the box; it shifts indices by one
            vertices, faces, _, _ = marching_cubes(np.pad(sign * volume, 1), threshold, spacing=step)
            surfaces.append((sign, vertices - origin - np.array(step), faces))
    return surfaces


def _copies(irreps) -> list[tuple[int, int, int]]:
    """``(l, parity, channel offset)`` of every irrep copy, in channel order."""
    copies, offset = [], 0
    for mul, ir in irreps:
        for _ in range(mul):
            copies.append((ir.l, ir.p, offset))
            offset += ir.dim
    return copies


def field_slice(field: torch.Tensor, irreps, *, scalar: int | None = 0, vector: int | None = 0, axis=2,
                index: int | None = None, spacing: Spacing = 1.0, every: int = 1, ax=None, title: str | None = None):
    """One plane of a typed field: a scalar copy as an image and a vector copy as arrows of its in-plane
    components.

    Args:
        field: ``[C, X, Y, Z]`` or ``[1, C, X, Y, Z]`` with ``C = irreps.dim``.
        irreps: the field's irreps.
        scalar: which ``l = 0`` copy to show as the image (0 is the first), or None.
        vector: which ``l = 1`` copy to show as arrows, or None.
        axis: the plane's normal, 0-2 or "x", "y", "z"; ``index``: the plane (default the middle one).
        spacing: voxel size (physical units), for the axes.
        every: an arrow every ``every`` voxels.

    >>> x = torch.linspace(-1, 1, 9)
    >>> bump = torch.exp(-4 * (x[:, None, None] ** 2 + x[None, :, None] ** 2 + x[None, None, :] ** 2))
    >>> field = torch.cat([bump[None], torch.stack(torch.gradient(bump))])     # 0e + 1o: a bump and its gradient
    >>> figure = field_slice(field, "0e + 1o", spacing=0.25)
    >>> len(figure.axes)                                                        # the plane and a colour bar
    2
    """
    irreps = as_irreps(irreps, "irreps")
    if field.dim() == 5 and field.shape[0] == 1:
        field = field[0]
    if field.dim() != 4 or field.shape[0] != irreps.dim:
        raise ValueError(f"field: expected [{irreps.dim}, X, Y, Z] or [1, {irreps.dim}, X, Y, Z] for irreps {irreps}, "
                         f"got {tuple(field.shape)}")
    axis, spacing = _axis(axis), as_spacing(spacing)
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every: expected a positive integer, got {every!r}")
    copies = _copies(irreps)
    scalars, vectors = [c for c in copies if c[0] == 0], [c for c in copies if c[0] == 1]
    for name, choice, available in (("scalar", scalar, scalars), ("vector", vector, vectors)):
        if choice is not None and not 0 <= choice < len(available):
            raise ValueError(f"{name}: expected None or an index below {len(available)} (the l={int(name == 'vector')} "
                             f"copies of {irreps}), got {choice!r}")
    if scalar is None and vector is None:
        raise ValueError("field_slice: nothing to draw (scalar and vector are both None)")
    if index is None:
        index = field.shape[1 + axis] // 2
    if not 0 <= index < field.shape[1 + axis]:
        raise ValueError(f"index: expected a plane below {field.shape[1 + axis]} along {AXES[axis]}, got {index!r}")
    plane = [a for a in range(3) if a != axis]
    values = field.detach().cpu().double().select(1 + axis, index).numpy()  # [C, A, B]
    u, v = (_coordinates(field.shape[1 + a], spacing[a]) for a in plane)
    figure, ax = _figure(ax, (4.6, 4.0))
    if scalar is not None:
        l, p, offset = scalars[scalar]
        image = values[offset]
        scale = float(np.abs(image).max()) or 1.0
        signed = image.min() < 0
        extent = [u[0] - spacing[plane[0]] / 2, u[-1] + spacing[plane[0]] / 2, v[0] - spacing[plane[1]] / 2, v[-1] + spacing[plane[1]] / 2]
        shown = ax.imshow(image.T, origin="lower", extent=extent, cmap="RdBu_r" if signed else "viridis",
                          vmin=-scale if signed else None, vmax=scale if signed else None)
        figure.colorbar(shown, ax=ax, shrink=0.85, label=f"scalar {scalar} ({'0e' if p == 1 else '0o'})")
    if vector is not None:
        _, p, offset = vectors[vector]
        grid_u, grid_v = np.meshgrid(u[::every], v[::every], indexing="ij")
        arrows_u = values[offset + plane[0], ::every, ::every]
        arrows_v = values[offset + plane[1], ::every, ::every]
        ax.quiver(grid_u, grid_v, arrows_u, arrows_v, color="black", angles="xy", pivot="middle",
                  label=f"vector {vector} ({'1e' if p == 1 else '1o'}), in-plane part")
    ax.set(xlabel=AXES[plane[0]], ylabel=AXES[plane[1]], aspect="equal")
    ax.set_title(title or f"{irreps}: plane {AXES[axis]} = {_coordinates(field.shape[1 + axis], spacing[axis])[index]:.3g}", fontsize=9)
    return figure


def equivariance_bars(errors: Mapping, *, ax=None, tolerance: float | None = None, title: str | None = None):
    """Equivariance error per output irrep as bars on a log scale.

    Args:
        errors: ``{irrep: error}`` as returned by :func:`~steerable3d.testing.equivariance_error`, or
            ``{label: {irrep: error}}`` to compare several settings (e.g. grid symmetries against continuous
            rotations), drawn side by side.
        tolerance: drawn as a dashed line if given.

    >>> figure = equivariance_bars({"grid": {"0e": 2e-7, "1o": 3e-7}, "continuous": {"0e": 0.02, "1o": 0.04}},
    ...                            tolerance=1e-5)
    >>> len(figure.axes[0].patches)          # 2 settings x 2 irreps
    4
    """
    if not errors:
        raise ValueError("errors: expected {irrep: error} or {label: {irrep: error}}, got an empty mapping")
    groups = errors if all(isinstance(v, Mapping) for v in errors.values()) else {"": errors}
    irreps = list(dict.fromkeys(ir for group in groups.values() for ir in group))
    legend = len(groups) > 1 or tolerance is not None
    figure, ax = _figure(ax, (1.6 + 0.9 * len(irreps) * len(groups) ** 0.5 + 2.6 * legend, 3.4))
    width = 0.8 / len(groups)
    for i, (label, group) in enumerate(groups.items()):
        positions = [j + (i - (len(groups) - 1) / 2) * width for j, ir in enumerate(irreps) if ir in group]
        heights = [max(float(group[ir]), 1e-18) for ir in irreps if ir in group]  # a log axis cannot show 0
        ax.bar(positions, heights, width=width, color=f"C{i}", label=label or None)
    if tolerance is not None:
        ax.axhline(tolerance, color="grey", linestyle="--", linewidth=1, label=f"tolerance {tolerance:g}")
    ax.set_yscale("log")
    ax.set_xticks(range(len(irreps)), irreps)
    ax.set(xlabel="output irrep", ylabel="relative error", title=title or "equivariance error per irrep")
    if legend:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: bars span the whole height
    return figure


def training_curves(curves: Mapping[str, Sequence], *, ax=None, ylabel: str = "loss", log: bool = True, smooth: int = 1,
                    title: str | None = None):
    """Training curves, one colour per name: a list of numbers is one run; a list of runs (e.g. seeds) is
    drawn as its mean with the min-max band.

    Args:
        curves: ``{name: [value per step]}`` or ``{name: [[value per step], ...]}``.
        smooth: moving-average window in steps (1: raw).
        log: logarithmic y axis.

    >>> figure = training_curves({"ours": [1.0, 0.5, 0.2], "plain": [[1.0, 0.8, 0.7], [1.1, 0.7, 0.6]]})
    >>> [line.get_label() for line in figure.axes[0].get_lines()]
    ['ours', 'plain (2 runs)']
    """
    if not curves:
        raise ValueError("curves: expected {name: values}, got an empty mapping")
    if isinstance(smooth, bool) or not isinstance(smooth, int) or smooth < 1:
        raise ValueError(f"smooth: expected a positive integer window, got {smooth!r}")
    figure, ax = _figure(ax, (5.0, 3.4))
    for i, (name, values) in enumerate(curves.items()):
        runs = [np.asarray(r, dtype=float) for r in values] if len(values) and np.ndim(values[0]) == 1 else [np.asarray(values, dtype=float)]
        length = min(len(r) for r in runs)
        runs = np.stack([r[:length] for r in runs])
        if smooth > 1 and length >= smooth:
            kernel = np.ones(smooth) / smooth
            runs = np.stack([np.convolve(r, kernel, mode="valid") for r in runs])
        steps = np.arange(runs.shape[1]) + (smooth - 1 if length >= smooth else 0)
        label = name if len(runs) == 1 else f"{name} ({len(runs)} runs)"
        ax.plot(steps, runs.mean(0), color=f"C{i}", label=label)
        if len(runs) > 1:
            ax.fill_between(steps, runs.min(0), runs.max(0), color=f"C{i}", alpha=0.2, linewidth=0)
    if log:
        ax.set_yscale("log")
    ax.set(xlabel="step", ylabel=ylabel, title=title or "training")
    ax.legend(fontsize=8)
    return figure


def save_figure(figure, path: str | os.PathLike, dpi: int = 120) -> None:
    """Write ``figure`` to ``path`` (format from the extension: png, pdf, svg...) atomically: a crash leaves
    the previous file or the new one, never half of one.

    >>> import pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     save_figure(training_curves({"run": [3.0, 2.0, 1.0]}), pathlib.Path(folder) / "curve.png")
    ...     (pathlib.Path(folder) / "curve.png").read_bytes()[:4]
    b'\\x89PNG'
    """
    suffix = os.path.splitext(str(path))[1]
    if not suffix:
        raise ValueError(f"path: expected a file name with an extension (.png, .pdf, .svg), got {str(path)!r}")
    with atomic_path(path, suffix=suffix) as temporary:
        figure.savefig(temporary, dpi=dpi)

