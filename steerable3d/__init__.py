"""steerable3d: rotation- and reflection-equivariant (E(3) steerable) CNNs on regular 3D grids."""

__version__ = "0.1.0"

from . import nn, testing
from .export import export
from .sizes import exact_sizes
from .symmetry import grid_symmetries, irreps_D, random_rotations, rotate_field, transform_field

__all__ = [
    "__version__",
    "nn",
    "testing",
    "export",
    "exact_sizes",
    "grid_symmetries",
    "irreps_D",
    "random_rotations",
    "rotate_field",
    "transform_field",
]
