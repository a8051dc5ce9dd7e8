"""File formats: NIfTI images as ``[C, X, Y, Z]`` tensors with their voxel-to-world affine (mm), and
Gaussian cube files (a scalar grid, its geometry and the atoms, in Bohr)."""

from .cube import Cube, read_cube, write_cube
from .nifti import Volume, from_ras, load_nifti, save_nifti, to_ras

__all__ = ["Volume", "load_nifti", "save_nifti", "to_ras", "from_ras", "Cube", "read_cube", "write_cube"]
