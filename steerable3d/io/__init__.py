"""Reading and writing NIfTI images as ``[C, X, Y, Z]`` tensors with their voxel-to-world affine (mm)."""

from .nifti import Volume, from_ras, load_nifti, save_nifti, to_ras

__all__ = ["Volume", "load_nifti", "save_nifti", "to_ras", "from_ras"]
