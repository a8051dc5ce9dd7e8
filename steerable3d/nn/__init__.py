"""Equivariant layers acting on fields ``[batch, irreps.dim, X, Y, Z]``."""

from .activation import Gate, NormActivation
from .containers import Concatenate, Residual, Sequential
from .conv import SteerableConv3d, SteerableConvTranspose3d
from .norm import BatchNorm3d, Dropout, InstanceNorm3d
from .pooling import AvgPool3d, GlobalPool, LowPassPool3d, NormMaxPool3d, Upsample
from .tensor_product import SelfTensorProduct

__all__ = [
    "SteerableConv3d",
    "SteerableConvTranspose3d",
    "Gate",
    "NormActivation",
    "SelfTensorProduct",
    "BatchNorm3d",
    "InstanceNorm3d",
    "Dropout",
    "Sequential",
    "Residual",
    "Concatenate",
    "AvgPool3d",
    "NormMaxPool3d",
    "LowPassPool3d",
    "GlobalPool",
    "Upsample",
]
