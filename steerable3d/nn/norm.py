"""Equivariant normalization and field dropout.

Only ``0e`` fields may be centred: subtracting a mean from a pseudoscalar (``0o``) or from any ``l > 0``
field breaks the symmetry. Every field is scaled by the inverse square root of its mean squared norm
(per component: ``|x|^2 / (2l+1)``), a rotation- and reflection-invariant quantity.
"""

from __future__ import annotations

import torch

from .._validation import as_irreps, check_field, field_blocks

__all__ = ["BatchNorm3d", "InstanceNorm3d", "Dropout"]


class _FieldNorm(torch.nn.Module):
    """Shared machinery: per-entry views ``[B, mul, 2l+1, S]``, statistics over ``reduce`` dims."""

    instance = False

    def __init__(self, irreps, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__()
        self.irreps_in = self.irreps_out = as_irreps(irreps)
        self._fields = field_blocks(self.irreps_in)
        self.eps, self.momentum, self.affine = eps, momentum, affine
        self.track_running_stats = track_running_stats
        n_fields = self.irreps_in.num_irreps
        n_scalars = sum(mul for mul, ir in self.irreps_in if ir.l == 0 and ir.p == 1)
        if affine:
            self.weight = torch.nn.Parameter(torch.ones(n_fields))
            self.bias = torch.nn.Parameter(torch.zeros(n_scalars))
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(n_scalars))
            self.register_buffer("running_var", torch.ones(n_fields))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, irreps.dim, X, Y, Z] -> [B, irreps.dim, X, Y, Z]``."""
        check_field(x, self.irreps_in)
        use_batch = self.instance or self.training or not self.track_running_stats
        update = self.training and self.track_running_stats and not self.instance
        # Statistics per field first, then one x * scale + shift over all channels: autograd keeps only x and
        # the per-channel factors (no centred copy per block, no concatenation of the output).
        flat = x.reshape(x.shape[0], x.shape[1], -1)
        scale, shift = self.channel_factors(flat, use_batch, update)
        # in the input's dtype: CUDA autocast would otherwise promote to the float32 factors and keep
        # float32 activations (2x the memory of a bf16 network)
        scale, shift = scale.to(flat.dtype), shift.to(flat.dtype)
        return torch.addcmul(shift[:, :, None], flat, scale[:, :, None]).view_as(x)

    def channel_factors(self, flat: torch.Tensor, use_batch: bool, update: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel ``(scale, shift)`` ``[B, C]`` with ``output = flat * scale + shift`` for ``flat``
        ``[B, C, S]``: from the statistics of ``flat`` (``use_batch``) or from the running ones."""
        batch = flat.shape[0]
        reduce = (2, 3) if self.instance else (0, 2, 3)  # over space (instance) or over batch and space
        scales, shifts, field, scalar = [], [], 0, 0
        for mul, l, p, dim, sl in self._fields:
            block = flat[:, sl].unflatten(1, (mul, dim))  # [B, mul, 2l+1, S], a view
            centred = (l, p) == (0, 1)
            if use_batch:
                if centred:
                    var, mean = torch.var_mean(block, dim=reduce, correction=0)
                else:
                    var, mean = block.pow(2).mean(dim=reduce), None
                if update:
                    if centred:
                        self._update("running_mean", scalar, mul, mean.detach())
                    self._update("running_var", field, mul, var.detach())
            else:
                var = self.running_var[field : field + mul].to(flat.dtype)
                mean = self.running_mean[scalar : scalar + mul].to(flat.dtype) if centred else None
            scale = (var + self.eps).rsqrt()  # [B, mul] (instance) or [mul]
            if self.affine:
                scale = scale * self.weight[field : field + mul].to(scale.dtype)
            scale = scale.expand(batch, mul)
            if centred:
                shift = -mean * scale
                if self.affine:
                    shift = shift + self.bias[scalar : scalar + mul].to(scale.dtype)
            else:
                shift = scale.new_zeros(batch, mul * dim)
            scales.append(scale.repeat_interleave(dim, dim=1))
            shifts.append(shift)
            field += mul
            scalar += mul if centred else 0
        return torch.cat(scales, dim=1), torch.cat(shifts, dim=1)

    def _update(self, name: str, start: int, count: int, value: torch.Tensor) -> None:
        buffer = getattr(self, name)
        with torch.no_grad():
            buffer[start : start + count].lerp_(value.to(buffer.dtype), self.momentum)

    def extra_repr(self) -> str:
        return f"{self.irreps_in}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class BatchNorm3d(_FieldNorm):
    """Batch normalization of fields: ``0e`` fields centred, every field scaled by its mean squared norm
    over batch and space; running statistics for eval mode; learnable scale per field, bias on ``0e``.

    >>> bn = BatchNorm3d("4x0e + 2x1o + 0o")
    >>> bn(torch.randn(3, 11, 4, 4, 4)).shape
    torch.Size([3, 11, 4, 4, 4])
    """


class InstanceNorm3d(_FieldNorm):
    """Instance normalization of fields: statistics over space, per sample and field (no running stats).

    >>> InstanceNorm3d("2x0e + 1x2e")(torch.randn(2, 7, 4, 4, 4)).shape
    torch.Size([2, 7, 4, 4, 4])
    """

    instance = True

    def __init__(self, irreps, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__(irreps, eps=eps, affine=affine, track_running_stats=False)


class Dropout(torch.nn.Module):
    """Drop whole fields per sample in training (all ``2l+1`` components and all voxels), scaling the
    kept ones by ``1 / (1 - p)``; the identity in eval mode.

    >>> drop = Dropout("4x0e + 2x1o", p=0.5).eval()
    >>> x = torch.randn(2, 10, 3, 3, 3)
    >>> bool(torch.equal(drop(x), x))
    True
    """

    def __init__(self, irreps, p: float = 0.5) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"p: expected a drop probability in [0, 1), got {p!r}")
        self.irreps_in = self.irreps_out = as_irreps(irreps)
        self._num_fields = self.irreps_in.num_irreps
        self.p = p
        field_of_channel = []
        for mul, ir in self.irreps_in:
            for _ in range(mul):
                field_of_channel += [len(set(field_of_channel))] * ir.dim
        self.register_buffer("_field_of_channel", torch.tensor(field_of_channel, dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, irreps.dim, X, Y, Z] -> [B, irreps.dim, X, Y, Z]``."""
        check_field(x, self.irreps_in)
        if not self.training or self.p == 0:
            return x
        keep = torch.rand(x.shape[0], self._num_fields, device=x.device) >= self.p
        mask = keep.to(x.dtype).index_select(1, self._field_of_channel) / (1 - self.p)
        return x * mask.view(*mask.shape, 1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.irreps_in}, p={self.p}"
