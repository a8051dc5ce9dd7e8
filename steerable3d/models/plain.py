"""The plain-CNN counterpart of a steerable model: the same graph with every steerable layer replaced by
its ordinary analogue, for side-by-side comparisons (benchmarks, the density and cosmology workflows).

* :class:`~steerable3d.nn.SteerableConv3d` -> ``nn.Conv3d`` with its output width (``irreps_out.dim``, gate
  scalars included), taps, stride, padding and padding mode;
* :class:`~steerable3d.nn.InstanceNorm3d` -> ``nn.InstanceNorm3d(affine=True)``,
  :class:`~steerable3d.nn.BatchNorm3d` -> ``nn.BatchNorm3d``;
  :class:`~steerable3d.nn.Gate` -> ReLU (which keeps every channel, so the next convolution also takes the
  wider input);
* :class:`~steerable3d.nn.LowPassPool3d` and :class:`~steerable3d.nn.Upsample` -> the same resampling
  applied to every channel (periodic boxes included); :class:`~steerable3d.nn.Concatenate` -> ``torch.cat``;
  :class:`~steerable3d.nn.GlobalPool` -> the spatial mean; pointwise tensor products are left out.

The counterpart keeps the model's own ``forward`` code (skips, pooling), so the comparison is layer for
layer. Input widths are found on a first call (lazy modules).
"""

from __future__ import annotations

import copy

import torch

from ..nn import BatchNorm3d, Concatenate, Gate, GlobalPool, InstanceNorm3d, LowPassPool3d, SelfTensorProduct, SteerableConv3d, Upsample
from .tetris import TetrisNet

__all__ = ["plain_counterpart"]


class _Channelwise(torch.nn.Module):
    """A resampling layer built for one ``0e`` field, applied to every channel (channels go into the batch)."""

    def __init__(self, layer: torch.nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        y = self.layer(x.reshape(b * c, 1, *x.shape[2:]))
        return y.reshape(b, c, *y.shape[2:])


class _Cat(torch.nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=1)


class _SpatialMean(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).mean(-1)


def _plain_layer(module: torch.nn.Module) -> torch.nn.Module | None:
    """The plain analogue of one steerable layer, or None for a container to descend into."""
    if isinstance(module, SteerableConv3d):
        return torch.nn.LazyConv3d(
            module.irreps_out.dim, tuple(module.taps), stride=module.stride, padding=module._padding(),
            padding_mode=module.padding_mode, bias=module.bias is not None,
        )
    if isinstance(module, InstanceNorm3d):
        return torch.nn.LazyInstanceNorm3d(affine=True)
    if isinstance(module, BatchNorm3d):
        return torch.nn.LazyBatchNorm3d()
    if isinstance(module, Gate):
        return torch.nn.ReLU()
    if isinstance(module, LowPassPool3d):
        return _Channelwise(LowPassPool3d("0e", module.stride, spacing=module.spacing, sigma=module.sigma, padding_mode=module.padding_mode))
    if isinstance(module, Upsample):
        return _Channelwise(Upsample("0e", module.scale_factor, mode=module.mode, padding_mode=module.padding_mode))
    if isinstance(module, Concatenate):
        return _Cat()
    if isinstance(module, GlobalPool):
        return _SpatialMean()
    if isinstance(module, SelfTensorProduct):
        return torch.nn.Identity()  # pointwise products have no plain analogue; leave them out
    return None


def _replace(model: torch.nn.Module, convert) -> torch.nn.Module:
    for name, child in list(model.named_children()):
        replacement = convert(child)
        if replacement is None:
            _replace(child, convert)
        else:
            setattr(model, name, replacement)
    return model


class _PlainTetris(torch.nn.Module):
    """TetrisNet's feature graph in plain torch, then a linear read-out to the 8 logits."""

    def __init__(self, features: torch.nn.Module) -> None:
        super().__init__()
        self.features = features
        self.readout = torch.nn.LazyLinear(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.features(x))


def plain_counterpart(model: torch.nn.Module, example: torch.Tensor) -> torch.nn.Module:
    """The plain-torch model on the graph of ``model`` (not sharing its weights; freshly initialized),
    materialized by one call on ``example`` (an input ``[B, C, X, Y, Z]`` of ``model``).

    Example:
        >>> from steerable3d.models import EquivariantUNet
        >>> unet = EquivariantUNet(3, 1, 2, (16, 32), (2,))
        >>> plain = plain_counterpart(unet, torch.randn(1, 1, 8, 8, 8))
        >>> plain(torch.randn(2, 1, 8, 8, 8)).shape
        torch.Size([2, 2, 8, 8, 8])
    """
    if isinstance(model, TetrisNet):
        plain = _PlainTetris(_replace(copy.deepcopy(model.features), _plain_layer))
    else:
        plain = _replace(copy.deepcopy(model), _plain_layer)
    with torch.no_grad():
        plain(example)
    return plain
