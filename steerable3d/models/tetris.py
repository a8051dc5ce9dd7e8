"""Classifiers for 3D Tetris (:func:`steerable3d.data.tetris_volumes`): the steerable net and a plain CNN."""

from __future__ import annotations

from typing import Sequence

import torch
from e3nn import o3

from ..basis import SHELL_WIDTH
from ..nn import Gate, GlobalPool, LowPassPool3d, SelfTensorProduct, Sequential, SteerableConv3d
from ..nn._filters import antialias_std

__all__ = ["TetrisNet", "PlainTetrisCNN"]

HIDDEN_O3 = "6x0e + 2x1o + 2x1e + 1x2e + 1x2o"
HIDDEN_SO3 = "6x0e + 3x1o + 2x2e"
# O(3): pointwise products after the first two hidden levels: cross products of the vectors (1o x 1o -> 1e),
# then pseudoscalars (1o . 1e -> 0o), as (factors, products) per level
PRODUCTS_O3 = [("1o", "2x1e"), ("1o + 1e", "2x0o")]
O3_SHELL_WIDTH = 1.0  # smoother radial shells than the library default: see "Defaults per group"


def _scale_irreps(irreps: str, width: int) -> o3.Irreps:
    return o3.Irreps([(mul * width, ir) for mul, ir in o3.Irreps(irreps)])


class TetrisNet(torch.nn.Module):
    r"""Steerable classifier for 3D Tetris: input ``[B, 1, X, Y, Z]`` (a ``0e`` density), logits ``[B, 8]``.

    Layers: ``downsample`` Gaussian low-pass stride-2 stages on the input (the first with std ``smoothing``
    voxels of the input, the others the standard anti-aliasing blur), then one steerable convolution +
    :class:`~steerable3d.nn.Gate` (+ pointwise products with ``parity``, see below) per entry of
    ``hidden``, a last convolution + gate to scalars, the spatial mean (:class:`~steerable3d.nn.GlobalPool`)
    and an equivariant linear read-out to ``irreps_out``. No max pooling: the shapes are symmetric and max
    is discontinuous at ties.

    Every convolution pads fully (``kernel_size - 1`` zeros per side, so each one grows the volume by
    ``kernel_size - 1``): nothing a shape produces near the border is cut off, and the spatial mean does not
    depend on where in the volume the shape sits. With ``"same"`` padding the canonical shapes, which sit at
    different places of their box, are told apart partly by their distance to the border, a cue that a
    rotation about the volume centre destroys. Gates use SiLU on ``0e`` scalars (no dead units), tanh on
    ``0o`` and sigmoid on the gates.

    Read-out and ``irreps_out``:
        * ``parity=False`` (SO(3)-equivariant, exact under the 24 grid rotations):
          ``irreps_out = 8x0e``, invariant features that are the logits.
        * ``parity=True`` (O(3)-equivariant, exact under all 48 grid symmetries):
          ``irreps_out = 7x0e + 1x0o``, seven invariants ``s_0..s_6`` and one pseudoscalar ``q``. The logits
          are ``[s_0 + q, s_0 - q, s_1, ..., s_6]``: the chiral pair (labels 0 and 1, mirror images of each
          other) shares the invariant ``s_0`` and is told apart by the sign of ``q``. Under a reflection
          ``q -> -q``, so the two chiral logits swap and the others stay.

    Chirality (O(3)): a pseudoscalar is a triple product of three vector features, and the convolutions of
    an O(3) net cannot form it from a scalar input in few layers (``0e -> 1o -> 1e -> 0o`` takes three,
    and with gates alone the pooled ``0o`` features of a fresh net are ~1e-12, so the chiral logits tie and
    never separate). With ``parity=True`` the first hidden level is therefore followed by a
    :class:`~steerable3d.nn.SelfTensorProduct` appending cross products of its vector fields (``1e``) and
    the second by one appending dot products of vectors and pseudovectors (``0o``). An SO(3) net's kernels
    include the cross-product paths (``l_f = 1`` between two ``l = 1`` fields), but see below.

    Defaults per group (measured with the protocol, ``docs/benchmarks.md``):
        * ``parity=True``: one stride-2 stage (an 18^3 working grid at the protocol size, a cube spans 2.5
          voxels), ``zero_background=True`` and smooth radial shells (``shell_width=O3_SHELL_WIDTH`` working
          voxels instead of the library's 0.6). On the 9^3 grid the chiral gap changes by more than its
          size when the shape moves by a fraction of a working voxel; the finer grid and the zero background
          remove that noise and the border. With the sharper shells some seeds learn a pseudoscalar that
          depends on the orientation (large on the axis-aligned training volumes, near zero 45 degrees away
          about one axis): the sampled kernels' cubic anisotropy, which smoother shells reduce.
        * ``parity=False``: two stride-2 stages (9^3) and biased convolutions. With a zero background an
          SO(3) net trained on the canonical volumes does not separate the chiral pair at all (chiral gap
          ~0.005 on the 18^3 grid, even with the O(3) net's products, or initialized as the O(3) net with
          the parity-violating paths at zero): its chiral feature is the border cue described under
          ``zero_background``, which rotations destroy. This net is not yet reliable on the chiral pair
          under continuous rotations.

    Sizes: the stride-2 stages are Gaussian low-passes whose length follows the input size and the
    convolutions have stride 1, so every cubic size is exact (``steerable3d.exact_sizes(model)``), the
    protocol's 36^3 among them.

    Args:
        parity: O(3) (True) or SO(3) (False), see above.
        width: multiplies every multiplicity of the hidden irreps and the number of scalars.
        hidden: irreps of each hidden level's gated output; default ``6x0e + 3x1o + 2x2e`` then (O(3))
            ``6x0e + 2x1o + 2x1e + 1x2e + 1x2o`` (pseudo-fields
            ``1e``, ``2o`` that the last convolution turns into ``0o``) or (SO(3)) ``6x0e + 3x1o + 2x2e`` again.
            With ``parity`` the first level needs ``1o`` fields and the second ``1o`` and ``1e`` fields: they
            are the factors of the products.
        scalars: scalar features before the read-out (with ``parity``, a quarter of them ``0o``).
        kernel_size: taps of every convolution.
        smoothing: std of the first low-pass, in voxels of the input.
        downsample: number of stride-2 low-pass stages on the input (1: 36^3 -> 18^3, 2: -> 9^3); default 1
            with ``parity``, else 2 (see above).
        dilation: spread every convolution's taps ``dilation`` voxels apart, after a stride-1 low-pass of the
            anti-aliasing width of a stride-``dilation`` stage. This is a further stride-``dilation`` stage
            computed at every phase of its grid ("a trous"): the same receptive field, but the features no
            longer depend on where the shape sits between the coarse grid's points, at ``dilation^3`` times
            the cost.
        zero_background: biases inside the gates (:class:`~steerable3d.nn.Gate` ``bias=True``) instead of
            in the convolutions, so the empty part of the volume stays exactly zero and the padded border
            agrees with it: the logits are then exactly invariant to moving the shape by whole voxels of
            the working grid. With biased convolutions the border's step interacts with the shape, a cue
            that tells the canonical shapes apart partly by where they sit in their box. Default: ``parity``.
        shell_width: width of the convolutions' radial Gaussian shells, in working voxels
            (:class:`~steerable3d.basis.KernelBasis`); default 1.0 with ``parity``, else the library's 0.6.

    Trains with a plain loop: Adam (lr 3e-3), the 8 canonical volumes as one batch, cross-entropy.

    >>> net = TetrisNet(parity=True)
    >>> net.irreps_out
    7x0e+1x0o
    >>> net(torch.zeros(2, 1, 20, 20, 20)).shape
    torch.Size([2, 8])
    """

    def __init__(
        self,
        parity: bool = False,
        *,
        width: int = 1,
        hidden: Sequence[str] | None = None,
        scalars: int = 16,
        kernel_size: int = 5,
        smoothing: float = 1.5,
        downsample: int | None = None,
        dilation: int = 1,
        zero_background: bool | None = None,
        shell_width: float | None = None,
    ) -> None:
        super().__init__()
        self.parity = bool(parity)
        if downsample is None:
            downsample = 1 if self.parity else 2
        if zero_background is None:
            zero_background = self.parity
        if shell_width is None:
            shell_width = O3_SHELL_WIDTH if self.parity else SHELL_WIDTH
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width: expected a positive int, got {width!r}")
        if not isinstance(downsample, int) or downsample < 0:
            raise ValueError(f"downsample: expected a non-negative int (stride-2 stages), got {downsample!r}")
        if not isinstance(dilation, int) or dilation < 1:
            raise ValueError(f"dilation: expected a positive int, got {dilation!r}")
        if hidden is None:  # a scalar input reaches only 0e, 1o, 2e, ... in one step (parity selection rule)
            hidden = [HIDDEN_SO3, HIDDEN_O3 if parity else HIDDEN_SO3]
        scalars *= width
        odd = scalars // 4 if parity else 0
        last = o3.Irreps(f"{scalars - odd}x0e + {odd}x0o") if odd else o3.Irreps(f"{scalars}x0e")
        levels = [_scale_irreps(h, width) for h in hidden] + [last]

        layers: list[torch.nn.Module] = [
            LowPassPool3d("0e", 2, sigma=smoothing if i == 0 else None) for i in range(downsample)
        ]
        if dilation > 1:
            layers.append(LowPassPool3d("0e", 1, sigma=antialias_std(dilation)))
        products = PRODUCTS_O3 if parity else []
        irreps = o3.Irreps("0e")
        for i, target in enumerate(levels):
            gate = Gate.for_output(target, act_even=torch.nn.functional.silu, bias=zero_background)
            conv = SteerableConv3d(irreps, gate.irreps_in, kernel_size, padding=dilation * (kernel_size - 1),
                                   dilation=dilation, parity=parity, bias=not zero_background,
                                   shell_width=shell_width)
            layers += [conv, gate]
            irreps = gate.irreps_out
            if i < min(len(products), len(levels) - 1):
                factors, new = products[i]
                layers.append(SelfTensorProduct(irreps, _scale_irreps(new, width), factors=factors))
                irreps = layers[-1].irreps_out
        layers.append(GlobalPool(irreps, "mean"))
        self.features = Sequential(*layers)

        pooled = self.features.irreps_out
        channels = {p: [i for (_, ir), sl in zip(pooled, pooled.slices()) if ir.p == p for i in range(sl.start, sl.stop)] for p in (1, -1)}
        self.register_buffer("_even", torch.tensor(channels[1], dtype=torch.long), persistent=False)
        self.register_buffer("_odd", torch.tensor(channels[-1], dtype=torch.long), persistent=False)
        if parity:
            self.readout = torch.nn.Linear(len(self._even), 7)
            self.readout_odd = torch.nn.Linear(len(self._odd), 1, bias=False)
            self.irreps_out = o3.Irreps("7x0e + 1x0o")
        else:
            self.readout = torch.nn.Linear(len(self._even), 8)
            self.readout_odd = None
            self.irreps_out = o3.Irreps("8x0e")
        self.irreps_in = o3.Irreps("0e")

    def invariants(self, x: torch.Tensor) -> torch.Tensor:
        """The read-out's output ``[B, irreps_out.dim]`` (invariants, then the pseudoscalar if ``parity``)."""
        pooled = self.features(x)
        out = self.readout(pooled.index_select(1, self._even))
        if self.readout_odd is not None:
            out = torch.cat([out, self.readout_odd(pooled.index_select(1, self._odd))], dim=1)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, X, Y, Z] -> [B, 8]`` logits in the label order of :func:`~steerable3d.data.tetris_shapes`."""
        f = self.invariants(x)
        if not self.parity:
            return f
        common, q = f[:, :1], f[:, 7:]
        # labels 0 and 1 are the chiral pair (TETRIS_CHIRAL_PAIR)
        return torch.cat([common + q, common - q, f[:, 1:7]], dim=1)


class PlainTetrisCNN(torch.nn.Module):
    """A plain CNN laid out like :class:`TetrisNet`, for comparison: the same input low-pass stages (two by
    default, as the SO(3) net's; ``downsample=1`` gives the O(3) net's 18^3 working grid),
    ``Conv3d`` (full padding) + SiLU per level with as many channels as the steerable net's gated fields
    have components (25, 25, 16 by default, SO(3) widths), spatial mean, linear read-out. It has about a
    hundred times the steerable net's parameters and no symmetry built in.

    >>> PlainTetrisCNN()(torch.zeros(2, 1, 20, 20, 20)).shape
    torch.Size([2, 8])
    """

    def __init__(
        self, channels: Sequence[int] = (25, 25, 16), *, kernel_size: int = 5, smoothing: float = 1.5, downsample: int = 2
    ) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = [
            LowPassPool3d("0e", 2, sigma=smoothing if i == 0 else None) for i in range(downsample)
        ]
        previous = 1
        for c in channels:
            layers += [torch.nn.Conv3d(previous, c, kernel_size, padding=kernel_size - 1), torch.nn.SiLU()]
            previous = c
        self.features = torch.nn.Sequential(*layers)
        self.readout = torch.nn.Linear(previous, 8)
        self.irreps_in = o3.Irreps("0e")
        self.irreps_out = o3.Irreps("8x0e")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, X, Y, Z] -> [B, 8]``."""
        return self.readout(self.features(x).mean(dim=(2, 3, 4)))
