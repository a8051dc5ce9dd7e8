"""Data that steerable3d makes itself (no downloads): 3D Tetris (here), the MNI152 template
(:mod:`.mni152`), atoms on a grid (:mod:`.atoms`), DFT densities (:mod:`.density`, PySCF and ASE) and
cosmological fields (:mod:`.cosmology`)."""

from .tetris import TETRIS_CHIRAL_PAIR, tetris_shapes, tetris_volumes

__all__ = ["tetris_shapes", "tetris_volumes", "TETRIS_CHIRAL_PAIR"]
