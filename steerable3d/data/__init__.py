"""Data sets that steerable3d makes itself (no downloads): 3D Tetris."""

from .tetris import TETRIS_CHIRAL_PAIR, tetris_shapes, tetris_volumes

__all__ = ["tetris_shapes", "tetris_volumes", "TETRIS_CHIRAL_PAIR"]
