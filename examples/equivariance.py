"""Check a steerable convolution against the grid symmetries and continuous rotations.

The same as ``steerable3d check``, written out so it can be adapted:

    python examples/equivariance.py
"""

import numpy as np
import torch
from scipy import ndimage

from steerable3d import grid_symmetries, random_rotations, rotate_field, transform_field
from steerable3d.nn import SteerableConv3d

torch.set_default_dtype(torch.float64)  # exact D(R) and exact comparisons
torch.set_grad_enabled(False)
irreps = "8x0e + 4x1o + 2x2e"
conv = SteerableConv3d(irreps, irreps, kernel_size=5)

x = torch.randn(2, conv.irreps_in.dim, 12, 12, 12)
worst = 0.0
for g in grid_symmetries():
    lhs, rhs = conv(transform_field(x, irreps, g)), transform_field(conv(x), irreps, g)
    worst = max(worst, float((lhs - rhs).abs().max() / rhs.abs().max()))
print(f"48 grid symmetries: worst relative error {worst:.1e}")

# continuous rotations need resampling: use a smooth field (white noise blurred by 2 voxels)
noise = np.random.default_rng(0).standard_normal((1, conv.irreps_in.dim, 33, 33, 33))
smooth = torch.from_numpy(ndimage.gaussian_filter(noise, sigma=(0, 0, 2, 2, 2)))
r = random_rotations(1, seed=0)[0]
lhs, rhs = conv(rotate_field(smooth, irreps, r)), rotate_field(conv(smooth), irreps, r)
inner = (..., slice(8, -8), slice(8, -8), slice(8, -8))
print(f"a random rotation: relative L2 error {float((lhs - rhs)[inner].norm() / rhs[inner].norm()):.1e}")
