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
O3_SHELL_WIDTH = 1.0  # smoother radial shells than the library default: see "Defaults" in TetrisNet
O3_FIRST_KERNEL_SIZE = 7  # three l = 1 shells in the first convolution: see "Defaults" in TetrisNet
O3_INPUT_SCALE = 0.2  # the gates start unsaturated on 0/1 densities: see "Defaults" in TetrisNet


def _scale_irreps(irreps: str, width: int) -> o3.Irreps:
    return o3.Irreps([(mul * width, ir) for mul, ir in o3.Irreps(irreps)])


class TetrisNet(torch.nn.Module):
    r"""Steerable classifier for 3D Tetris: input ``[B, 1, X, Y, Z]`` (a ``0e`` density), logits ``[B, 8]``.

    Layers: ``downsample`` Gaussian low-pass stride-2 stages on the input (the first with std ``smoothing``
    voxels of the input, the others the standard anti-aliasing blur), then one steerable convolution +
    :class:`~steerable3d.nn.Gate` (+ pointwise products, see "Chirality") per entry of ``hidden``, a last
    convolution + gate to scalars, the spatial mean (:class:`~steerable3d.nn.GlobalPool`) and a linear
    read-out. No max pooling: the shapes are symmetric and max is discontinuous at ties.

    Every convolution pads fully (``kernel_size - 1`` zeros per side, so each one grows the volume by
    ``kernel_size - 1``): nothing a shape produces near the border is cut off, and the spatial mean does not
    depend on where in the volume the shape sits. With ``"same"`` padding the canonical shapes, which sit at
    different places of their box, are told apart partly by their distance to the border, a cue that a
    rotation about the volume centre destroys. Gates use SiLU on ``0e`` scalars (no dead units), tanh on
    ``0o`` and sigmoid on the gates.

    Read-out and ``irreps_out``. The layers are O(3)-equivariant (``kernel_group="O3"``, the default), so the
    pooled features are invariants ``0e`` and pseudoscalars ``0o`` (12 and 4 by default); ``parity`` decides
    how the linear read-out turns them into logits:

        * ``parity=True`` (O(3)-equivariant logits, exact under all 48 grid symmetries):
          ``irreps_out = 7x0e + 1x0o``, seven invariants ``s_0..s_6`` (linear in the pooled ``0e``) and one
          pseudoscalar ``q`` (linear in the pooled ``0o``). The logits are ``[s_0 + q, s_0 - q, s_1, ...,
          s_6]``: the chiral pair (labels 0 and 1, mirror images of each other) shares the invariant ``s_0``
          and is told apart by the sign of ``q``. Under a reflection ``q -> -q``, so the two chiral logits
          swap and the others stay.
        * ``parity=False`` (rotation-invariant logits, exact under the 24 grid rotations):
          ``irreps_out = 8x0e + 2x0o``, eight invariants ``s_0..s_7`` and two pseudoscalars ``q_0, q_1``, each
          with its own weights. The logits are ``[s_0 + q_0, s_1 + q_1, s_2, ..., s_7]``: a rotation changes
          none of them, but nothing ties the chiral pair's logits to each other, so a reflection does not
          map logits to logits. The pseudoscalars feed the chiral pair alone because the six other shapes
          are their own mirror images; a read-out that gives every logit the pooled ``0o`` features fits
          their resampling noise on those shapes (``docs/benchmarks.md``). With ``kernel_group="SO3"``
          there are no ``0o`` features: ``irreps_out = 8x0e``, the logits.

    Chirality. A pooled pseudoscalar of a density is at least of fourth order in it (the signed volume of
    four points; a triple product of three gradient fields is a divergence and integrates to zero), and the
    convolutions and gates of a fresh net make it tiny (~1e-7 of the invariants). The first hidden level is
    therefore followed by a :class:`~steerable3d.nn.SelfTensorProduct` appending cross products of its vector
    fields (``1e``), the second by one appending dot products of vectors and pseudovectors (``0o``). The
    ``0o`` features and the read-out weights on them serve the chiral pair alone, so Adam grows them from
    that tiny start to a clear margin within the 300 steps. With ``kernel_group="SO3"`` (SO(3) kernels,
    which add the parity-violating paths, such as a ``0e -> 0o`` radial filter) every feature mixes a large
    mirror-even part with its tiny chiral part, no parameter serves chirality alone, and on the 18^3 grid
    with a zero background the chiral pair stays tied (``docs/benchmarks.md``); that net has no products
    and keeps the previous SO(3) defaults (9^3, biased convolutions, shells 0.6), where the border cue
    under ``zero_background`` tells the pair apart on the canonical volumes but not under rotations.

    Defaults (O(3) kernels, measured with the protocol, ``docs/benchmarks.md``): one stride-2 stage (an 18^3
    working grid at the protocol size, a cube spans 2.5 voxels), ``zero_background=True`` and smooth radial
    shells (``shell_width=O3_SHELL_WIDTH`` working voxels instead of the library's 0.6). On the 9^3 grid the
    chiral gap changes by more than its size when the shape moves by a fraction of a working voxel; the
    finer grid and the zero background remove that noise and the border. With the sharper shells some seeds
    learn a pseudoscalar that depends on the orientation (large on the axis-aligned training volumes, near
    zero 45 degrees away about one axis): the sampled kernels' cubic anisotropy, which smoother shells reduce.
    Two more defaults stop the seeds where it still happened: the input is multiplied by
    ``input_scale=O3_INPUT_SCALE`` (0.2) and the first convolution has ``first_kernel_size=7`` taps. On a 0/1
    density each convolution of a fresh net amplifies the smooth shape 4 to 12 times, so unscaled the three
    convolutions' outputs reach 10, 40 and 120 (seed 0): the gates switch hard on and off across the shape,
    which sharpens the features where the sampled kernels are least isotropic. Scaled, they reach 2, 6 and
    20. The 7-tap first convolution carries ``l = 1`` on three shells instead of two, so the first level's
    vector fields are less parallel and a fresh net's pooled chiral signal is larger (median over five
    seeds: 50 times).

    Sizes: the stride-2 stages are Gaussian low-passes whose length follows the input size and the
    convolutions have stride 1, so every cubic size is exact (``steerable3d.exact_sizes(model)``), the
    protocol's 36^3 among them.

    Args:
        parity: O(3)-equivariant logits (True) or rotation-invariant ones (False), see above.
        width: multiplies every multiplicity of the hidden irreps and the number of scalars.
        hidden: irreps of each hidden level's gated output; default ``6x0e + 3x1o + 2x2e`` then
            ``6x0e + 2x1o + 2x1e + 1x2e + 1x2o`` (pseudo-fields ``1e``, ``2o`` that the last convolution
            turns into ``0o``); with ``kernel_group="SO3"`` the first twice. With O(3) kernels the first
            level needs ``1o`` fields and the second ``1o`` and ``1e`` fields: they are the factors of the
            products.
        scalars: scalar features before the read-out (with O(3) kernels, a quarter of them ``0o``).
        kernel_size: taps of every convolution but the first.
        first_kernel_size: taps of the first convolution; default 7, ``kernel_size`` with
            ``kernel_group="SO3"``.
        input_scale: the input is multiplied by it; default 0.2, 1 with ``kernel_group="SO3"``.
        smoothing: std of the first low-pass, in voxels of the input.
        downsample: number of stride-2 low-pass stages on the input (1: 36^3 -> 18^3, 2: -> 9^3); default 1,
            2 with ``kernel_group="SO3"``.
        dilation: spread every convolution's taps ``dilation`` voxels apart, after a stride-1 low-pass of the
            anti-aliasing width of a stride-``dilation`` stage. This is a further stride-``dilation`` stage
            computed at every phase of its grid ("a trous"): the same receptive field, but the features no
            longer depend on where the shape sits between the coarse grid's points, at ``dilation^3`` times
            the cost.
        zero_background: biases inside the gates (:class:`~steerable3d.nn.Gate` ``bias=True``) instead of
            in the convolutions, so the empty part of the volume stays exactly zero and the padded border
            agrees with it: the logits are then exactly invariant to moving the shape by whole voxels of
            the working grid. With biased convolutions the border's step interacts with the shape, a cue
            that tells the canonical shapes apart partly by where they sit in their box. Default: True,
            False with ``kernel_group="SO3"``.
        shell_width: width of the convolutions' radial Gaussian shells, in working voxels
            (:class:`~steerable3d.basis.KernelBasis`); default 1.0, the library's 0.6 with
            ``kernel_group="SO3"``.
        kernel_group: ``"O3"`` (default) or ``"SO3"`` (needs ``parity=False``): the group the convolution
            kernels are equivariant to, see "Chirality".

    Trains with a plain loop: Adam (lr 3e-3), the 8 volumes as one batch, cross-entropy.

    >>> net = TetrisNet(parity=True)
    >>> net.irreps_out
    7x0e+1x0o
    >>> net(torch.zeros(2, 1, 20, 20, 20)).shape
    torch.Size([2, 8])
    >>> TetrisNet().irreps_out, TetrisNet(kernel_group="SO3").irreps_out
    (8x0e+2x0o, 8x0e)
    """

    def __init__(
        self,
        parity: bool = False,
        *,
        width: int = 1,
        hidden: Sequence[str] | None = None,
        scalars: int = 16,
        kernel_size: int = 5,
        first_kernel_size: int | None = None,
        input_scale: float | None = None,
        smoothing: float = 1.5,
        downsample: int | None = None,
        dilation: int = 1,
        zero_background: bool | None = None,
        shell_width: float | None = None,
        kernel_group: str = "O3",
    ) -> None:
        super().__init__()
        self.parity = bool(parity)
        if kernel_group not in ("O3", "SO3"):
            raise ValueError(f"kernel_group: expected 'O3' or 'SO3', got {kernel_group!r}")
        if kernel_group == "SO3" and self.parity:
            raise ValueError("kernel_group='SO3' needs parity=False: SO(3) kernels mix every field with its mirror image")
        self.kernel_group = kernel_group
        o3_kernels = kernel_group == "O3"
        if downsample is None:
            downsample = 1 if o3_kernels else 2
        if zero_background is None:
            zero_background = o3_kernels
        if shell_width is None:
            shell_width = O3_SHELL_WIDTH if o3_kernels else SHELL_WIDTH
        if first_kernel_size is None:
            first_kernel_size = O3_FIRST_KERNEL_SIZE if o3_kernels else kernel_size
        if input_scale is None:
            input_scale = O3_INPUT_SCALE if o3_kernels else 1.0
        if not (isinstance(input_scale, (int, float)) and input_scale > 0):
            raise ValueError(f"input_scale: expected a positive number, got {input_scale!r}")
        self.input_scale = float(input_scale)
        if not isinstance(first_kernel_size, int) or first_kernel_size < 1 or first_kernel_size % 2 == 0:
            raise ValueError(f"first_kernel_size: expected an odd positive int (taps), got {first_kernel_size!r}")
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width: expected a positive int, got {width!r}")
        if not isinstance(downsample, int) or downsample < 0:
            raise ValueError(f"downsample: expected a non-negative int (stride-2 stages), got {downsample!r}")
        if not isinstance(dilation, int) or dilation < 1:
            raise ValueError(f"dilation: expected a positive int, got {dilation!r}")
        if hidden is None:  # a scalar input reaches only 0e, 1o, 2e, ... in one step (parity selection rule)
            hidden = [HIDDEN_SO3, HIDDEN_O3 if o3_kernels else HIDDEN_SO3]
        scalars *= width
        odd = scalars // 4 if o3_kernels else 0
        last = o3.Irreps(f"{scalars - odd}x0e + {odd}x0o") if odd else o3.Irreps(f"{scalars}x0e")
        levels = [_scale_irreps(h, width) for h in hidden] + [last]

        layers: list[torch.nn.Module] = [
            LowPassPool3d("0e", 2, sigma=smoothing if i == 0 else None) for i in range(downsample)
        ]
        if dilation > 1:
            layers.append(LowPassPool3d("0e", 1, sigma=antialias_std(dilation)))
        products = PRODUCTS_O3 if o3_kernels else []
        irreps = o3.Irreps("0e")
        for i, target in enumerate(levels):
            gate = Gate.for_output(target, act_even=torch.nn.functional.silu, bias=zero_background)
            k = first_kernel_size if i == 0 else kernel_size
            conv = SteerableConv3d(irreps, gate.irreps_in, k, padding=dilation * (k - 1),
                                   dilation=dilation, parity=o3_kernels, bias=not zero_background,
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
            self.readout_odd = torch.nn.Linear(len(self._odd), 2, bias=False) if len(self._odd) else None
            self.irreps_out = o3.Irreps("8x0e + 2x0o") if len(self._odd) else o3.Irreps("8x0e")
        self.irreps_in = o3.Irreps("0e")

    def invariants(self, x: torch.Tensor) -> torch.Tensor:
        """The read-out's output ``[B, irreps_out.dim]``: invariants, then pseudoscalars (see the class)."""
        pooled = self.features(x * self.input_scale)
        out = self.readout(pooled.index_select(1, self._even))
        if self.readout_odd is not None:
            out = torch.cat([out, self.readout_odd(pooled.index_select(1, self._odd))], dim=1)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, X, Y, Z] -> [B, 8]`` logits in the label order of :func:`~steerable3d.data.tetris_shapes`."""
        f = self.invariants(x)
        # labels 0 and 1 are the chiral pair (TETRIS_CHIRAL_PAIR)
        if self.parity:
            common, q = f[:, :1], f[:, 7:]
            return torch.cat([common + q, common - q, f[:, 1:7]], dim=1)
        if self.readout_odd is None:
            return f
        return torch.cat([f[:, :2] + f[:, 8:], f[:, 2:8]], dim=1)


class PlainTetrisCNN(torch.nn.Module):
    """A plain CNN laid out like :class:`TetrisNet`, for comparison: the same input low-pass stages (two by
    default, a 9^3 working grid at the protocol size, as ``TetrisNet(kernel_group="SO3")``; ``downsample=1``
    gives the default nets' 18^3 grid at about 8 times the cost), ``Conv3d`` (full padding) + SiLU per level
    with as many channels as the SO(3)-kernel net's gated fields have components (25, 25, 16 by default),
    spatial mean, linear read-out. It has about a hundred times the steerable nets' parameters and no
    symmetry built in.

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
