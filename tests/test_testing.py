"""steerable3d.testing: the equivariance checks refuse what they cannot judge."""

import pytest
import torch

from steerable3d.testing import assert_equivariant


def test_assert_equivariant_names_the_dtype_without_a_default_tolerance():
    x = torch.ones(1, 1, 4, 4, 4, dtype=torch.int64)
    with pytest.raises(ValueError, match="no default tolerance for dtype torch.int64"):
        assert_equivariant(lambda v: v, x, "0e", "0e")


def test_assert_equivariant_with_an_explicit_tolerance_accepts_any_dtype_the_check_handles():
    x = torch.rand(1, 1, 4, 4, 4, dtype=torch.float64)
    errors = assert_equivariant(lambda v: 2 * v, x, "0e", "0e", tolerance=1e-12)
    assert errors["0e"] <= 1e-12
