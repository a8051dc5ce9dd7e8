"""Steerable 3D convolution: one ``conv3d`` call with a kernel assembled from weights x a continuous basis."""

from __future__ import annotations

import math
from typing import Sequence, Union

import torch
import torch.nn.functional as F

from .._validation import Spacing, as_irreps, as_spacing, as_triple, check_field, field_blocks
from ..basis import SHELL_WIDTH, KernelBasis
from ..sizes import window_is_exact
from . import _fft
from ._amp import autocast_active, full_precision
from ._assembly import KernelAssembly
from ._filters import antialias_std, gaussian_taps

__all__ = ["SteerableConv3d", "SteerableConvTranspose3d"]

PADDING_MODES = ("zeros", "circular", "reflect", "replicate")
BACKENDS = ("direct", "fft", "auto")


class SteerableConv3d(torch.nn.Module):
    r"""E(3)-steerable convolution on a regular grid.

    Maps a field ``[B, irreps_in.dim, X, Y, Z]`` to ``[B, irreps_out.dim, X', Y', Z']`` with one
    ``torch.nn.functional.conv3d`` call. The kernel is ``weights x basis`` (see :mod:`steerable3d.basis`):
    Gaussian shells in physical units times spherical harmonics, contracted with Clebsch-Gordan
    coefficients. The self-connection is the centre tap; a bias is added on ``0e`` outputs only.

    Args:
        irreps_in, irreps_out: e3nn irreps, e.g. ``"8x0e + 4x1o + 2x2e"``.
        kernel_size: odd number of taps along the axis with the smallest spacing. The physical radius is
            ``(kernel_size // 2) * min(spacing)``; other axes get the taps that fit in it.
        spacing: voxel size (x, y, z) in physical units; may be changed later (``conv.spacing = ...`` or
            :meth:`with_spacing`) to sample the same continuous filter on another grid.
        stride: int or three ints.
        padding: ``"same"`` (symmetric ``dilation * (taps - 1) // 2`` per side, whatever the stride) or an
            int / three ints, always symmetric.
        padding_mode: ``"zeros"``, ``"circular"``, ``"reflect"`` or ``"replicate"``.
        dilation: int or three ints (the sampled filter is spread over ``dilation`` voxels per tap).
        bias: learnable bias on the ``0e`` outputs.
        parity: O(3) selection rule (True) or SO(3) (False).
        antialias: with ``stride > 1``, a Gaussian blur (std ``0.5 sqrt(s^2 - 1)`` voxels) is folded into
            the kernel before subsampling; its length (odd or even) is picked from the input size so that
            the output grid stays symmetric (see "Exactness" below).
        backend: ``"direct"`` (``conv3d``), ``"fft"`` (products of Fourier transforms: the same result, faster
            for large kernels; stride 1, no dilation, ``"zeros"`` or ``"circular"`` padding) or ``"auto"``
            (FFT where a cost model from ``benchmarks/bench_fft.py`` expects it to be faster, direct
            otherwise). The FFT route builds the kernel spectrum in chunks of output channels and, in eval
            mode, caches it like the kernel.
        origin: where the grid symmetries are exact with ``stride > 1``: ``"centre"`` (the volume centre,
            the default) or ``"voxel0"`` (periodic boxes, ``padding_mode="circular"``: output ``j`` sits on
            input ``j * stride``, the blur is always odd, and sizes divisible by the stride are exact about
            voxel 0, see :func:`~steerable3d.symmetry.transform_field`). A model must not mix the two: a
            strided layer exact about voxel 0 is not exact about the centre of an even box.
        shell_width, max_order, moment_order: radial basis options, see :class:`~steerable3d.basis.KernelBasis`.
        allow_unreachable: let outputs that no filter reaches stay zero instead of raising ``ValueError``
            (a 1x1x1 projection from scalars onto fields that also hold vectors, as in a residual path).

    Exactness: the 48 grid symmetries (about the volume centre) hold to float rounding when every axis
    satisfies ``(N + 2p - k) % s == 0`` for the effective window ``k``. With ``stride=1`` every size is
    exact. With ``stride=2`` and ``antialias=True`` every size is exact (odd blur for ``N + 2p - k`` even,
    even blur otherwise); with ``antialias=False`` odd kernels need odd sizes. For ``stride >= 3`` the blur
    covers residues 0 and 1 only. On periodic boxes, ``origin="voxel0"`` makes strided layers exact about
    voxel 0 instead, on sizes divisible by the stride. :meth:`is_exact` answers for a given input shape.

    In eval mode (and without gradients) the assembled kernel is cached until the weights, dtype, device
    or spacing change; ``state_dict`` keys are the same in both modes.

    Example:
        >>> conv = SteerableConv3d("4x0e + 2x1o", "2x0e + 1x1o + 1x2e", kernel_size=5)
        >>> conv(torch.randn(2, 10, 16, 16, 16)).shape
        torch.Size([2, 10, 16, 16, 16])
    """

    def __init__(
        self,
        irreps_in,
        irreps_out,
        kernel_size: int = 5,
        *,
        spacing: Spacing = 1.0,
        stride: Union[int, Sequence[int]] = 1,
        padding: Union[str, int, Sequence[int]] = "same",
        padding_mode: str = "zeros",
        dilation: Union[int, Sequence[int]] = 1,
        bias: bool = True,
        parity: bool = True,
        antialias: bool = True,
        backend: str = "direct",
        origin: str = "centre",
        shell_width: float = SHELL_WIDTH,
        max_order: int | None = None,
        moment_order: int | None = None,
        allow_unreachable: bool = False,
    ) -> None:
        super().__init__()
        self.irreps_in = as_irreps(irreps_in, "irreps_in")
        self.irreps_out = as_irreps(irreps_out, "irreps_out")
        self._in_dim = self.irreps_in.dim  # for the per-call input check
        self._fields_in, self._fields_out = field_blocks(self.irreps_in), field_blocks(self.irreps_out)
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size: expected an odd positive int (taps along the finest axis), got {kernel_size!r}")
        spacing = as_spacing(spacing)
        self.kernel_size = kernel_size
        self.stride = as_triple(stride, "stride")
        self.dilation = as_triple(dilation, "dilation")
        if min(self.stride) < 1 or min(self.dilation) < 1:
            raise ValueError(f"stride and dilation: expected positive ints, got {stride!r} and {dilation!r}")
        if padding != "same":
            padding = as_triple(padding, "padding")
            if min(padding) < 0:
                raise ValueError(f"padding: expected 'same' or non-negative ints, got {padding!r}")
        self.padding = padding
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode: expected one of {PADDING_MODES}, got {padding_mode!r}")
        self.padding_mode = padding_mode
        if backend not in BACKENDS:
            raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
        self._fft_supported = self.stride == (1, 1, 1) and self.dilation == (1, 1, 1) and padding_mode in ("zeros", "circular")
        if backend == "fft" and not self._fft_supported:
            raise ValueError(
                f"backend='fft': needs stride 1, dilation 1 and padding_mode 'zeros' or 'circular', got stride "
                f"{self.stride}, dilation {self.dilation}, padding_mode {padding_mode!r}"
            )
        self.backend = backend
        if origin not in ("centre", "voxel0"):
            raise ValueError(f"origin: expected 'centre' or 'voxel0', got {origin!r}")
        if origin == "voxel0" and padding_mode != "circular":
            raise ValueError(f"origin='voxel0' is for periodic boxes: expected padding_mode='circular', got {padding_mode!r}")
        self.origin = origin
        self._fft_cache = None
        self.parity = bool(parity)
        self.antialias = bool(antialias)
        self.radius = (kernel_size // 2) * min(spacing)
        self._spacing = spacing
        self.basis = KernelBasis(
            self.irreps_in,
            self.irreps_out,
            self.radius,
            spacing,
            parity=parity,
            width=shell_width,
            max_order=max_order,
            moment_order=moment_order,
        )

        # weights: per (i_out, i_in) pair a block [mul_out, mul_in, n_paths], flattened into one parameter
        self._blocks = []
        offset = 0
        for (i_out, i_in), paths in self.basis.pair_paths.items():
            shape = (self.irreps_out[i_out].mul, self.irreps_in[i_in].mul, len(paths))
            self._blocks.append((i_out, i_in, offset, shape))
            offset += math.prod(shape)
        self.weight = torch.nn.Parameter(torch.empty(offset))
        scalar_channels = [
            i for (mul, ir), sl in zip(self.irreps_out, self.irreps_out.slices()) if ir.l == 0 and ir.p == 1
            for i in range(sl.start, sl.stop)
        ]
        self.register_buffer("_bias_index", torch.tensor(scalar_channels, dtype=torch.long), persistent=False)
        contiguous = scalar_channels == list(range(scalar_channels[0], scalar_channels[-1] + 1)) if scalar_channels else False
        self._bias_pad = (scalar_channels[0], self.irreps_out.dim - scalar_channels[-1] - 1) if contiguous else None
        self.bias = torch.nn.Parameter(torch.zeros(len(scalar_channels))) if bias and scalar_channels else None
        self.reset_parameters()

        self._basis64 = self.basis.sample(spacing)  # float64 master copy, kept out of dtype casts (_apply)
        self._assemble_tables()
        self._cache = self._repeat_call = None
        unreachable = [str(ir) for ok, (_, ir) in zip(self.basis.reachable(), self.irreps_out) if not ok]
        if unreachable and not allow_unreachable:
            raise ValueError(
                f"irreps_out: no filter of a {kernel_size}^3 kernel maps {self.irreps_in} to {', '.join(unreachable)} "
                f"(parity={parity}); use a larger kernel_size or drop these outputs"
            )

    # -- parameters and spacing ------------------------------------------------------------------------

    def reset_parameters(self) -> None:
        """Weights ~ N(0, 1 / n) with ``n`` the number of (input channel, path) pairs feeding each output
        irrep, so every path has the same share and a unit-variance white input gives unit-variance
        outputs; bias zero."""
        fan_in = [0] * len(self.irreps_out)
        for i_out, i_in, _, (_, mul_in, n_paths) in self._blocks:
            fan_in[i_out] += mul_in * n_paths
        with torch.no_grad():
            for i_out, _, offset, shape in self._blocks:
                n = math.prod(shape)
                self.weight[offset : offset + n].normal_(0.0, 1.0 / math.sqrt(max(fan_in[i_out], 1)))
            if self.bias is not None:
                self.bias.zero_()

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size (x, y, z) in physical units. Setting it resamples the same continuous filter."""
        return self._spacing

    @spacing.setter
    def spacing(self, value: Spacing) -> None:
        value = as_spacing(value)
        device = self._basis64[0].device if self._basis64 else torch.device("cpu")
        self._basis64 = [b.to(device) for b in self.basis.sample(value)]
        self._spacing = value
        self._assemble_tables()
        self._cache = self._fft_cache = self._repeat_call = None

    def with_spacing(self, spacing: Spacing) -> "SteerableConv3d":
        """A copy of this layer on another grid (same weights, same continuous filter)."""
        import copy

        other = copy.deepcopy(self)
        other.spacing = spacing
        return other

    @property
    def taps(self) -> tuple[int, int, int]:
        """Kernel taps per axis at the current spacing."""
        return tuple(self._assembly64.shape[2:])

    def _padding(self) -> tuple[int, int, int]:
        return self._half_padding if self.padding == "same" else self.padding

    # -- kernel ------------------------------------------------------------------------------------------

    def _apply(self, fn, recurse=True):
        # Parameters follow ``fn`` (dtype and device). The float64 basis only follows the device, so that
        # a float32 or bfloat16 round trip does not lose its exactness.
        super()._apply(fn, recurse)
        probe = fn(torch.zeros((), dtype=torch.float64, device=self._basis64[0].device if self._basis64 else "cpu"))
        self._basis64 = [b.to(probe.device) for b in self._basis64]
        self._place_assembly()
        self._cache = self._fft_cache = self._repeat_call = None
        return self

    def _assemble_tables(self) -> None:
        """The assembly tables from the float64 basis (a float64 master on the CPU, and a copy in the
        weight's dtype, at least float32, on its device)."""
        self._assembly64 = KernelAssembly(self._blocks, [b.cpu() for b in self._basis64], self._fields_out,
                                          self._fields_in, torch.float64, "cpu")
        self._place_assembly()
        # half the window per axis: padding up to it stays inside conv3d (see forward)
        self._half_padding = tuple(d * (t - 1) // 2 for d, t in zip(self.dilation, self.taps))

    def _place_assembly(self) -> None:
        """The working copy of the float64 master tables, in the weight's dtype (at least float32) and on its device."""
        self._assembly = self._assembly64.to(torch.promote_types(self.weight.dtype, torch.float32), self.weight.device)

    def __getstate__(self):
        # caches and assembly tables are rebuilt on load: pickles (torch.save of a model) stay small
        state = self.__dict__.copy()
        state["_cache"] = state["_fft_cache"] = state["_repeat_call"] = None
        del state["_assembly"], state["_assembly64"]
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._assemble_tables()

    def kernel(self, channels_last: bool = False) -> torch.Tensor:
        """The dense kernel ``[irreps_out.dim, irreps_in.dim, X, Y, Z]`` (no blur), in the weight's dtype
        promoted to at least float32; with ``channels_last``, in ``channels_last_3d`` memory format."""
        with full_precision(self.weight.device.type):  # conv3d casts to the autocast dtype itself
            return self._assembly(self.weight, channels_last=channels_last)

    def _blur_choice(self, spatial: Sequence[int]) -> tuple[bool | None, ...]:
        """Per axis: ``None`` (no blur), ``False`` (odd blur) or ``True`` (even blur), from the input size."""
        if not self.antialias or self.stride == (1, 1, 1):
            return (None, None, None)
        if self.origin == "voxel0":
            return tuple(None if s == 1 else False for s in self.stride)
        choice = []
        for n, s, p, d, t in zip(spatial, self.stride, self._padding(), self.dilation, self.taps):
            if s == 1:
                choice.append(None)
                continue
            k = d * (t - 1) + 1
            # odd blur keeps N + 2p - k; even blur makes it N + 2p - k - 1
            choice.append((n + 2 * p - k) % s != 0 and (n + 2 * p - k - 1) % s == 0)
        return tuple(choice)

    def _strided_kernel(self, kernel: torch.Tensor, blur: tuple) -> tuple[torch.Tensor, tuple, tuple]:
        """Fold the anti-aliasing blur into the kernel. Returns (kernel, padding, dilation)."""
        padding = list(self._padding())
        dilation = list(self.dilation)
        if all(b is None for b in blur):
            return kernel, tuple(padding), tuple(dilation)
        if max(dilation) > 1:  # materialize the dilation so the blur can be folded in
            o, i = kernel.shape[:2]
            size = [d * (t - 1) + 1 for d, t in zip(dilation, kernel.shape[2:])]
            dilated = kernel.new_zeros(o, i, *size)
            dilated[:, :, :: dilation[0], :: dilation[1], :: dilation[2]] = kernel
            kernel, dilation = dilated, [1, 1, 1]
        o, i = kernel.shape[:2]
        k = kernel.reshape(o * i, 1, *kernel.shape[2:])
        for axis, (even, s) in enumerate(zip(blur, self.stride)):
            if even is None:
                continue
            taps = gaussian_taps(antialias_std(s), even).to(k.dtype).to(k.device)
            shape = [1, 1, 1, 1, 1]
            shape[2 + axis] = len(taps)
            pad = [0, 0, 0]
            pad[axis] = len(taps) - 1
            k = F.conv3d(k, taps.view(shape), padding=tuple(pad))
            padding[axis] += (len(taps) - 1) // 2
        return k.reshape(o, i, *k.shape[2:]), tuple(padding), tuple(dilation)

    def _weights_frozen(self) -> bool:
        """Eval mode and no gradient to the weights or the bias: the kernel (and its spectrum) can be cached."""
        if self.training:
            return False
        if not torch.is_grad_enabled():
            return True
        return not (self.weight.requires_grad or (self.bias is not None and self.bias.requires_grad))

    def _call_signature(self, x: torch.Tensor) -> tuple:
        """What a cached ``conv3d`` call depends on besides the frozen weights: the input's shape, layout and
        dtype, the autocast dtype, and the versions of the weights."""
        device_type = x.device.type
        autocast = torch.get_autocast_dtype(device_type) if autocast_active(device_type) else None
        bias_version = None if self.bias is None else self.bias._version
        return (x.shape, x.stride(), x.dtype, autocast, self.weight._version, self.weight.data_ptr(), bias_version)

    def _conv_plan(self, x: torch.Tensor, dtype: torch.dtype):
        """``(kernel, bias over all output channels or None, padding, dilation)``, kernel and bias in ``dtype``,
        cached while the weights are frozen. The kernel takes the input's memory format
        (``channels_last_3d`` or not), so that cuDNN need not convert it at every call."""
        blur = self._blur_choice(x.shape[2:])
        channels_last = x.dim() == 5 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last_3d)
        # a compiled graph assembles the kernel itself (Dynamo cannot compare data pointers)
        use_cache = self._weights_frozen() and not torch.compiler.is_compiling()
        if use_cache:
            bias_version = None if self.bias is None else self.bias._version
            key = (self.weight._version, self.weight.data_ptr(), dtype, blur, channels_last, bias_version)
            if self._cache is not None and self._cache[0] == key:
                return self._cache[1]
        unblurred = all(b is None for b in blur)
        with full_precision(self.weight.device.type):
            if self.bias is not None and self._bias_pad is not None:
                kernel, bias = self._assembly(self.weight, self.bias, self._bias_pad, channels_last and unblurred)
            else:
                kernel = self._assembly(self.weight, channels_last=channels_last and unblurred)
                bias = None if self.bias is None else kernel.new_zeros(self.irreps_out.dim).index_copy(
                    0, self._bias_index, self.bias.to(kernel.dtype))
            kernel, padding, dilation = self._strided_kernel(kernel, blur)
            if channels_last and not unblurred:
                kernel = kernel.contiguous(memory_format=torch.channels_last_3d)
            plan = (kernel.to(dtype), None if bias is None else bias.to(dtype), padding, dilation)
        if use_cache:
            self._cache = (key, plan)
        return plan

    def _prepare(self, x: torch.Tensor, full: bool = False):
        """Check the input; return (kernel, bias over all output channels or None, padding, dilation) in the
        dtype the convolution will run in (the autocast dtype under autocast; at least float32 with ``full``)."""
        if x.dim() != 5 or x.shape[1] != self._in_dim:
            check_field(x, self.irreps_in)
        dtype = torch.get_autocast_dtype(x.device.type) if autocast_active(x.device.type) else x.dtype
        return self._conv_plan(x, torch.promote_types(dtype, torch.float32) if full else dtype)

    def uses_fft(self, spatial_shape: Sequence[int], batch: int = 1) -> bool:
        """Whether an input of this shape takes the FFT route now (``backend="fft"``, or ``"auto"`` where the
        cost model expects FFT to be faster: in training the kernel spectrum is rebuilt every call, in eval
        mode without gradients it is cached, so "auto" switches to FFT at smaller kernels there)."""
        if self.backend == "direct" or not self._fft_supported:
            return False
        taps, padding = self.taps, self._padding()
        circular = self.padding_mode == "circular"
        if circular and any(2 * p > t - 1 or t > n for n, p, t in zip(spatial_shape, padding, taps)):
            if self.backend == "fft":
                raise ValueError(
                    f"backend='fft' with circular padding: needs padding <= (taps - 1) / 2 and taps <= size, got "
                    f"padding {padding}, taps {taps}, size {tuple(spatial_shape)}"
                )
            return False
        if self.backend == "fft":
            return True
        grid = _fft.work_grid(spatial_shape, taps, padding, circular)
        output = [n + 2 * p - t + 1 for n, p, t in zip(spatial_shape, padding, taps)]
        return _fft.relative_cost(batch, output, taps, grid, training=not self._weights_frozen()) < 1.0

    def _fft_forward(self, x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor | None, padding) -> torch.Tensor:
        circular = self.padding_mode == "circular"
        with full_precision(x.device.type):  # FFTs in float32 at least, whatever autocast says
            dtype = torch.promote_types(kernel.dtype, torch.float32)
            grid = _fft.work_grid(x.shape[2:], self.taps, padding, circular)
            key = (self.weight._version, self.weight.data_ptr(), dtype, self.weight.device, self._spacing, grid)
            use_cache = self._weights_frozen() and not torch.compiler.is_compiling()
            if use_cache and self._fft_cache is not None and self._fft_cache[0] == key:
                spectra = self._fft_cache[1]
            else:
                spectra = _fft.kernel_spectrum_chunks(kernel.to(dtype), grid, padding, circular)
                self._fft_cache = (key, spectra) if use_cache else None
            return _fft.fft_conv3d(x.to(dtype), spectra, bias, self.taps, padding, circular)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, irreps_in.dim, X, Y, Z] -> [B, irreps_out.dim, X', Y', Z']``."""
        # frozen weights, the same kind of input as last time: the same conv3d call (inference stays within
        # a few microseconds of a plain Conv3d's, where the GPU waits on the host)
        frozen = self._weights_frozen() and not torch.compiler.is_compiling()
        repeat, signature = self._repeat_call, None
        if frozen and repeat is not None:
            signature = self._call_signature(x)
            if repeat[0] == signature:
                return F.conv3d(x, *repeat[1])
        if x.dim() != 5 or x.shape[1] != self._in_dim:
            check_field(x, self.irreps_in)  # raises, naming what was expected
        if self.backend != "direct" and self.uses_fft(x.shape[2:], x.shape[0]):
            kernel, bias, padding, _ = self._prepare(x, full=True)  # FFTs run in float32 at least
            return self._fft_forward(x, kernel, bias, padding)
        kernel, bias, padding, dilation = self._prepare(x)
        if self.padding_mode != "zeros":
            pad = [p for p in reversed(padding) for _ in range(2)]
            x = F.pad(x, pad, mode=self.padding_mode)
            padding = 0
        elif padding != self._half_padding and torch.is_grad_enabled() and (x.requires_grad or kernel.requires_grad):
            # zeros beyond half the window (TetrisNet pads fully) go in explicitly when a backward pass follows:
            # oneDNN's backward is up to 2x slower with such padding inside the convolution, its forward faster
            # (benchmarks/bench_models.py, TetrisNet)
            half = [min(p, d * (t - 1) // 2) for p, d, t in zip(padding, dilation, kernel.shape[2:])]
            extra = [p - h for p, h in zip(padding, half)]
            if any(extra):
                x = F.pad(x, [e for e in reversed(extra) for _ in range(2)])
                padding = tuple(half)
        elif frozen:
            signature = self._call_signature(x) if signature is None else signature
            self._repeat_call = (signature, (kernel, bias, self.stride, padding, dilation))
        return F.conv3d(x, kernel, bias, self.stride, padding, dilation)

    # -- sizes -------------------------------------------------------------------------------------------

    def is_exact(self, spatial_shape: Sequence[int]) -> bool:
        """Whether an input of this spatial shape keeps the grid symmetries exact (about the centre, or
        about voxel 0 with ``origin="voxel0"``)."""
        blur = self._blur_choice(spatial_shape)
        for n, s, p, d, t, b in zip(spatial_shape, self.stride, self._padding(), self.dilation, self.taps, blur):
            k = d * (t - 1) + 1
            if b is not None:  # the blur widens the window and the padding together
                extra = (len(gaussian_taps(antialias_std(s), b)) - 1)
                k, p = k + extra, p + extra // 2
            # about voxel 0 on a periodic box: centred odd windows on every stride-th voxel of a whole cycle
            exact = (n % s == 0 and k % 2 == 1 and 2 * p == k - 1) if self.origin == "voxel0" else window_is_exact(n, k, s, p)
            if not exact:
                return False
        return True

    def extra_repr(self) -> str:
        return (
            f"{self.irreps_in} -> {self.irreps_out}, kernel_size={self.kernel_size}, taps={self.taps}, "
            f"spacing={self._spacing}, stride={self.stride}, padding={self.padding!r}, "
            f"padding_mode={self.padding_mode!r}, parity={self.parity}, antialias={self.antialias}, origin={self.origin!r}, "
            f"weights={self.weight.numel()}"
        )


class SteerableConvTranspose3d(SteerableConv3d):
    r"""Transposed steerable convolution (learned upsampling), one ``conv_transpose3d`` call.

    Same kernel as :class:`SteerableConv3d` (``irreps_in -> irreps_out``), applied as
    ``y(q) = sum_p K(q - s p) x(p)``. Output size per axis: ``(N - 1) s - 2 p + d (k - 1) + output_padding + 1``
    (with ``padding="same"``: ``(N - 1) s + 1``).

    Exactness: the output grid's centre is the image of the input grid's centre iff ``output_padding == 0``,
    so with ``output_padding=0`` every input size is exact. Other values are accepted for shape
    compatibility (e.g. ``2N`` outputs) and break the grid symmetry: the extra row is added on one side only.
    Only ``padding_mode="zeros"``; no anti-aliasing (the kernel itself interpolates).

    >>> up = SteerableConvTranspose3d("2x0e + 1o", "0e + 1o", 3, stride=2)
    >>> up(torch.randn(1, 5, 4, 4, 4)).shape
    torch.Size([1, 4, 7, 7, 7])
    """

    def __init__(self, irreps_in, irreps_out, kernel_size: int = 3, *, stride=2, output_padding=0, padding_mode: str = "zeros", **kwargs) -> None:
        if padding_mode != "zeros":
            raise ValueError(f"padding_mode: a transposed convolution supports only 'zeros', got {padding_mode!r}")
        kwargs.pop("antialias", None)
        super().__init__(irreps_in, irreps_out, kernel_size, stride=stride, antialias=False, **kwargs)
        self.output_padding = as_triple(output_padding, "output_padding")
        if any(op >= max(s, d) for op, s, d in zip(self.output_padding, self.stride, self.dilation)):
            raise ValueError(
                f"output_padding: expected values smaller than stride or dilation, got {output_padding!r} "
                f"(stride {self.stride}, dilation {self.dilation})"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, irreps_in.dim, X, Y, Z] -> [B, irreps_out.dim, X', Y', Z']``."""
        kernel, bias, padding, dilation = self._prepare(x)
        return F.conv_transpose3d(x, kernel.transpose(0, 1), bias, self.stride, padding, self.output_padding, 1, dilation)

    def is_exact(self, spatial_shape: Sequence[int]) -> bool:
        """Exact on every input size when ``output_padding == 0``."""
        return all(op == 0 for op in self.output_padding)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", output_padding={self.output_padding}"
