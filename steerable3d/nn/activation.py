"""Equivariant nonlinearities on fields: gates and norm activations."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from e3nn import o3
from e3nn.math import normalize2mom

from .._validation import as_irreps, check_field, field_blocks

__all__ = ["Gate", "NormActivation"]


def _channels(irreps: o3.Irreps) -> list[torch.Tensor]:
    """Channel indices of every entry of ``irreps``."""
    return [torch.arange(sl.start, sl.stop) for sl in irreps.slices()]


def _contiguous_start(index: torch.Tensor) -> int | None:
    """The first channel if ``index`` is a contiguous range (so a view can replace a gather), else None."""
    if len(index) and bool((index == torch.arange(int(index[0]), int(index[0]) + len(index))).all()):
        return int(index[0])
    return None


def _take(x: torch.Tensor, index: torch.Tensor, start: int | None) -> torch.Tensor:
    """``x[:, index]``: a view when the index is the contiguous range starting at ``start``."""
    if start is not None:
        return x.narrow(1, start, len(index))
    return x.index_select(1, index)


def _activation_parity(act: Callable | None, p: int, where: str) -> int:
    """Parity of ``act(x)`` for a scalar of parity ``p`` (e3nn's rule): even functions make 0o into 0e,
    odd ones keep 0o; any other function of a pseudoscalar breaks reflection symmetry."""
    if act is None or p == 1:
        return p
    x = torch.linspace(0.1, 5.0, 64)
    if torch.allclose(act(x), act(-x), atol=1e-6):
        return 1
    if torch.allclose(act(x), -act(-x), atol=1e-6):
        return -1
    raise ValueError(f"{where}: an activation of a pseudoscalar (0o) must be even or odd, got {act}")


class Gate(torch.nn.Module):
    r"""Gated nonlinearity with e3nn's arguments and meaning, on fields ``[B, C, X, Y, Z]``.

    ``out = act_scalars(scalars) (+) act_gates(gates) * gated``: scalars go through their activations, each
    gated field (any ``l``) is multiplied by one activated gate scalar. Activations are normalized to unit
    second moment (e3nn's ``normalize2mom``). Parity follows e3nn: an even activation on ``0o`` gives
    ``0e``, an odd one keeps ``0o``; a gated field times a ``0o`` gate changes parity.

    The input channel order is e3nn's: ``irreps_in`` is ``irreps_scalars + irreps_gates + irreps_gated``
    sorted and simplified; ``irreps_out`` is the activated scalars followed by the gated fields.

    Args:
        irreps_scalars: scalar irreps (``0e``/``0o``) passed through ``act_scalars`` (one per entry).
        act_scalars: list of callables (or ``None`` for identity).
        irreps_gates: scalar irreps, ``irreps_gates.num_irreps == irreps_gated.num_irreps``.
        act_gates: list of callables, one per entry of ``irreps_gates``.
        irreps_gated: the fields to gate.
        bias: a learnable bias on every ``0e`` scalar and gate (zeros at first), added inside the activation:
            a scalar becomes ``act(x + b) - act(b)`` and a gate ``act(x + b)``. The gate then maps a zero
            field to zero, so a background of zeros stays zeros through any number of convolution (without
            bias) + gate blocks. Zero padding then agrees with the background, and a network with full
            padding and mean pooling is exactly translation-invariant (for shifts by its total stride)
            instead of letting the border's step interact with the object. Inside the field the block
            computes what a biased convolution followed by a bias-free gate computes (the ``- act(b)`` is a
            constant the next layer absorbs).

    Works along the channel axis: parts that are contiguous in the input are views, the rest is gathered once.

    >>> gate = Gate("4x0e", [torch.relu], "2x0e", [torch.sigmoid], "1x1o + 1x2e")
    >>> gate.irreps_in, gate.irreps_out
    (6x0e+1x1o+1x2e, 4x0e+1x1o+1x2e)
    >>> gate(torch.randn(2, 14, 5, 5, 5)).shape
    torch.Size([2, 12, 5, 5, 5])
    >>> biased = Gate("4x0e", [torch.relu], "2x0e", [torch.sigmoid], "1x1o + 1x2e", bias=True)
    >>> _ = torch.nn.init.uniform_(biased.scalar_bias, -1.0, 1.0)
    >>> float(biased(torch.zeros(1, 14, 3, 3, 3)).detach().abs().max())  # zero stays zero, whatever the biases
    0.0
    """

    def __init__(
        self,
        irreps_scalars,
        act_scalars: Sequence[Callable | None],
        irreps_gates,
        act_gates: Sequence[Callable | None],
        irreps_gated,
        *,
        bias: bool = False,
    ) -> None:
        super().__init__()
        scalars = as_irreps(irreps_scalars, "irreps_scalars").simplify()
        gates = as_irreps(irreps_gates, "irreps_gates").simplify()
        gated = as_irreps(irreps_gated, "irreps_gated").simplify()
        for name, irreps, acts in (("scalars", scalars, act_scalars), ("gates", gates, act_gates)):
            if any(ir.l != 0 for _, ir in irreps):
                raise ValueError(f"irreps_{name}: expected scalars (0e, 0o) only, got {irreps}")
            if len(acts) != len(irreps):
                raise ValueError(f"act_{name}: expected {len(irreps)} activations (one per entry of {irreps}), got {len(acts)}")
        if gates.num_irreps != gated.num_irreps:
            raise ValueError(
                f"irreps_gates: expected one gate per gated field ({gated.num_irreps} for {gated}), got {gates.num_irreps}"
            )
        # e3nn's layout: the three parts concatenated, then sorted (stably) and simplified
        parts = scalars + gates + gated
        order = sorted(range(len(parts)), key=lambda i: parts[i].ir)
        entry_channels = _channels(parts)
        layout = torch.cat([entry_channels[i] for i in order]) if len(parts) else torch.zeros(0, dtype=torch.long)
        position = torch.argsort(layout)  # concatenated channel -> input channel
        n_s, n_g = scalars.dim, gates.dim
        self.register_buffer("_scalar_index", position[:n_s], persistent=False)
        self.register_buffer("_gate_index", position[n_s : n_s + n_g], persistent=False)
        self.register_buffer("_gated_index", position[n_s + n_g :], persistent=False)
        self._starts = {
            name: _contiguous_start(index)
            for name, index in (("scalar", self._scalar_index), ("gate", self._gate_index), ("gated", self._gated_index))
        }
        self.irreps_in = o3.Irreps([parts[i] for i in order]).simplify()

        self.act_scalars = [normalize2mom(a) if a is not None else None for a in act_scalars]
        self.act_gates = [normalize2mom(a) if a is not None else None for a in act_gates]
        out_scalars = o3.Irreps(
            [(mul, (0, _activation_parity(a, ir.p, "act_scalars"))) for (mul, ir), a in zip(scalars, act_scalars)]
        )
        gate_parity = [_activation_parity(a, ir.p, "act_gates") for (_, ir), a in zip(gates, act_gates)]
        # one gate per gated field: field k of the gated irreps uses gate k
        per_field_parity = [p for (mul, _), p in zip(gates, gate_parity) for _ in range(mul)]
        out_gated, k = [], 0
        self._gated_blocks = []  # (first channel in the gated part, first gate, fields, 2l+1) per entry
        for (mul, ir), sl in zip(gated, gated.slices()):
            self._gated_blocks.append((sl.start, k, mul, ir.dim))
            for _ in range(mul):
                out_gated.append((1, (ir.l, ir.p * per_field_parity[k])))
                k += 1
        self.irreps_out = out_scalars + o3.Irreps(out_gated).simplify()
        self._scalar_slices = [(sl, a) for sl, a in zip(scalars.slices(), self.act_scalars)]
        self._gate_slices = [(sl, a) for sl, a in zip(gates.slices(), self.act_gates)]
        for name, irreps in (("scalar", scalars), ("gate", gates)):
            even = [i for (_, ir), sl in zip(irreps, irreps.slices()) if ir == o3.Irrep("0e") for i in range(sl.start, sl.stop)]
            self.register_buffer(f"_{name}_bias_index", torch.tensor(even, dtype=torch.long), persistent=False)
            setattr(self, f"{name}_bias", torch.nn.Parameter(torch.zeros(len(even))) if bias and even else None)
            setattr(self, f"_{name}_dim", irreps.dim)

    @classmethod
    def for_output(
        cls,
        irreps_out,
        act_even: Callable = torch.relu,
        act_odd: Callable = torch.tanh,
        act_gate: Callable = torch.sigmoid,
        *,
        bias: bool = False,
    ) -> "Gate":
        """The gate whose ``irreps_out`` is ``irreps_out`` sorted (e3nn order: ``0o`` before ``0e``) and simplified: ``0e`` scalars through
        ``act_even``, ``0o`` through the odd ``act_odd`` (so they stay ``0o``), and one ``0e`` gate through
        ``act_gate`` for every field with ``l > 0``. Feed it from a layer with ``irreps_out == gate.irreps_in``.
        ``bias``: see the class.

        >>> gate = Gate.for_output("4x0e + 1x0o + 2x1o + 1x2e")
        >>> gate.irreps_in, gate.irreps_out
        (1x0o+7x0e+2x1o+1x2e, 1x0o+4x0e+2x1o+1x2e)
        """
        irreps = as_irreps(irreps_out, "irreps_out").sort().irreps.simplify()
        scalars = o3.Irreps([(mul, ir) for mul, ir in irreps if ir.l == 0])
        gated = o3.Irreps([(mul, ir) for mul, ir in irreps if ir.l > 0])
        acts = [act_even if ir.p == 1 else act_odd for _, ir in scalars]
        gates = o3.Irreps(f"{gated.num_irreps}x0e") if gated.num_irreps else o3.Irreps([])
        return cls(scalars, acts, gates, [act_gate] * len(gates), gated, bias=bias)

    @staticmethod
    def _activate(x: torch.Tensor, pieces) -> torch.Tensor:
        outs = [x[:, sl] if act is None else act(x[:, sl]) for sl, act in pieces]
        return torch.cat(outs, dim=1) if len(outs) != 1 else outs[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, irreps_in.dim, X, Y, Z] -> [B, irreps_out.dim, X, Y, Z]``."""
        check_field(x, self.irreps_in)
        outs = []
        if len(self._scalar_index):
            scalars = _take(x, self._scalar_index, self._starts["scalar"])
            bias = self._full_bias("scalar", x)
            if bias is None:
                outs.append(self._activate(scalars, self._scalar_slices))
            else:  # act(x + b) - act(b): zero stays zero
                outs.append(self._activate(scalars + bias, self._scalar_slices) - self._activate(bias, self._scalar_slices))
        if len(self._gated_index):
            gates = _take(x, self._gate_index, self._starts["gate"])
            bias = self._full_bias("gate", x)
            gates = self._activate(gates if bias is None else gates + bias, self._gate_slices)
            gated = _take(x, self._gated_index, self._starts["gated"])
            for channel, gate, mul, dim in self._gated_blocks:  # broadcast each gate over its field's components
                fields = gated[:, channel : channel + mul * dim].unflatten(1, (mul, dim))
                outs.append((fields * gates[:, gate : gate + mul].unsqueeze(2)).flatten(1, 2))
        return torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]

    def _full_bias(self, part: str, x: torch.Tensor) -> torch.Tensor | None:
        """The ``part``'s bias over all its channels (zeros off ``0e``), ``[1, C, 1, 1, 1]``, or None."""
        bias = getattr(self, f"{part}_bias")
        if bias is None:
            return None
        full = x.new_zeros(getattr(self, f"_{part}_dim")).index_copy(0, getattr(self, f"_{part}_bias_index"), bias.to(x.dtype))
        return full.view(1, -1, 1, 1, 1)

    def extra_repr(self) -> str:
        biased = self.scalar_bias is not None or self.gate_bias is not None
        return f"{self.irreps_in} -> {self.irreps_out}" + (", bias=True" if biased else "")


class NormActivation(torch.nn.Module):
    r"""``x -> x * act(|x| + b) / |x|`` per field: a function of each field's norm times its direction.

    Equivariant for every irrep and parity (the norm is invariant, the direction is the field itself).
    Scalars keep their sign: ``0e``/``0o`` values become ``sign(x) act(|x| + b)``.

    Args:
        irreps: the field's irreps (``irreps_out == irreps_in``).
        activation: applied to the (biased) norm; default ``torch.sigmoid``.
        bias: learnable bias per field added to the norm before the activation.
        normalize: divide by the norm (True) or keep the magnitude, i.e. ``x * act(|x| + b)`` (False).
        epsilon: added to the norm before the division.

    >>> act = NormActivation("2x0e + 1x1o", torch.relu, bias=True)
    >>> act(torch.randn(2, 5, 4, 4, 4)).shape
    torch.Size([2, 5, 4, 4, 4])
    """

    def __init__(self, irreps, activation: Callable = torch.sigmoid, *, bias: bool = False, normalize: bool = True, epsilon: float = 1e-8) -> None:
        super().__init__()
        self.irreps_in = self.irreps_out = as_irreps(irreps)
        self._fields = field_blocks(self.irreps_in)
        self.activation = activation
        self.normalize = normalize
        self.epsilon = epsilon
        self.bias = torch.nn.Parameter(torch.zeros(self.irreps_in.num_irreps)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, irreps.dim, X, Y, Z] -> [B, irreps.dim, X, Y, Z]``."""
        check_field(x, self.irreps_in)
        outs, field = [], 0
        for mul, _, _, dim, sl in self._fields:
            block = x[:, sl].unflatten(1, (mul, dim))  # [B, mul, 2l+1, X, Y, Z] view
            norm = block.pow(2).sum(2, keepdim=True).sqrt()
            arg = norm
            if self.bias is not None:
                arg = norm + self.bias[field : field + mul].view(1, mul, 1, 1, 1, 1).to(norm.dtype)
            scale = self.activation(arg)
            if self.normalize:
                scale = scale / (norm + self.epsilon)
            outs.append((block * scale).flatten(1, 2))
            field += mul
        return torch.cat(outs, dim=1)

    def extra_repr(self) -> str:
        return f"{self.irreps_in}, activation={getattr(self.activation, '__name__', self.activation)}"
