"""An equivariant U-Net for segmentation and field-to-field models, with MONAI ``UNet``'s arguments."""

from __future__ import annotations

import math
from typing import Sequence, Union

import torch
import torch.utils.checkpoint
from e3nn import o3

from .._validation import Spacing, as_irreps, as_spacing, check_field
from ..nn import BatchNorm3d, Concatenate, Gate, InstanceNorm3d, LowPassPool3d, Residual, Sequential, SteerableConv3d, Upsample

__all__ = ["EquivariantUNet", "irreps_for_width"]

Stride = Union[int, Sequence[int]]


def irreps_for_width(width: int) -> o3.Irreps:
    """The hidden irreps of a U-Net level of ``width`` channels: about half of the channels scalars (``0e``),
    a quarter vectors (``1o``, 3 channels each) and a quarter ``l = 2`` tensors (``2e``, 5 channels each),
    at least one of each, so that ``irreps.dim`` is close to ``width`` (equal for multiples of 60).

    These are the parity classes a scalar image reaches by convolution, so the same irreps serve
    ``parity=False`` and ``parity=True``.

    >>> irreps_for_width(16), irreps_for_width(32), irreps_for_width(60)
    (8x0e+1x1o+1x2e, 13x0e+3x1o+2x2e, 30x0e+5x1o+3x2e)
    """
    if isinstance(width, bool) or not isinstance(width, int) or width < 12:
        raise ValueError(f"width: expected an int >= 12 (a third scalars, one vector and one l=2 field at least), got {width!r}")
    vectors = max(1, round(width / 12))
    tensors = max(1, round(width / 20))
    scalars = width - 3 * vectors - 5 * tensors
    return o3.Irreps(f"{scalars}x0e + {vectors}x1o + {tensors}x2e")


def _stride_triple(stride: Stride, level: int) -> tuple[int, int, int]:
    values = list(stride) if isinstance(stride, (list, tuple)) else [stride] * 3
    if len(values) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        raise ValueError(f"strides[{level}]: expected a positive int or three positive ints, got {stride!r}")
    return tuple(values)


NORMS = {"instance": InstanceNorm3d, "batch": BatchNorm3d, None: None}


class _Block(Sequential):
    """``convolutions`` x (steerable convolution, norm, gate): ``irreps_in -> irreps`` (sorted)."""

    def __init__(self, irreps_in, irreps, convolutions: int, kernel_size: int, spacing, parity: bool, padding_mode: str, norm):
        layers: list[torch.nn.Module] = []
        current = as_irreps(irreps_in)
        for _ in range(convolutions):
            gate = Gate.for_output(irreps, act_even=torch.nn.functional.silu)
            # no conv bias before a norm: the norm centres 0e fields, so that bias would get only rounding noise
            # as gradient (which Adam turns into lr-sized steps) and do nothing
            layers.append(SteerableConv3d(
                current, gate.irreps_in, kernel_size, spacing=spacing, parity=parity, padding_mode=padding_mode, bias=norm is None
            ))
            if NORMS[norm] is not None:
                layers.append(NORMS[norm](gate.irreps_in))
            layers.append(gate)
            current = gate.irreps_out
        super().__init__(*layers)


class EquivariantUNet(torch.nn.Module):
    r"""U-Net of steerable convolutions: scalar image channels in, scalar logits (or any scalar maps, or with
    ``irreps_out=`` vector and tensor fields) out.

    Drop-in for MONAI's ``UNet(spatial_dims, in_channels, out_channels, channels, strides)``: input
    ``[B, in_channels, X, Y, Z]``, output ``[B, out_channels, X, Y, Z]``, both ``0e``.

    Layout, for levels ``i = 0 .. L-1`` (``L = len(channels)``, ``len(strides) = L - 1``):

    * encoder: level ``i > 0`` starts with a Gaussian low-pass subsampling by ``strides[i-1]``
      (:class:`~steerable3d.nn.LowPassPool3d`; cell-centred windows when the stride divides the size, so the
      output grid stays centred), then ``convolutions`` x (:class:`~steerable3d.nn.SteerableConv3d`, a norm,
      :class:`~steerable3d.nn.Gate`) to the level's irreps;
    * decoder: from level ``i + 1`` back to ``i``, trilinear upsampling by ``strides[i]``, one gated
      convolution to level ``i``'s irreps, concatenation with the encoder's level-``i`` output (the skip),
      and ``convolutions`` gated convolutions;
    * head: a 1x1x1 convolution to ``out_channels x 0e`` or ``irreps_out`` (bias on its ``0e`` channels).

    With ``residual=True`` each of these blocks of gated convolutions also adds a 1x1x1 convolution of its
    input to its output (:class:`~steerable3d.nn.Residual`), with no norm on that path: MONAI's residual
    units (``num_res_units``). A normalized block sees its input only relative to the statistics of the
    volume; the residual path carries absolute values (an image's intensity) through the network.

    Widths: ``channels[i]`` becomes :func:`irreps_for_width` ``(channels[i])`` (half scalars, a quarter ``1o``
    vectors, a quarter ``2e`` tensors, counted in channels); ``irreps=[...]`` gives every level's irreps
    instead. Each gated convolution also outputs one gate scalar per ``l > 0`` field.

    Symmetry: ``parity=True`` is O(3)-equivariant (exact under the 48 grid symmetries), ``parity=False``
    SO(3) (exact under the 24 grid rotations). Exact for every batch size on sizes where every axis is
    divisible by the product of the strides along it (MONAI's size convention); other sizes raise a
    ``ValueError``. Continuous rotations hold approximately (kernels are sampled on the grid).

    Units: kernels live in physical units. ``spacing`` is the input's voxel size (mm, or any unit); level
    ``i`` works at that spacing times the strides so far, and its filters have ``kernel_size`` taps along
    the finest axis at the spacing given to the constructor (a physical radius of
    ``kernel_size // 2`` times the level's finest voxel size). Setting ``unet.spacing = ...`` resamples every
    filter for another grid with the same weights: the radii stay, the number of taps follows.

    Args:
        spatial_dims: must be 3.
        in_channels, out_channels: scalar channels in and out.
        channels: width per level (ints), see above.
        strides: ``len(channels) - 1`` downsampling factors, each an int or three ints.
        irreps: optional irreps per level (strings or ``Irreps``), overriding ``channels``' rule.
        parity: O(3) (True) or SO(3) (False).
        spacing: input voxel size (x, y, z), one number or three.
        kernel_size: odd number of taps along the finest axis at level 0.
        convolutions: gated convolutions per level and per side.
        padding_mode: ``"zeros"`` or ``"circular"`` (periodic boxes).
        norm: ``"instance"`` (:class:`~steerable3d.nn.InstanceNorm3d`, statistics of each input volume, as
            MONAI's default), ``"batch"`` (:class:`~steerable3d.nn.BatchNorm3d`, running statistics in eval
            mode) or ``None``. Instance statistics are taken over the grid-aligned box of the input, whose
            content changes under a continuous rotation and with the patch size; with ``"batch"`` the
            trained network is a fixed local operator (see ``docs/segmentation.md``).
        residual: add the un-normalized 1x1x1 path described above to every block.
        irreps_out: output irreps for field-to-field models (e.g. ``"1x1o"`` for a displacement), of dimension
            ``out_channels``; every irrep must be among the first level's (the head is a 1x1x1 convolution).
            Default ``out_channels x 0e``.
        checkpointing: activation checkpointing in training: each block (gated convolutions of a level,
            an upsampling step) keeps only its input and recomputes its inside during the backward pass,
            trading about one more forward pass for memory (``docs/benchmarks.md`` has the figures). Also
            an attribute that can be switched later. Not with ``norm="batch"``: the recomputation would
            update the running statistics twice.

    Example:
        >>> unet = EquivariantUNet(3, 1, 2, channels=(16, 32), strides=(2,))
        >>> unet.irreps_in, unet.irreps_out, unet.level_irreps
        (1x0e, 2x0e, [8x0e+1x1o+1x2e, 13x0e+3x1o+2x2e])
        >>> unet(torch.randn(2, 1, 8, 8, 8)).shape
        torch.Size([2, 2, 8, 8, 8])
    """

    PADDING_MODES = ("zeros", "circular")

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        channels: Sequence[int],
        strides: Sequence[Stride],
        *,
        irreps: Sequence | None = None,
        parity: bool = False,
        spacing: Spacing = 1.0,
        kernel_size: int = 5,
        convolutions: int = 2,
        padding_mode: str = "zeros",
        norm: str | None = "instance",
        checkpointing: bool = False,
        residual: bool = False,
        irreps_out=None,
    ) -> None:
        super().__init__()
        if spatial_dims != 3:
            raise ValueError(f"spatial_dims: expected 3 (steerable kernels are 3-d), got {spatial_dims!r}")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("convolutions", convolutions)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        channels = list(channels)
        if len(channels) < 1:
            raise ValueError("channels: expected at least one level width")
        if len(strides) != len(channels) - 1:
            raise ValueError(
                f"strides: expected len(channels) - 1 = {len(channels) - 1} entries (one per downsampling), got {len(strides)}"
            )
        if padding_mode not in self.PADDING_MODES:
            raise ValueError(f"padding_mode: expected one of {self.PADDING_MODES}, got {padding_mode!r}")
        if norm not in NORMS:
            raise ValueError(f"norm: expected 'instance', 'batch' or None, got {norm!r}")
        if not isinstance(residual, bool):
            raise ValueError(f"residual: expected a bool, got {residual!r}")
        self.norm = norm
        self.residual = residual
        self.checkpointing = checkpointing
        self.strides = [_stride_triple(s, i) for i, s in enumerate(strides)]
        if irreps is None:
            self.level_irreps = [irreps_for_width(c) for c in channels]
        else:
            if len(irreps) != len(channels):
                raise ValueError(f"irreps: expected one per level ({len(channels)}), got {len(irreps)}")
            self.level_irreps = [as_irreps(ir, f"irreps[{i}]").sort().irreps.simplify() for i, ir in enumerate(irreps)]
        self.parity = bool(parity)
        self.irreps_in = o3.Irreps(f"{in_channels}x0e")
        self.irreps_out = o3.Irreps(f"{out_channels}x0e") if irreps_out is None else as_irreps(irreps_out, "irreps_out")
        if self.irreps_out.dim != out_channels:
            raise ValueError(f"irreps_out: expected {out_channels} channels (out_channels), got {self.irreps_out} of dimension {self.irreps_out.dim}")
        reachable = {(ir.l, ir.p) for _, ir in self.level_irreps[0]}
        missing = [str(ir) for _, ir in self.irreps_out if (ir.l, ir.p) not in reachable]
        if missing:  # the 1x1x1 head maps each irrep to itself only
            raise ValueError(f"irreps_out: {', '.join(missing)} not among the first level's irreps {self.level_irreps[0]}")
        self._spacing = as_spacing(spacing)
        levels = self._level_spacings(self._spacing)

        def block(irreps_in, irreps_out, level, n):
            body = _Block(irreps_in, irreps_out, n, kernel_size, levels[level], self.parity, padding_mode, norm)
            if not residual:
                return body
            # the 1x1x1 path maps each irrep to itself: output irreps absent from the input get none
            projection = SteerableConv3d(irreps_in, body.irreps_out, 1, spacing=levels[level], parity=self.parity, allow_unreachable=True)
            return Residual(body, projection)

        self.down = torch.nn.ModuleList()
        self.encoder = torch.nn.ModuleList()
        previous = self.irreps_in
        for i, ir in enumerate(self.level_irreps):
            if i > 0:
                self.down.append(LowPassPool3d(previous, self.strides[i - 1], padding_mode=padding_mode))
            self.encoder.append(block(previous, ir, i, convolutions))
            previous = self.encoder[-1].irreps_out
        self.up = torch.nn.ModuleList()
        self.merge = torch.nn.ModuleList()
        self.decoder = torch.nn.ModuleList()
        for i in reversed(range(len(channels) - 1)):
            skip = self.encoder[i].irreps_out
            self.up.append(Sequential(Upsample(previous, self.strides[i], mode="trilinear", padding_mode=padding_mode), block(previous, skip, i, 1)))
            self.merge.append(Concatenate(skip, skip, sort=True))
            self.decoder.append(block(self.merge[-1].irreps_out, self.level_irreps[i], i, convolutions))
            previous = self.decoder[-1].irreps_out
        self.head = SteerableConv3d(previous, self.irreps_out, 1, spacing=levels[0], parity=self.parity)

    def _level_spacings(self, spacing: tuple[float, float, float]) -> list[tuple[float, float, float]]:
        """Voxel size of each level: the input's times the (integer) product of the strides so far."""
        levels, multiple = [spacing], (1, 1, 1)
        for stride in self.strides:
            multiple = tuple(m * s for m, s in zip(multiple, stride))
            levels.append(tuple(h * m for h, m in zip(spacing, multiple)))
        return levels

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Input voxel size (x, y, z). Setting it resamples every convolution's filters."""
        return self._spacing

    @spacing.setter
    def spacing(self, value: Spacing) -> None:
        value = as_spacing(value)
        for conv in self.modules():
            if isinstance(conv, SteerableConv3d):  # its level's stride product, an integer per axis
                conv.spacing = tuple(v * round(c / h) for v, c, h in zip(value, conv.spacing, self._spacing))
        self._spacing = value

    @property
    def checkpointing(self) -> bool:
        """Whether training passes recompute each block's activations in the backward pass."""
        return self._checkpointing

    @checkpointing.setter
    def checkpointing(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise ValueError(f"checkpointing: expected a bool, got {value!r}")
        if value and self.norm == "batch":
            raise ValueError(
                "checkpointing: not available with norm='batch' (recomputing a block would update its running "
                "statistics twice); use norm='instance' or None"
            )
        self._checkpointing = value

    def _run(self, block: torch.nn.Module, *inputs: torch.Tensor) -> torch.Tensor:
        if self._checkpointing and self.training and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(block, *inputs, use_reentrant=False)
        return block(*inputs)

    @property
    def size_multiple(self) -> tuple[int, int, int]:
        """Every spatial size must be a multiple of this (the product of the strides per axis)."""
        return tuple(math.prod(s[a] for s in self.strides) for a in range(3))

    def is_exact(self, spatial_shape: Sequence[int]) -> bool:
        """Whether an input of this spatial shape runs and keeps the grid symmetries exact."""
        return all(n % m == 0 for n, m in zip(spatial_shape, self.size_multiple))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_channels, X, Y, Z] -> [B, out_channels, X, Y, Z]``; every axis a multiple of
        :attr:`size_multiple`."""
        check_field(x, self.irreps_in)
        if not self.is_exact(x.shape[2:]):
            raise ValueError(
                f"input: expected every spatial size divisible by the product of the strides {self.size_multiple}, "
                f"got {tuple(x.shape[2:])}; pad or crop the volume (or use steerable3d.inference.sliding_window)"
            )
        skips = []
        for i, encode in enumerate(self.encoder):
            if i > 0:
                x = self.down[i - 1](x)
            x = self._run(encode, x)
            skips.append(x)
        skips.pop()
        for up, merge, decode in zip(self.up, self.merge, self.decoder):
            x = self._run(decode, merge(skips.pop(), self._run(up, x)))
        return self.head(x)
