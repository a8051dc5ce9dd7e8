"""Pointwise tensor products: a quadratic equivariant nonlinearity that couples different fields.

Gates only rescale a field by a scalar, so with gates as the only nonlinearity a network builds cross and
triple products of vector fields slowly and weakly (through many convolutions). A learned tensor product
``x (x) x`` at every voxel makes them in one step: the cross product of two vector fields is a ``1e``
pseudovector, a ``2e (x) 2e`` product contains a ``0e`` invariant, and so on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from e3nn import o3

from .._validation import as_irreps, check_field
from ._amp import full_precision

__all__ = ["SelfTensorProduct"]


class SelfTensorProduct(torch.nn.Module):
    r"""Append learned pointwise products of a field's non-scalar parts to the field.

    Shapes: ``[B, irreps_in.dim, X, Y, Z] -> [B, irreps_out.dim, X, Y, Z]`` with
    ``irreps_out = irreps_in + irreps_products`` (the input passes through unchanged, the products follow).

    The products are e3nn's :class:`~e3nn.o3.FullyConnectedTensorProduct` of ``f`` with itself at every
    voxel, where ``f`` is the part of the input with ``l > 0`` by default, or the irreps named in ``factors``
    (scalar factors only rescale a field, which a :class:`~steerable3d.nn.Gate` already does). Being bilinear, it is assembled once per call into a table
    ``W[pair, out]`` over the unordered channel pairs ``(i <= j)`` and applied as ``f_i f_j`` followed by a
    ``1x1x1`` convolution; the result equals e3nn's to float rounding (tested).

    Equivariance: every rotation and reflection, exactly (to float rounding): it acts voxel by voxel and is
    built from Clebsch-Gordan coefficients. The output's paths follow the parity rule: ``1o x 1o`` gives
    ``0e, 1e, 2e`` (the cross product is the ``1e``), ``1o x 2e`` gives ``1o, 2o, 3o``, ``2e x 2e`` gives
    ``0e .. 4e``. Sizes: every size (no windows). Units: the square of the input's.

    Args:
        irreps_in: the field's irreps; it needs at least one ``l > 0`` field.
        irreps_products: irreps of the appended products, each reachable from a product of two factors.
        factors: which irreps of the input are factors (e.g. ``"1o + 1e"``); default every ``l > 0`` irrep.
            The cost is quadratic in the factors' total dimension, so restricting them saves time.

    Example:
        >>> tp = SelfTensorProduct("4x0e + 2x1o", "1x1e")
        >>> tp.irreps_out
        4x0e+2x1o+1x1e
        >>> tp(torch.randn(2, 10, 5, 5, 5)).shape
        torch.Size([2, 13, 5, 5, 5])
    """

    def __init__(self, irreps_in, irreps_products, factors=None) -> None:
        super().__init__()
        self.irreps_in = as_irreps(irreps_in, "irreps_in")
        self.irreps_products = as_irreps(irreps_products, "irreps_products")
        if factors is None:
            chosen = {ir for _, ir in self.irreps_in if ir.l > 0}
        else:
            chosen = {ir for _, ir in as_irreps(factors, "factors")}
            absent = [str(ir) for ir in chosen if ir not in {ir for mul, ir in self.irreps_in if mul > 0}]
            if absent:
                raise ValueError(f"factors: {', '.join(absent)} not in irreps_in {self.irreps_in}")
        selected = [((mul, ir), sl) for (mul, ir), sl in zip(self.irreps_in, self.irreps_in.slices()) if ir in chosen and mul > 0]
        if not selected or all(ir.l == 0 for (_, ir), _ in selected):
            raise ValueError(f"irreps_in: expected at least one factor field with l > 0, got {self.irreps_in} (factors={factors})")
        self.irreps_factors = o3.Irreps([field for field, _ in selected])
        index = [i for _, sl in selected for i in range(sl.start, sl.stop)]
        reachable = {ir_out for _, a in self.irreps_factors for _, b in self.irreps_factors for ir_out in a * b}
        missing = [str(ir) for _, ir in self.irreps_products if ir not in reachable]
        if missing:
            raise ValueError(
                f"irreps_products: {', '.join(missing)} is not a product of two of the fields {self.irreps_factors}"
            )
        self.tp = o3.FullyConnectedTensorProduct(self.irreps_factors, self.irreps_factors, self.irreps_products)
        d = self._factor_dim = self.irreps_factors.dim
        first, second = torch.triu_indices(d, d)
        self.register_buffer("_factor_index", torch.tensor(index, dtype=torch.long), persistent=False)
        self.register_buffer("_first", first, persistent=False)
        self.register_buffer("_second", second, persistent=False)
        self.irreps_out = self.irreps_in + self.irreps_products
        self._cache = None

    def pair_weights(self) -> torch.Tensor:
        """The bilinear form as a table ``[irreps_products.dim, pairs]`` over the pairs ``i <= j`` of factor
        channels (``W[:, ij] = T[i, j] + T[j, i]`` off the diagonal), differentiable in the weights."""
        d = self._factor_dim
        eye = torch.eye(d, dtype=self.tp.weight.dtype, device=self.tp.weight.device)
        with full_precision(eye.device.type):  # e3nn's contraction needs one dtype; the conv3d below casts
            table = self.tp(eye.repeat_interleave(d, dim=0), eye.repeat(d, 1)).reshape(d, d, -1)  # T[i, j, out]
        symmetric = table + table.transpose(0, 1)
        diagonal = self._first == self._second
        pairs = symmetric[self._first, self._second]
        pairs = torch.where(diagonal[:, None], pairs / 2, pairs)
        return pairs.transpose(0, 1)

    def _cached_pair_weights(self) -> torch.Tensor:
        # In eval mode without gradients the table is kept until the weights change (in place or not).
        weight = self.tp.weight
        key = (weight._version, weight.data_ptr(), weight.dtype, weight.device)
        if self.training or (torch.is_grad_enabled() and weight.requires_grad):
            return self.pair_weights()
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self.pair_weights())
        return self._cache[1]

    def _apply(self, fn, recurse=True):
        self._cache = None
        return super()._apply(fn, recurse)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, irreps_in.dim, X, Y, Z] -> [B, irreps_out.dim, X, Y, Z]``."""
        check_field(x, self.irreps_in)
        f = x.index_select(1, self._factor_index)
        pairs = f.index_select(1, self._first) * f.index_select(1, self._second)
        weight = self._cached_pair_weights().to(x.dtype)
        products = F.conv3d(pairs, weight[:, :, None, None, None])
        return torch.cat([x, products], dim=1)

    def is_exact(self, spatial_shape) -> bool:
        """Always ``True``: a pointwise layer keeps every grid symmetry."""
        return True

    def extra_repr(self) -> str:
        return f"{self.irreps_in} -> {self.irreps_out}, factors={self.irreps_factors}, weights={self.tp.weight_numel}"
