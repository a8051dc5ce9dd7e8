"""Pooling and upsampling of steerable fields: local averages, Gaussian low-pass subsampling, global
pooling to vectors (or invariants), and integer upsampling.

Every layer here acts on each channel alike (or on each field's norm), so it commutes with the
representation ``D(M)`` on the channels; exactness under the 48 grid symmetries then only depends on the
output grid being symmetric about the volume centre (see :mod:`steerable3d.sizes`).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F

from .._validation import Spacing, as_irreps, as_spacing, as_triple, check_field, field_blocks
from ..sizes import window_is_exact
from ._filters import antialias_std, gaussian_taps

__all__ = ["AvgPool3d", "NormMaxPool3d", "LowPassPool3d", "GlobalPool", "Upsample"]

IntOrTriple = Union[int, Sequence[int]]


def _positive_triple(value, name: str, minimum: int = 1) -> tuple[int, int, int]:
    try:
        triple = as_triple(value, name)
    except TypeError:  # e.g. a float, which as_triple tries to iterate
        raise ValueError(f"{name}: expected an int or three ints, got {value!r}") from None
    if min(triple) < minimum:
        raise ValueError(f"{name}: expected ints >= {minimum}, got {value!r}")
    return triple


class AvgPool3d(torch.nn.Module):
    r"""Average pooling of a steerable field, channel by channel (linear, hence equivariant).

    Shapes: ``[B, irreps.dim, X, Y, Z] -> [B, irreps.dim, X', Y', Z']`` with
    ``X' = (X + 2 padding - kernel_size) // stride + 1`` (floor, as ``torch.nn.AvgPool3d``). Units: voxels
    (sizes do not depend on the spacing; the output voxel is ``stride`` times larger).

    Padding is symmetric (``padding`` zeros on each side) and the zeros are *not* counted in the average
    (``count_include_pad=False``): a constant field stays constant up to the border. Both choices are
    symmetric under the grid flips because the padding is; this one avoids darkening the border.

    Exactness: the grid symmetries hold to float rounding on axes with ``(N + 2 padding - kernel_size) %
    stride == 0`` (:meth:`is_exact`): the default 2x2x2 window with stride 2 needs even sizes.

    Args:
        irreps: the field's irreps (``irreps_out == irreps_in``).
        kernel_size: int or three ints (x, y, z), the window in voxels.
        stride: int or three ints; default ``kernel_size``.
        padding: int or three ints, symmetric, at most half the window.

    Example:
        >>> pool = AvgPool3d("2x0e + 1o", 2)
        >>> pool(torch.randn(2, 5, 8, 8, 8)).shape
        torch.Size([2, 5, 4, 4, 4])
        >>> pool.is_exact((8, 8, 8)), pool.is_exact((9, 9, 9))
        (True, False)
    """

    def __init__(self, irreps, kernel_size: IntOrTriple = 2, stride: Optional[IntOrTriple] = None, padding: IntOrTriple = 0) -> None:
        super().__init__()
        self.irreps_in = as_irreps(irreps, "irreps")
        self.irreps_out = self.irreps_in
        self.kernel_size = _positive_triple(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _positive_triple(stride, "stride")
        self.padding = _positive_triple(padding, "padding", minimum=0)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"padding: expected at most half of kernel_size {self.kernel_size}, got {padding!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, irreps.dim, X, Y, Z] -> [B, irreps.dim, X', Y', Z']``."""
        check_field(x, self.irreps_in)
        return F.avg_pool3d(x, self.kernel_size, self.stride, self.padding, count_include_pad=False)

    def is_exact(self, spatial_shape: Sequence[int]) -> bool:
        """Whether an input of this spatial shape keeps the grid symmetries exact (about the centre)."""
        return all(
            window_is_exact(n, k, s, p) for n, k, s, p in zip(spatial_shape, self.kernel_size, self.stride, self.padding)
        )

    def extra_repr(self) -> str:
        return f"{self.irreps_in}, kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class LowPassPool3d(torch.nn.Module):
    r"""Gaussian anti-aliasing blur followed by subsampling: one depthwise ``conv3d`` (``groups=channels``)
    with a separable Gaussian kernel, the same on every channel (hence equivariant).

    Shapes: ``[B, irreps.dim, X, Y, Z] -> [B, irreps.dim, X', Y', Z']`` with
    ``X' = (X + 2p - k) // stride + 1`` for the blur length ``k`` and padding ``p`` below: ``X / stride``
    when ``stride`` divides ``X``, else about ``ceil(X / stride)``.

    Units: ``sigma`` is a physical length (same units as ``spacing``); the blur on axis ``a`` has a standard
    deviation of ``sigma / spacing[a]`` voxels. With ``sigma=None`` it is ``0.5 sqrt(stride^2 - 1)`` voxels
    on each axis (the anti-aliasing blur of :class:`~steerable3d.nn.SteerableConv3d`), whatever the spacing.
    The blur is cut at two deviations and normalized (a constant field stays constant away from the border).

    Exactness: the blur length and padding are picked per axis from the input size so that the output grid
    is symmetric. When ``stride`` divides ``N`` the windows are cell-centred: each output voxel is the
    centre of a block of ``stride`` input voxels (length of the parity of ``stride``, padding
    ``(k - stride) / 2``), as a U-Net's size convention wants. Otherwise an odd blur (padding
    ``(k - 1) / 2``) when ``(N - 1) % stride == 0`` and an even one (padding ``k / 2 - 1``) when
    ``(N - 2) % stride == 0``. So strides 2 and 3 keep every size exact, and stride ``s >= 4`` the sizes
    ``N = 0, 1, 2 (mod s)`` (:meth:`is_exact`).

    Args:
        irreps: the field's irreps (``irreps_out == irreps_in``).
        stride: int or three ints.
        spacing: voxel size (x, y, z) in physical units, used only with ``sigma``.
        sigma: blur standard deviation in physical units, or ``None`` (see above).
        padding_mode: ``"zeros"`` or ``"circular"`` (symmetric either way).

    Example:
        >>> pool = LowPassPool3d("0e + 1o", 2)
        >>> pool(torch.randn(2, 4, 9, 9, 9)).shape, pool(torch.randn(2, 4, 10, 10, 10)).shape
        (torch.Size([2, 4, 5, 5, 5]), torch.Size([2, 4, 5, 5, 5]))
        >>> pool.is_exact((9, 9, 9)), pool.is_exact((10, 10, 10))
        (True, True)
    """

    PADDING_MODES = ("zeros", "circular")

    def __init__(
        self,
        irreps,
        stride: IntOrTriple = 2,
        *,
        spacing: Spacing = 1.0,
        sigma: Optional[float] = None,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        self.irreps_in = as_irreps(irreps, "irreps")
        self.irreps_out = self.irreps_in
        self.stride = _positive_triple(stride, "stride")
        self.spacing = as_spacing(spacing)
        if sigma is not None:
            if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not (math.isfinite(sigma) and sigma > 0):
                raise ValueError(f"sigma: expected None or a positive physical length, got {sigma!r}")
            sigma = float(sigma)
        self.sigma = sigma
        if padding_mode not in self.PADDING_MODES:
            raise ValueError(f"padding_mode: expected one of {self.PADDING_MODES}, got {padding_mode!r}")
        self.padding_mode = padding_mode

    def std_voxels(self) -> tuple[float, float, float]:
        """The blur's standard deviation per axis in voxels."""
        if self.sigma is None:
            return tuple(antialias_std(s) for s in self.stride)
        return tuple(self.sigma / h for h in self.spacing)

    def _windows(self, spatial: Sequence[int]) -> list[tuple[torch.Tensor, int]]:
        """Per axis the 1-d blur and its padding, picked from the size so that the windows sit
        symmetrically: ``N % s == 0`` gives cell-centred windows (length of the parity of ``s``, at least
        ``s`` long, padding ``(k - s) / 2``, ``N / s`` outputs); ``N % s == 1`` odd windows on voxels;
        ``N % s == 2`` even windows between voxels (padding ``k / 2 - 1``); other sizes are not exact."""
        windows = []
        for n, s, std in zip(spatial, self.stride, self.std_voxels()):
            if s > 1 and n % s == 0:
                taps = gaussian_taps(std, even=s % 2 == 0)
                if len(taps) < s:  # a narrow blur still has to cover the s voxels of its cell
                    extra = (s - len(taps)) // 2
                    taps = torch.nn.functional.pad(taps, (extra, extra))
                windows.append((taps, (len(taps) - s) // 2))
            else:
                even = (n - 1) % s != 0 and (n - 2) % s == 0
                taps = gaussian_taps(std, even)
                windows.append((taps, (len(taps) - 1) // 2))
        return windows

    def taps(self, spatial_shape: Sequence[int]) -> list[torch.Tensor]:
        """The three 1-d float64 blurs (x, y, z) used for an input of this spatial shape."""
        return [taps for taps, _ in self._windows(spatial_shape)]

    def padding(self, spatial_shape: Sequence[int]) -> tuple[int, int, int]:
        """The symmetric zero (or circular) padding per axis used for an input of this spatial shape."""
        return tuple(p for _, p in self._windows(spatial_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, irreps.dim, X, Y, Z] -> [B, irreps.dim, X', Y', Z']``."""
        check_field(x, self.irreps_in)
        (tx, px), (ty, py), (tz, pz) = self._windows(x.shape[2:])
        kernel = tx[:, None, None] * ty[None, :, None] * tz[None, None, :]
        kernel = kernel.to(dtype=x.dtype, device=x.device)[None, None]
        padding = (px, py, pz)
        if self.padding_mode != "zeros":
            x = F.pad(x, [p for p in reversed(padding) for _ in range(2)], mode=self.padding_mode)
            padding = (0, 0, 0)
        # depthwise: the channels go into the batch (same result as groups=channels, much faster on CPU)
        batch, channels = x.shape[:2]
        y = F.conv3d(x.reshape(batch * channels, 1, *x.shape[2:]), kernel, None, self.stride, padding)
        return y.reshape(batch, channels, *y.shape[2:])

    def is_exact(self, spatial_shape: Sequence[int]) -> bool:
        """Whether an input of this spatial shape keeps the grid symmetries exact (about the centre)."""
        return all(
            window_is_exact(n, len(t), s, p) for n, (t, p), s in zip(spatial_shape, self._windows(spatial_shape), self.stride)
        )

    def extra_repr(self) -> str:
        return (
            f"{self.irreps_in}, stride={self.stride}, spacing={self.spacing}, sigma={self.sigma}, "
            f"padding_mode={self.padding_mode!r}"
        )


class GlobalPool(torch.nn.Module):
    r"""Pool a field over all space into one vector per batch element.

    Shapes: ``[B, irreps.dim, X, Y, Z] -> [B, irreps_out.dim]`` (2-d: no spatial axes left).

    Modes:
        ``"mean"``: the spatial mean of every channel.
        ``"max_norm"``: per field (each copy of each irrep) and batch element, the field's value at the
        voxel of largest norm. Ties are treated alike: the values at every voxel whose norm is within a
        relative tolerance of the maximum (``1e-6`` when the norms are computed in float32, which is used
        for float32 and lower precisions, ``1e-12`` in float64) are averaged, so a symmetric input (with
        exact ties) gives an equivariant answer. The gradient flows to the selected voxels only.

    With ``invariant=False`` ``irreps_out == irreps`` and the output transforms with ``D(M)``. With
    ``invariant=True`` every field becomes one O(3) invariant: ``0e`` fields stay as they are, every other
    field (``0o`` pseudoscalars included) becomes its Euclidean norm, so
    ``irreps_out = sum(mul x 0e)`` with the input's multiplicities (same order).

    Units: none (values keep the field's units). Exactness: every size and shape (no windows).

    Example:
        >>> pool = GlobalPool("2x0e + 1o", invariant=True)
        >>> pool.irreps_out
        2x0e+1x0e
        >>> pool(torch.randn(4, 5, 6, 6, 6)).shape
        torch.Size([4, 3])
    """

    MODES = ("mean", "max_norm")

    def __init__(self, irreps, mode: str = "mean", invariant: bool = False) -> None:
        super().__init__()
        self.irreps_in = as_irreps(irreps, "irreps")
        self._fields = field_blocks(self.irreps_in)
        if mode not in self.MODES:
            raise ValueError(f"mode: expected one of {self.MODES}, got {mode!r}")
        self.mode = mode
        self.invariant = bool(invariant)
        if self.invariant:
            self.irreps_out = as_irreps([(mul, "0e") for mul, _ in self.irreps_in], "irreps")
        else:
            self.irreps_out = self.irreps_in

    @staticmethod
    def _tolerance(dtype: torch.dtype) -> float:
        return 1e-12 if dtype == torch.float64 else 1e-6

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, irreps.dim, X, Y, Z] -> [B, irreps_out.dim]``."""
        check_field(x, self.irreps_in)
        batch = x.shape[0]
        flat = x.reshape(batch, x.shape[1], -1)
        norm_dtype = torch.promote_types(x.dtype, torch.float32)
        outputs = []
        for mul, l, p, dim, sl in self._fields:
            if mul == 0:
                continue
            field = flat[:, sl].reshape(batch, mul, dim, -1)  # [B, mul, d, V]
            if self.mode == "mean":
                value = field.mean(dim=-1)
            else:
                norms = torch.linalg.vector_norm(field.detach().to(norm_dtype), dim=2)  # [B, mul, V]
                peak = norms.amax(dim=-1, keepdim=True)
                mask = norms >= peak * (1 - self._tolerance(norm_dtype))
                weights = (mask / mask.sum(dim=-1, keepdim=True)).to(field.dtype)
                value = (field * weights[:, :, None, :]).sum(dim=-1)  # [B, mul, d]
            if self.invariant and (l, p) != (0, 1):
                value = _safe_norm(value)
            outputs.append(value.reshape(batch, -1))
        if not outputs:
            return x.new_zeros(batch, 0)
        return torch.cat(outputs, dim=1)

    def is_exact(self, spatial_shape: Sequence[int]) -> bool:
        """Always ``True``: pooling over all space has no windows."""
        return True

    def extra_repr(self) -> str:
        return f"{self.irreps_in} -> {self.irreps_out}, mode={self.mode!r}, invariant={self.invariant}"


def _safe_norm(v: torch.Tensor) -> torch.Tensor:
    """Norm over the last axis with a zero (not NaN) gradient at the origin. ``[..., d] -> [..., 1]``."""
    sq = v.pow(2).sum(dim=-1, keepdim=True)
    positive = sq > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, sq, torch.ones_like(sq))), torch.zeros_like(sq))


class Upsample(torch.nn.Module):
    r"""Integer upsampling of a field, channel by channel.

    Shapes: ``[B, irreps.dim, X, Y, Z] -> [B, irreps.dim, sX, sY, sZ]`` for scale factors ``s`` (per axis).
    Units: voxels (the output voxel is ``s`` times smaller).

    Modes: ``"nearest"`` repeats every voxel ``s`` times per axis (``repeat_interleave``, no float index
    arithmetic). ``"trilinear"`` is ``F.interpolate(..., align_corners=False)``: output index ``i`` samples
    the input at ``(i + 0.5) / s - 0.5``, clamped to the volume (``padding_mode="zeros"``, the name shared
    with the other layers: nothing is padded) or wrapped around it (``"circular"``, periodic boxes), which
    maps ``i -> sN - 1 - i`` onto ``N - 1 - (.)``, so the flips are kept.

    Exactness: every size (:meth:`is_exact` is always ``True``).

    Args:
        irreps: the field's irreps (``irreps_out == irreps_in``).
        scale_factor: a positive int or three ints (integral floats such as ``2.0`` are accepted).
        mode: ``"nearest"`` or ``"trilinear"``.
        padding_mode: ``"zeros"`` (trilinear clamps at the border) or ``"circular"`` (trilinear wraps
            around; periodic shifts by whole input voxels commute with the layer). Nearest needs neither.

    Example:
        >>> up = Upsample("0e + 1o", 2, mode="trilinear")
        >>> up(torch.randn(2, 4, 3, 3, 3)).shape
        torch.Size([2, 4, 6, 6, 6])
    """

    MODES = ("nearest", "trilinear")
    PADDING_MODES = ("zeros", "circular")

    def __init__(
        self, irreps, scale_factor: Union[int, Sequence[int]] = 2, mode: str = "nearest", padding_mode: str = "zeros"
    ) -> None:
        super().__init__()
        self.irreps_in = as_irreps(irreps, "irreps")
        self.irreps_out = self.irreps_in
        values = list(scale_factor) if isinstance(scale_factor, (list, tuple)) else [scale_factor] * 3
        ok = len(values) == 3 and all(
            not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and v == int(v) and v >= 1
            for v in values
        )
        if not ok:
            raise ValueError(f"scale_factor: expected a positive int or three positive ints, got {scale_factor!r}")
        self.scale_factor = tuple(int(v) for v in values)
        if mode not in self.MODES:
            raise ValueError(f"mode: expected one of {self.MODES}, got {mode!r}")
        self.mode = mode
        if padding_mode not in self.PADDING_MODES:
            raise ValueError(f"padding_mode: expected one of {self.PADDING_MODES}, got {padding_mode!r}")
        self.padding_mode = padding_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, irreps.dim, X, Y, Z] -> [B, irreps.dim, sX, sY, sZ]``."""
        check_field(x, self.irreps_in)
        if self.mode == "nearest":
            for axis, s in enumerate(self.scale_factor):
                if s > 1:
                    x = x.repeat_interleave(s, dim=2 + axis)
            return x
        if self.padding_mode == "circular":
            # one wrapped voxel per side covers every sample point; the crop keeps s N outputs per axis
            padded = F.pad(x, [1] * 6, mode="circular")
            size = tuple(n * s for n, s in zip(padded.shape[2:], self.scale_factor))
            y = F.interpolate(padded, size=size, mode="trilinear", align_corners=False)
            sx, sy, sz = self.scale_factor
            return y[:, :, sx:-sx, sy:-sy, sz:-sz]
        size = tuple(n * s for n, s in zip(x.shape[2:], self.scale_factor))
        return F.interpolate(x, size=size, mode="trilinear", align_corners=False)

    def is_exact(self, spatial_shape: Sequence[int]) -> bool:
        """Always ``True``."""
        return True

    def extra_repr(self) -> str:
        return f"{self.irreps_in}, scale_factor={self.scale_factor}, mode={self.mode!r}, padding_mode={self.padding_mode!r}"


class NormMaxPool3d(torch.nn.Module):
    r"""Max pooling by field norm: per field and window, the field value at the voxel whose norm is largest.

    Right for every batch element and every parity (a pseudoscalar is compared by ``|x|``, never by its
    signed value, which a reflection would flip). Max is discontinuous where two voxels tie, and inputs with
    a mirror symmetry tie exactly; so every voxel whose norm is within ``tolerance`` (relative) of the
    window's maximum counts as a maximizer, and the maximizers are averaged. Norms are computed in at least
    float32 (bfloat16/float16 inputs are promoted for the comparison).

    Shapes: ``[B, irreps.dim, X, Y, Z] -> [B, irreps.dim, X', Y', Z']``,
    ``X' = (X + 2 padding - kernel_size) // stride + 1``. Padding is symmetric zeros (a zero norm never
    beats a real value). Exact on axes with ``(N + 2 padding - kernel_size) % stride == 0``
    (:meth:`is_exact`): 2x2x2 windows need even sizes.

    Args:
        irreps: the field's irreps (``irreps_out == irreps_in``).
        kernel_size, stride, padding: ints or three ints, in voxels (``stride`` defaults to ``kernel_size``).
        tolerance: relative tie tolerance; default 1e-5 for float32 norms, 1e-12 for float64.

    Example:
        >>> pool = NormMaxPool3d("2x0e + 0o + 1o", 2)
        >>> pool(torch.randn(2, 6, 6, 6, 6)).shape
        torch.Size([2, 6, 3, 3, 3])
    """

    def __init__(self, irreps, kernel_size: IntOrTriple = 2, stride: Optional[IntOrTriple] = None, padding: IntOrTriple = 0, tolerance: Optional[float] = None) -> None:
        super().__init__()
        self.irreps_in = self.irreps_out = as_irreps(irreps, "irreps")
        self._fields = field_blocks(self.irreps_in)
        self.kernel_size = _positive_triple(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _positive_triple(stride, "stride")
        self.padding = _positive_triple(padding, "padding", minimum=0)
        if tolerance is not None and not 0 <= tolerance < 1:
            raise ValueError(f"tolerance: expected a relative tolerance in [0, 1), got {tolerance!r}")
        self.tolerance = tolerance

    def _windows(self, t: torch.Tensor) -> torch.Tensor:
        """``[..., X, Y, Z] -> [..., X', Y', Z', k]``: every window's voxels (padded with zeros)."""
        pad = [p for p in reversed(self.padding) for _ in range(2)]
        t = F.pad(t, pad) if any(self.padding) else t
        d = t.dim()
        t = t.unfold(d - 3, self.kernel_size[0], self.stride[0])
        t = t.unfold(d - 2, self.kernel_size[1], self.stride[1])
        t = t.unfold(d - 1, self.kernel_size[2], self.stride[2])
        return t.flatten(-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, irreps.dim, X, Y, Z] -> [B, irreps.dim, X', Y', Z']``."""
        check_field(x, self.irreps_in)
        norm_dtype = torch.promote_types(x.dtype, torch.float32)
        tolerance = self.tolerance if self.tolerance is not None else (1e-12 if norm_dtype == torch.float64 else 1e-5)
        outs = []
        for mul, _, _, dim, sl in self._fields:
            block = x[:, sl].unflatten(1, (mul, dim))  # [B, mul, d, X, Y, Z]
            norms = self._windows(block.to(norm_dtype).pow(2).sum(2))  # [B, mul, X', Y', Z', k]
            top = norms.amax(-1, keepdim=True)
            chosen = (norms >= top * (1 - tolerance) ** 2).to(x.dtype)  # squared norms: squared tolerance
            weights = chosen / chosen.sum(-1, keepdim=True)
            values = self._windows(block)  # [B, mul, d, X', Y', Z', k]
            outs.append((values * weights.unsqueeze(2)).sum(-1).flatten(1, 2))
        return torch.cat(outs, dim=1)

    def is_exact(self, spatial_shape: Sequence[int]) -> bool:
        """Whether an input of this spatial shape keeps the grid symmetries exact (about the centre)."""
        return all(window_is_exact(n, k, s, p) for n, k, s, p in zip(spatial_shape, self.kernel_size, self.stride, self.padding))

    def extra_repr(self) -> str:
        return f"{self.irreps_in}, kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
