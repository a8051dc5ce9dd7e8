import nibabel as nib
import numpy as np
import pytest

AFFINE = np.array([[-1.5, 0, 0, 10.0], [0, -1.5, 0, 20.0], [0, 0, 1.5, -5.0], [0, 0, 0, 1]])  # LPS, 1.5 mm


def _make_dataset(root, n=4, size=16, seed=0):
    """Noisy images of a bright ball at a random place; label 1 inside the ball. Returns the two folders."""
    rng = np.random.default_rng(seed)
    images, labels = root / "images", root / "labels"
    images.mkdir()
    labels.mkdir()
    grid = np.stack(np.meshgrid(*[np.arange(size)] * 3, indexing="ij"), -1)
    for i in range(n):
        centre = rng.uniform(5, size - 6, 3)
        ball = (np.linalg.norm(grid - centre, axis=-1) < 4).astype(np.uint8)
        image = 100 + 50 * ball + 10 * rng.standard_normal(ball.shape)
        nib.save(nib.Nifti1Image(image.astype(np.float32), AFFINE), images / f"case{i}.nii.gz")
        nib.save(nib.Nifti1Image(ball, AFFINE), labels / f"case{i}.nii.gz")
    return images, labels


@pytest.fixture(scope="session")
def make_dataset():
    """``make_dataset(root, n=4, size=16, seed=0) -> (images, labels)``: a NIfTI segmentation set (LPS, 1.5 mm)."""
    return _make_dataset


@pytest.fixture
def lps_affine():
    return AFFINE.copy()
