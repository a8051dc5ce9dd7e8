"""The comparators of a steerable model, built on the same graph:

- ``plain_counterpart`` (from :mod:`steerable3d.models.plain`): every steerable layer replaced by its
  plain-torch analogue (``nn.Conv3d`` with the steerable convolution's output width, i.e. gate scalars
  included; ``nn.InstanceNorm3d``; ``ReLU`` for gates; the same Gaussian low-pass and trilinear upsampling
  per channel; plain concatenation; the spatial mean); the graph (depth, skips, resampling) is ours.
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

from steerable3d.models.plain import _replace, plain_counterpart
from steerable3d.nn import SteerableConv3d

__all__ = ["plain_counterpart", "e3nn_conv", "e3nn_counterpart"]


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
