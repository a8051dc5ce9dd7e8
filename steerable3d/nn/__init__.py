"""Equivariant layers acting on fields ``[batch, irreps.dim, X, Y, Z]``."""

from .conv import SteerableConv3d

__all__ = ["SteerableConv3d"]
