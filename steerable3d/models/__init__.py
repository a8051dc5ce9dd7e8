"""Ready-made networks built from :mod:`steerable3d.nn`."""

from .tetris import PlainTetrisCNN, TetrisNet
from .unet import EquivariantUNet

__all__ = ["TetrisNet", "PlainTetrisCNN", "EquivariantUNet"]
