"""Kernel assembly in three tensor ops: gather the weights, one batched matmul with the sampled basis, gather
the products into the kernel's memory layout.

The kernel of a steerable convolution is block-sparse: the block of an ``(out, in)`` irrep pair is
``K[u, m, v, n, xyz] = sum_b W[u, v, b] B[b, m, n, xyz]`` (``u, v`` multiplicities, ``m, n`` irrep components,
``b`` paths). Contracting pair by pair costs a few small ops per pair, forward and backward: on a GPU, where
a 64^3 convolution takes a millisecond or two, those launches cost more than the convolution's own
overhead. Here every pair's rows ``(u, v)`` are cut into chunks of ``R`` rows, and each (pair, m, n, chunk)
becomes one ``[R, J] @ [J, xyz]`` product of one ``bmm`` (``J`` the most paths of any pair, zero-padded).
``R`` is chosen per layer to minimize the padded products plus the basis copies, so the tables stay about
the kernel's own size (a plain gather of ``J`` terms per kernel entry would need ``J`` times that).

The three ops (and the bias padding) form one autograd node: on a GPU every tensor op also costs host time,
and before the convolution the GPU has nothing else to do (``docs/benchmarks.md``, GPU section). Indices are
int64: int32 ones were slower on CUDA.
"""

from __future__ import annotations

import copy
import math
from typing import Sequence

import torch
import torch.nn.functional as F

from .._validation import FieldBlock

CHUNK_ROWS = (1, 2, 4, 8, 16, 32, 64)


def _chunk_rows(pairs: Sequence[tuple[int, int, int]], paths: int) -> int:
    """``R`` minimizing the floats of the products plus the basis copies, ``sum (R + J) * chunks``, over
    ``pairs`` given as ``(rows u*v, components m*n, paths)``."""
    def cost(r: int) -> int:
        return sum(mn * math.ceil(uv / r) * (r + paths) for uv, mn, _ in pairs)

    return min(CHUNK_ROWS, key=cost)


class KernelAssembly:
    """Tables that turn a layer's flat weight vector into its dense kernel ``[O, I, X, Y, Z]``.

    Args:
        blocks: per ``(i_out, i_in)`` pair, row-major, ``(i_out, i_in, offset, (mul_out, mul_in, paths))``: where
            its weights ``[mul_out, mul_in, paths]`` start in the flat weight vector.
        basis: per pair, the sampled basis ``[paths, 2 l_out + 1, 2 l_in + 1, X, Y, Z]``.
        fields_out, fields_in: the irreps' field blocks.
        dtype, device: of the basis copies (the assembly's precision; at least float32).

    Calling it with the weights (and the bias) returns the kernel, contiguous or in ``channels_last_3d`` memory
    format: the final gather writes either layout directly, so cuDNN need not convert it.

    >>> from steerable3d.nn import SteerableConv3d
    >>> conv = SteerableConv3d("2x0e + 1o", "0e + 1o", 3)
    >>> conv._assembly(conv.weight).shape
    torch.Size([4, 5, 3, 3, 3])
    """

    def __init__(self, blocks, basis: Sequence[torch.Tensor], fields_out: Sequence[FieldBlock],
                 fields_in: Sequence[FieldBlock], dtype: torch.dtype, device) -> None:
        taps = tuple(basis[0].shape[3:])
        t = math.prod(taps)
        n_out, n_in = fields_out[-1].slice.stop, fields_in[-1].slice.stop
        self.shape = (n_out, n_in, *taps)
        live = [(block, b) for block, b in zip(blocks, basis) if block[3][2] > 0]
        self.paths = max((shape[2] for (_, _, _, shape), _ in live), default=0)
        j = self.paths
        self.rows = _chunk_rows([(u * v, b.shape[1] * b.shape[2], p) for (_, _, _, (u, v, p)), b in live], j) if live else 1
        r = self.rows

        weight_index, basis_copies, sources, targets = [], [], [], []
        chunk = 0  # batch elements so far
        for (i_out, i_in, offset, (mul_out, mul_in, n_paths)), b in live:
            out, inp = fields_out[i_out], fields_in[i_in]
            m, n = out.dim, inp.dim
            chunks = math.ceil(mul_out * mul_in / r)
            row = torch.arange(chunks * r).view(chunks, r)
            path = torch.arange(j)
            valid = (row[..., None] < mul_out * mul_in) & (path < n_paths)
            # padded rows and paths read weight 0 against a zero basis entry, so they contribute exact zeros
            index = torch.where(valid, offset + row[..., None] * n_paths + path, 0)  # [chunks, R, J]
            weight_index.append(index.expand(m * n, chunks, r, j).reshape(-1, r, j))
            padded = b.new_zeros(m * n, j, t)
            padded[:, :n_paths] = b.reshape(n_paths, m * n, t).transpose(0, 1)
            basis_copies.append(padded[:, None].expand(m * n, chunks, j, t).reshape(-1, j, t))
            # where each product lands: batch element (m, n, chunk), row u * mul_in + v, tap; on a grid [M, N, U, V, T]
            mm, nn = torch.arange(m).view(-1, 1, 1, 1, 1), torch.arange(n).view(1, -1, 1, 1, 1)
            uu, vv = torch.arange(mul_out).view(1, 1, -1, 1, 1), torch.arange(mul_in).view(1, 1, 1, -1, 1)
            tap = torch.arange(t).view(1, 1, 1, 1, -1)
            flat_row = uu * mul_in + vv
            element = chunk + (mm * n + nn) * chunks + flat_row // r
            grid = (m, n, mul_out, mul_in, t)
            sources.append(((element * r + flat_row % r) * t + tap).expand(grid).reshape(-1))
            targets.append(torch.stack([(out.slice.start + uu * m + mm).expand(grid).reshape(-1),
                                        (inp.slice.start + vv * n + nn).expand(grid).reshape(-1),
                                        tap.expand(grid).reshape(-1)]))
            chunk += m * n * chunks
        # one all-zero product for the kernel entries no path reaches
        zero_row = chunk * r * t
        weight_index.append(torch.zeros(1, r, j, dtype=torch.long))
        basis_copies.append(torch.zeros(1, j, t, dtype=torch.float64))
        self.weight_index = torch.cat(weight_index).to(device)
        self.basis = torch.cat(basis_copies).to(device=device, dtype=dtype)
        source = torch.cat(sources) if sources else torch.zeros(0, dtype=torch.long)
        o, i, tap = torch.cat(targets, dim=1) if targets else torch.zeros(3, 0, dtype=torch.long)
        self.gather = {}
        for channels_last in (False, True):
            position = (o * t + tap) * n_in + i if channels_last else (o * n_in + i) * t + tap
            gather = torch.full((n_out * n_in * t,), zero_row, dtype=torch.long)
            gather[position] = source
            self.gather[channels_last] = gather.to(device)

    def to(self, dtype: torch.dtype, device) -> "KernelAssembly":
        """A copy with the basis in ``dtype`` and every table on ``device`` (``self`` where nothing changes)."""
        if self.basis.dtype == dtype and self.basis.device == torch.device(device):
            return self
        other = copy.copy(self)
        other.basis = self.basis.to(device=device, dtype=dtype)
        other.weight_index = self.weight_index.to(device)
        other.gather = {k: v.to(device) for k, v in self.gather.items()}
        return other

    def __call__(self, weight: torch.Tensor, bias: torch.Tensor | None = None, bias_pad: tuple[int, int] | None = None,
                 channels_last: bool = False):
        """The kernel ``[O, I, X, Y, Z]`` from the flat weights (in the basis dtype), and with ``bias`` and
        ``bias_pad`` also the bias over all output channels, ``F.pad(bias, bias_pad)``: ``(kernel, bias)``."""
        if self.paths == 0:
            kernel = weight.new_zeros(self.shape, dtype=self.basis.dtype)
            return kernel if bias is None else (kernel, F.pad(bias.to(kernel.dtype), bias_pad))
        return _Assemble.apply(weight, bias, bias_pad, self.weight_index, self.basis, self.gather[channels_last],
                               self.rows, self.paths, self.shape, channels_last)


class _Assemble(torch.autograd.Function):
    """``weight -> kernel`` (and ``bias -> padded bias``); linear, so the backward needs only the tables."""

    @staticmethod
    def forward(ctx, weight, bias, bias_pad, weight_index, basis, gather, rows, paths, shape, channels_last):
        n_out, n_in, *taps = shape
        products = torch.bmm(weight.to(basis.dtype).index_select(0, weight_index.view(-1)).view(-1, rows, paths), basis)
        flat = products.view(-1).index_select(0, gather)
        kernel = flat.view(n_out, *taps, n_in).permute(0, 4, 1, 2, 3) if channels_last else flat.view(shape)
        ctx.save_for_backward(weight_index, basis, gather)
        ctx.weight_shape, ctx.weight_dtype, ctx.rows, ctx.channels_last, ctx.bias_pad = weight.shape, weight.dtype, rows, channels_last, bias_pad
        if bias is None:
            return kernel
        ctx.bias_dtype = bias.dtype
        return kernel, F.pad(bias.to(basis.dtype), bias_pad)

    @staticmethod
    def backward(ctx, grad_kernel, grad_bias=None):
        weight_index, basis, gather = ctx.saved_tensors
        grad_weight = grad_full_bias = None
        if ctx.needs_input_grad[0] and grad_kernel is not None:
            # back through the gather (a kernel entry reads one product), the bmm, then the weight gather
            flat = (grad_kernel.permute(0, 2, 3, 4, 1) if ctx.channels_last else grad_kernel).reshape(-1).to(basis.dtype)
            grad_products = flat.new_zeros(basis.shape[0] * ctx.rows * basis.shape[2]).index_add(0, gather, flat)
            grad_rows = torch.bmm(grad_products.view(basis.shape[0], ctx.rows, basis.shape[2]), basis.transpose(1, 2))
            grad_weight = grad_rows.new_zeros(ctx.weight_shape).index_add(0, weight_index.view(-1), grad_rows.reshape(-1))
            grad_weight = grad_weight.to(ctx.weight_dtype)
        if ctx.needs_input_grad[1] and grad_bias is not None:
            start, end = ctx.bias_pad[0], grad_bias.shape[0] - ctx.bias_pad[1]
            grad_full_bias = grad_bias[start:end].to(ctx.bias_dtype)
        return grad_weight, grad_full_bias, None, None, None, None, None, None, None, None
