"""The comparators of a steerable model, built on the same graph:

- ``plain_counterpart``: every steerable layer replaced by its plain-torch analogue (``nn.Conv3d`` with the
  steerable convolution's output width, i.e. gate scalars included; ``nn.InstanceNorm3d``; ``ReLU`` for
  gates and norm nonlinearities; the same Gaussian low-pass and trilinear upsampling per channel; plain
  concatenation; the spatial mean). A plain ReLU keeps every channel, so each plain convolution also takes
  the wider input; the graph (depth, skips, resampling) is ours.
- ``e3nn_counterpart``: every ``SteerableConv3d`` replaced by e3nn's voxel convolution
  (``v2104.voxel_convolution.Convolution``, spherical harmonics to l=4, 3 radial functions, the same
  physical diameter and voxel size), everything else ours.

The counterparts keep our modules' ``forward`` code (the U-Net's skips, TetrisNet's pooling), so the
comparison is layer for layer.
"""

from __future__ import annotations

import copy

import torch
from e3nn import o3
from e3nn.nn.models.v2104.voxel_convolution import Convolution

from steerable3d.models import TetrisNet
from steerable3d.nn import Concatenate, Gate, GlobalPool, InstanceNorm3d, LowPassPool3d, SelfTensorProduct, SteerableConv3d, Upsample


class ChannelwiseLowPass(torch.nn.Module):
    """Our Gaussian low-pass subsampling applied to any number of channels (as one ``0e`` field each)."""

    def __init__(self, pool: LowPassPool3d) -> None:
        super().__init__()
        self.pool = LowPassPool3d("0e", pool.stride, sigma=pool.sigma, padding_mode=pool.padding_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        y = self.pool(x.reshape(b * c, 1, *x.shape[2:]))
        return y.reshape(b, c, *y.shape[2:])


class Cat(torch.nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=1)


class SpatialMean(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).mean(-1)


def _plain_layer(module: torch.nn.Module) -> torch.nn.Module | None:
    """The plain analogue of one steerable layer (lazy: input widths are found on the first call)."""
    if isinstance(module, SteerableConv3d):
        return torch.nn.LazyConv3d(
            module.irreps_out.dim, tuple(module.taps), stride=module.stride, padding=module._padding(),
            padding_mode=module.padding_mode, bias=module.bias is not None,
        )
    if isinstance(module, InstanceNorm3d):
        return torch.nn.LazyInstanceNorm3d(affine=True)
    if isinstance(module, Gate):
        return torch.nn.ReLU()
    if isinstance(module, LowPassPool3d):
        return ChannelwiseLowPass(module)
    if isinstance(module, Upsample):
        if module.padding_mode != "zeros":
            raise NotImplementedError("plain counterpart of a circular Upsample")
        return torch.nn.Upsample(scale_factor=module.scale_factor, mode=module.mode)
    if isinstance(module, Concatenate):
        return Cat()
    if isinstance(module, GlobalPool):
        return SpatialMean()
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


class PlainTetris(torch.nn.Module):
    """TetrisNet's feature graph in plain torch, then a linear read-out to the 8 logits."""

    def __init__(self, features: torch.nn.Module) -> None:
        super().__init__()
        self.features = features
        self.readout = torch.nn.LazyLinear(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.features(x))


def plain_counterpart(model: torch.nn.Module, example: torch.Tensor) -> torch.nn.Module:
    """The plain-torch model on the graph of ``model``, materialized by one call on ``example``."""
    if isinstance(model, TetrisNet):
        plain = PlainTetris(_replace(copy.deepcopy(model.features), _plain_layer))
    else:
        plain = _replace(copy.deepcopy(model), _plain_layer)
    with torch.no_grad():
        plain(example)
    return plain


def e3nn_conv(module: torch.nn.Module) -> torch.nn.Module | None:
    """e3nn's voxel convolution in place of a ``SteerableConv3d`` (None for other modules)."""
    if not isinstance(module, SteerableConv3d):
        return None
    if max(module.taps) == 1:
        return module  # a 1x1x1 head: e3nn's conv has no such kernel; keep ours
    if module.padding_mode != "zeros" or any(s != 1 for s in module.stride):
        raise NotImplementedError("e3nn counterpart: stride-1 convolutions with zero padding only")
    # as in bench_conv: diameter = taps x voxel size (radius 2.5 voxels for 5 taps)
    conv = Convolution(module.irreps_in, module.irreps_out, o3.Irreps.spherical_harmonics(4),
                       diameter=max(module.taps) * max(module.spacing), num_radial_basis=3, steps=module.spacing)
    # e3nn pads "same" (its self-connection needs the input's size); ours may pad more (TetrisNet pads fully)
    extra = [p - t // 2 for p, t in zip(module._padding(), module.taps)]
    if any(extra):
        return torch.nn.Sequential(torch.nn.ConstantPad3d([e for e in reversed(extra) for _ in range(2)], 0.0), conv)
    return conv


def e3nn_counterpart(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with e3nn's voxel convolution in place of every steerable convolution."""
    return _replace(copy.deepcopy(model), e3nn_conv)
