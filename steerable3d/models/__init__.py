"""Ready-made networks built from :mod:`steerable3d.nn`."""

from .tetris import PlainTetrisCNN, TetrisNet
from .unet import EquivariantUNet
from .plain import plain_counterpart

__all__ = ["TetrisNet", "PlainTetrisCNN", "EquivariantUNet", "plain_counterpart"]
