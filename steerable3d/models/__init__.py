"""Ready-made networks built from :mod:`steerable3d.nn`."""

from .tetris import PlainTetrisCNN, TetrisNet

__all__ = ["TetrisNet", "PlainTetrisCNN"]
