"""Export a steerable model to a plain-PyTorch ``torch.fx.GraphModule``.

The exported module computes the same function (eval mode) with ``torch.nn`` modules (``nn.Conv3d``,
``nn.ConvTranspose3d``, ``nn.AvgPool3d``), registered buffers and torch tensor ops only: no class or
function from :mod:`steerable3d` or :mod:`e3nn` is referenced, so ``torch.save(gm)`` can be loaded with
``torch.load(path, weights_only=False)`` in a process where neither package is installed.

What is frozen:
    * every steerable kernel is assembled once (eval mode, no gradient) and stored as a plain weight;
      later changes of the original model's weights or ``spacing`` do not reach the export;
    * the anti-aliasing blur of strided :class:`~steerable3d.nn.SteerableConv3d` and of
      :class:`~steerable3d.nn.LowPassPool3d` is picked from the input size. The export uses the sizes seen
      by each layer for ``example_input``, so **it is specialised to inputs whose per-axis size parity
      (more precisely, size modulo the stride) matches the example at every strided layer**. The graph
      checks the sizes at run time (``torch._assert``, naming the layer and axis) rather than silently
      applying a blur chosen for another size;
    * eval-mode behaviour: :class:`~steerable3d.nn.Dropout` is the identity, :class:`~steerable3d.nn.BatchNorm3d`
      with running statistics is a fixed per-channel affine map; :class:`~steerable3d.nn.InstanceNorm3d`
      (and a batch norm without running statistics) computes its statistics at run time.

Supported modules: ``SteerableConv3d``, ``SteerableConvTranspose3d``, ``Gate``, ``NormActivation``,
``BatchNorm3d``, ``InstanceNorm3d``, ``Dropout``, ``AvgPool3d``, ``LowPassPool3d``, ``GlobalPool``,
``Upsample``, ``SelfTensorProduct`` (its bilinear table frozen), ``Sequential`` (and any
``torch.nn.Sequential`` of supported modules), ``Residual``, and
``Concatenate`` as the top-level model (give a tuple of example inputs). Activations (of ``Gate`` and
``NormActivation``) must be torch functions (``torch.relu``, ``torch.nn.functional.silu``, ...) or
``torch.nn`` activation modules (``torch.nn.SiLU()``); anything else raises ``ValueError``.

Example:
    >>> import torch
    >>> from steerable3d.nn import Gate, Sequential, SteerableConv3d
    >>> net = Sequential(
    ...     SteerableConv3d("0e", "2x0e + 1x0e + 1x1o", 3, stride=2, padding_mode="circular"),
    ...     Gate("2x0e", [torch.relu], "1x0e", [torch.sigmoid], "1x1o"),
    ... ).eval()
    >>> x = torch.randn(1, 1, 8, 8, 8)
    >>> gm = export(net, x)
    >>> bool(torch.allclose(gm(x), net(x), atol=1e-6))
    True
"""

from __future__ import annotations

import copy
import importlib
import operator
from typing import Any, Sequence, Union

import torch
import torch.nn.functional as F

from .nn.activation import Gate, NormActivation
from .nn.containers import Concatenate, Residual
from .nn.conv import SteerableConv3d, SteerableConvTranspose3d
from .nn.norm import Dropout, _FieldNorm
from .nn.pooling import AvgPool3d, GlobalPool, LowPassPool3d, Upsample
from .nn.tensor_product import SelfTensorProduct

__all__ = ["export"]


def _torch_function(f: Any, where: str):
    """Return ``f`` if it is a torch function reachable by its qualified name, else raise ValueError."""
    from torch.fx.node import _get_qualified_name

    name = getattr(f, "__name__", None) or repr(f)
    try:
        qualified = _get_qualified_name(f)
    except Exception:  # noqa: BLE001 - e.g. functools.partial, callable objects
        qualified = None
    if qualified and qualified.startswith("torch.") and (getattr(f, "__module__", None) or "").startswith("torch"):
        module_name, _, attr = qualified.rpartition(".")
        try:
            if getattr(importlib.import_module(module_name), attr) is f:
                return f
        except (ImportError, AttributeError):
            pass
    raise ValueError(
        f"export: {where}: activation {name!r} ({getattr(f, '__module__', type(f).__module__)}) is not a torch "
        "builtin function or torch.nn module; use e.g. torch.relu, torch.sigmoid, torch.nn.functional.silu"
    )


class _Builder:
    def __init__(self) -> None:
        self.root = torch.nn.Module()
        self.graph = torch.fx.Graph()
        self._count = 0

    def _name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    # -- graph helpers -----------------------------------------------------------------------------------

    def buffer(self, tensor: torch.Tensor, prefix: str = "buf"):
        name = self._name(prefix)
        self.root.register_buffer(name, tensor.detach().clone())
        return self.graph.get_attr(name)

    def module(self, module: torch.nn.Module, x, prefix: str = "mod"):
        name = self._name(prefix)
        self.root.add_module(name, module)
        return self.graph.call_module(name, (x,))

    def fn(self, f, *args, **kwargs):
        return self.graph.call_function(f, tuple(args), kwargs)

    def method(self, name: str, *args, **kwargs):
        return self.graph.call_method(name, tuple(args), kwargs)

    def size_guard(self, x, example_shape, strides, where: str) -> None:
        """Assert at run time that each strided axis has the example's size modulo the stride: the
        anti-aliasing blur frozen into the export was chosen for that residue."""
        for axis, s in enumerate(strides):
            if s == 1:
                continue
            residue = example_shape[2 + axis] % s
            size = self.method("size", x, 2 + axis)
            ok = self.fn(operator.eq, self.fn(operator.mod, size, s), residue)
            self.fn(
                torch._assert, ok,
                f"exported {where}: axis {axis} was exported for sizes = {residue} (mod {s}), as in the example "
                f"input (size {example_shape[2 + axis]}); export again with an example of this size",
            )

    def take(self, x, index: torch.Tensor):
        """``x[:, index]`` (narrow when contiguous, as Gate does)."""
        if len(index) and bool((index == torch.arange(int(index[0]), int(index[0]) + len(index))).all()):
            return self.method("narrow", x, 1, int(index[0]), len(index))
        return self.method("index_select", x, 1, self.buffer(index.cpu(), "index"))

    def activation(self, act, x, where: str):
        """Apply ``act`` (a raw callable, ``None`` or e3nn's ``normalize2mom`` wrapper)."""
        if act is None:
            return x
        cst = None
        if type(act).__name__ == "normalize2mom" and hasattr(act, "f") and hasattr(act, "cst"):
            cst = None if getattr(act, "_is_id", False) else float(act.cst)
            act = act.f
        if isinstance(act, torch.nn.Module):
            if not type(act).__module__.startswith("torch.nn"):
                raise ValueError(f"export: {where}: activation module {type(act).__module__}.{type(act).__qualname__} is not a torch.nn module")
            y = self.module(copy.deepcopy(act), x, "act")
        else:
            y = self.fn(_torch_function(act, where), x)
        return y if cst is None else self.method("mul", y, cst)

    # -- layers ------------------------------------------------------------------------------------------

    def emit(self, module: torch.nn.Module, nodes: list, values: list):
        """Emit ``module`` applied to ``nodes`` (whose example values are ``values``). Returns (node, value)."""
        if isinstance(module, Concatenate):
            y = self.fn(torch.cat, list(nodes), dim=1)
            if module.sort:
                y = self.method("index_select", y, 1, self.buffer(module._index.cpu(), "index"))
            return y, module(*values)
        if len(nodes) != 1:
            raise ValueError(f"export: {type(module).__name__} takes one input, got {len(nodes)}")
        x, v = nodes[0], values[0]
        if isinstance(module, torch.nn.Sequential):
            for child in module:
                x, v = self.emit(child, [x], [v])
            return x, v
        if isinstance(module, Residual):
            y, out = self.emit(module.module, [x], [v])
            skip = x if module.projection is None else self.emit(module.projection, [x], [v])[0]
            return self.fn(operator.add, y, skip), module(v)
        handler = _HANDLERS.get(type(module))
        if handler is None:
            for cls, h in _HANDLERS.items():
                if isinstance(module, cls):
                    handler = h
                    break
        if handler is None:
            raise ValueError(
                f"export: unsupported module type {type(module).__module__}.{type(module).__qualname__}"
            )
        return handler(self, module, x, v), module(v)

    def conv(self, m: SteerableConv3d, x, v: torch.Tensor):
        kernel, bias, padding, dilation = m._conv_plan(v, v.dtype)
        if m.antialias:
            self.size_guard(x, v.shape, m.stride, type(m).__name__)
        kernel = kernel.detach()
        bias = None if bias is None else bias.detach()
        out_c, in_c = kernel.shape[:2]
        if isinstance(m, SteerableConvTranspose3d):
            layer = torch.nn.ConvTranspose3d(
                in_c, out_c, tuple(kernel.shape[2:]), stride=m.stride, padding=padding,
                output_padding=m.output_padding, bias=bias is not None, dilation=dilation,
                device=kernel.device, dtype=kernel.dtype,
            )
            weight = kernel.transpose(0, 1)
        else:
            layer = torch.nn.Conv3d(
                in_c, out_c, tuple(kernel.shape[2:]), stride=m.stride, padding=padding, dilation=dilation,
                bias=bias is not None, padding_mode=m.padding_mode, device=kernel.device, dtype=kernel.dtype,
            )
            weight = kernel
        layer.weight = torch.nn.Parameter(weight.contiguous().clone(), requires_grad=False)
        if bias is not None:
            layer.bias = torch.nn.Parameter(bias.clone(), requires_grad=False)
        return self.module(layer, x, "conv")

    def gate(self, m: Gate, x, v: torch.Tensor):
        def activate(xs, pieces, where):
            outs = [self.activation(act, self.method("narrow", xs, 1, sl.start, sl.stop - sl.start), where) for sl, act in pieces]
            return self.fn(torch.cat, outs, dim=1) if len(outs) != 1 else outs[0]

        def biased(xs, bias):  # the gate's bias (Gate(bias=True)) as a constant buffer
            return xs if bias is None else self.fn(operator.add, xs, self.buffer(bias, "bias"))

        outs = []
        with torch.no_grad():
            scalar_bias, gate_bias = m._full_bias("scalar", v), m._full_bias("gate", v)
        if len(m._scalar_index):
            scalars = activate(biased(self.take(x, m._scalar_index), scalar_bias), m._scalar_slices, "Gate act_scalars")
            if scalar_bias is not None:  # act(x + b) - act(b), the second term a constant
                with torch.no_grad():
                    background = m._activate(scalar_bias, m._scalar_slices)
                scalars = self.fn(operator.sub, scalars, self.buffer(background, "background"))
            outs.append(scalars)
        if len(m._gated_index):
            gates = activate(biased(self.take(x, m._gate_index), gate_bias), m._gate_slices, "Gate act_gates")
            repeat = [gate + j for _, gate, mul, dim in m._gated_blocks for j in range(mul) for _ in range(dim)]
            repeated = self.method("index_select", gates, 1, self.buffer(torch.tensor(repeat, dtype=torch.long), "index"))
            outs.append(self.fn(operator.mul, self.take(x, m._gated_index), repeated))
        return self.fn(torch.cat, outs, dim=1) if len(outs) > 1 else outs[0]

    def norm_activation(self, m: NormActivation, x, v: torch.Tensor):
        outs, field = [], 0
        for (mul, ir), sl in zip(m.irreps_in, m.irreps_in.slices()):
            block = self.method("unflatten", self.method("narrow", x, 1, sl.start, sl.stop - sl.start), 1, (mul, ir.dim))
            norm = self.method("sqrt", self.method("sum", self.method("pow", block, 2), 2, keepdim=True))
            arg = norm
            if m.bias is not None:
                b = m.bias.detach()[field : field + mul].view(1, mul, 1, 1, 1, 1).to(v.dtype)
                arg = self.fn(operator.add, norm, self.buffer(b, "bias"))
            scale = self.activation(m.activation, arg, "NormActivation")
            if m.normalize:
                scale = self.fn(operator.truediv, scale, self.fn(operator.add, norm, m.epsilon))
            outs.append(self.method("flatten", self.fn(operator.mul, block, scale), 1, 2))
            field += mul
        return self.fn(torch.cat, outs, dim=1)

    def field_norm(self, m: _FieldNorm, x, v: torch.Tensor):
        """The norm's own formulation: per-field statistics, then ``x * scale + shift`` per channel."""
        dtype = v.dtype
        channels = v.shape[1]
        if not (m.instance or not m.track_running_stats):  # eval-mode batch norm: constant factors
            with torch.no_grad():
                scale, shift = m.channel_factors(torch.zeros(1, channels, 1, dtype=dtype, device=v.device), use_batch=False)
            flat = self.method("flatten", x, 2)
            out = self.fn(torch.addcmul, self.buffer(shift[:, :, None], "shift"), flat, self.buffer(scale[:, :, None], "scale"))
            return self.method("view_as", out, x)
        flat = self.method("flatten", x, 2)  # [B, C, S]
        reduce = (2, 3) if m.instance else (0, 2, 3)
        scales, shifts, field, scalar = [], [], 0, 0
        for mul, l, p, dim, sl in m._fields:
            block = self.method("unflatten", self.method("narrow", flat, 1, sl.start, sl.stop - sl.start), 1, (mul, dim))
            centred = (l, p) == (0, 1)
            if centred:
                stats = self.fn(torch.var_mean, block, dim=reduce, correction=0)
                var, mean = self.fn(operator.getitem, stats, 0), self.fn(operator.getitem, stats, 1)
            else:
                var = self.method("mean", self.method("pow", block, 2), dim=reduce)
            scale = self.method("rsqrt", self.fn(operator.add, var, m.eps))
            if m.affine:
                scale = self.fn(operator.mul, scale, self.buffer(m.weight.detach()[field : field + mul].to(dtype), "weight"))
            if not m.instance:  # batch statistics: [mul], one factor for the whole batch
                scale = self.method("unsqueeze", scale, 0)
                mean = self.method("unsqueeze", mean, 0) if centred else None
            if centred:
                shift = self.fn(operator.mul, self.fn(operator.neg, mean), scale)
                if m.affine:
                    shift = self.fn(operator.add, shift, self.buffer(m.bias.detach()[scalar : scalar + mul].to(dtype), "bias"))
            scales.append(self.method("repeat_interleave", scale, dim, dim=1))
            shifts.append(shift if centred else self.fn(torch.zeros_like, scales[-1]))
            field += mul
            scalar += mul if centred else 0
        scale = self.method("unsqueeze", self.fn(torch.cat, scales, dim=1), 2)
        shift = self.method("unsqueeze", self.fn(torch.cat, shifts, dim=1), 2)
        return self.method("view_as", self.fn(torch.addcmul, shift, flat, scale), x)

    def dropout(self, m: Dropout, x, v: torch.Tensor):
        return x

    def avg_pool(self, m: AvgPool3d, x, v: torch.Tensor):
        return self.module(torch.nn.AvgPool3d(m.kernel_size, m.stride, m.padding, count_include_pad=False), x, "pool")

    def low_pass(self, m: LowPassPool3d, x, v: torch.Tensor):
        self.size_guard(x, v.shape, m.stride, "LowPassPool3d")
        tx, ty, tz = m.taps(v.shape[2:])
        kernel = (tx[:, None, None] * ty[None, :, None] * tz[None, None, :]).to(dtype=v.dtype, device=v.device)[None, None]
        padding = m.padding(v.shape[2:])
        layer = torch.nn.Conv3d(1, 1, tuple(kernel.shape[2:]), stride=m.stride, padding=padding, bias=False,
                                padding_mode=m.padding_mode, device=v.device, dtype=v.dtype)
        layer.weight = torch.nn.Parameter(kernel.clone(), requires_grad=False)
        flat = self.method("unsqueeze", self.method("flatten", x, 0, 1), 1)  # [B*C, 1, X, Y, Z]
        y = self.module(layer, flat, "lowpass")
        return self.method("unflatten", self.method("squeeze", y, 1), 0, (-1, m.irreps_in.dim))

    def global_pool(self, m: GlobalPool, x, v: torch.Tensor):
        flat = self.method("flatten", x, 2)
        norm_dtype = torch.promote_types(v.dtype, torch.float32)
        outs = []
        for (mul, ir), sl in zip(m.irreps_in, m.irreps_in.slices()):
            if mul == 0:
                continue
            field = self.method("unflatten", self.method("narrow", flat, 1, sl.start, sl.stop - sl.start), 1, (mul, ir.dim))
            if m.mode == "mean":
                value = self.method("mean", field, dim=-1)
            else:
                norms = self.fn(torch.linalg.vector_norm, self.method("to", self.method("detach", field), norm_dtype), dim=2)
                peak = self.method("amax", norms, dim=-1, keepdim=True)
                mask = self.fn(operator.ge, norms, self.fn(operator.mul, peak, 1 - m._tolerance(norm_dtype)))
                weights = self.method("to", self.fn(operator.truediv, mask, self.method("sum", mask, dim=-1, keepdim=True)), v.dtype)
                value = self.method("sum", self.fn(operator.mul, field, self.method("unsqueeze", weights, 2)), dim=-1)
            if m.invariant and not (ir.l == 0 and ir.p == 1):
                sq = self.method("sum", self.method("pow", value, 2), dim=-1, keepdim=True)
                positive = self.fn(operator.gt, sq, 0)
                safe = self.fn(torch.where, positive, sq, self.fn(torch.ones_like, sq))
                value = self.fn(torch.where, positive, self.fn(torch.sqrt, safe), self.fn(torch.zeros_like, sq))
            outs.append(self.method("flatten", value, 1))
        if not outs:
            return self.method("new_zeros", x, (self.method("size", x, 0), 0))
        return self.fn(torch.cat, outs, dim=1)

    def self_tensor_product(self, m: SelfTensorProduct, x, v: torch.Tensor):
        f = self.take(x, m._factor_index)
        pairs = self.fn(operator.mul, self.take(f, m._first), self.take(f, m._second))
        weight = m.pair_weights().detach().to(v.dtype)[:, :, None, None, None]
        products = self.fn(F.conv3d, pairs, self.buffer(weight, "weight"))
        return self.fn(torch.cat, [x, products], dim=1)

    def upsample(self, m: Upsample, x, v: torch.Tensor):
        if m.mode == "nearest":
            for axis, s in enumerate(m.scale_factor):
                if s > 1:
                    x = self.method("repeat_interleave", x, s, dim=2 + axis)
            return x
        if m.padding_mode == "circular":
            padded = self.fn(F.pad, x, [1] * 6, mode="circular")
            size = tuple(self.fn(operator.mul, self.method("size", padded, 2 + a), s) for a, s in enumerate(m.scale_factor))
            y = self.fn(F.interpolate, padded, size=size, mode="trilinear", align_corners=False)
            sx, sy, sz = m.scale_factor
            return self.fn(operator.getitem, y, (slice(None), slice(None), slice(sx, -sx), slice(sy, -sy), slice(sz, -sz)))
        size = tuple(self.fn(operator.mul, self.method("size", x, 2 + a), s) for a, s in enumerate(m.scale_factor))
        return self.fn(F.interpolate, x, size=size, mode="trilinear", align_corners=False)


_HANDLERS = {
    SteerableConvTranspose3d: _Builder.conv,
    SteerableConv3d: _Builder.conv,
    Gate: _Builder.gate,
    NormActivation: _Builder.norm_activation,
    _FieldNorm: _Builder.field_norm,
    Dropout: _Builder.dropout,
    AvgPool3d: _Builder.avg_pool,
    LowPassPool3d: _Builder.low_pass,
    GlobalPool: _Builder.global_pool,
    Upsample: _Builder.upsample,
    SelfTensorProduct: _Builder.self_tensor_product,
}


def export(model: torch.nn.Module, example_input: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.fx.GraphModule:
    """Export ``model`` (eval mode) to a ``torch.fx.GraphModule`` of plain PyTorch (see the module docstring).

    Args:
        model: a supported steerable module or container. It is put in eval mode for the export and its
            previous train/eval flags are restored afterwards.
        example_input: a field ``[B, C, X, Y, Z]`` (or a tuple of fields for a top-level ``Concatenate``).
            Its spatial size fixes the anti-aliasing blurs of strided layers: the export is specialised to
            inputs with the same size modulo the strides (for stride 2: the same per-axis parity).

    Returns:
        A ``GraphModule`` holding only ``torch.nn`` submodules, buffers and torch ops; ``torch.save`` it and
        ``torch.load(path, weights_only=False)`` it without steerable3d or e3nn.

    Raises:
        ValueError: for an unsupported module type or a non-torch activation (the message names it).

    Example:
        >>> import torch
        >>> from steerable3d.nn import SteerableConv3d
        >>> conv = SteerableConv3d("0e + 1o", "2x0e + 1o", 3, stride=2)
        >>> x = torch.randn(1, 4, 8, 8, 8)
        >>> gm = export(conv, x)
        >>> [type(m).__name__ for m in gm.children()]
        ['Conv3d']
    """
    inputs = [example_input] if isinstance(example_input, torch.Tensor) else list(example_input)
    flags = {m: m.training for m in model.modules()}
    model.eval()
    try:
        builder = _Builder()
        nodes = [builder.graph.placeholder(f"x{i}" if len(inputs) > 1 else "x") for i in range(len(inputs))]
        with torch.no_grad():
            out, _ = builder.emit(model, nodes, [t.detach() for t in inputs])
        builder.graph.output(out)
        builder.graph.lint()
        gm = torch.fx.GraphModule(builder.root, builder.graph, class_name="ExportedSteerable")
    finally:
        for m, flag in flags.items():
            m.train(flag)
    return gm
