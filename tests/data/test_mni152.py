import numpy as np
import pytest
import torch

pytest.importorskip("nilearn")

from steerable3d import transform_field  # noqa: E402
from steerable3d.data.mni152 import TASKS, load_mni152, make_labels, reduce  # noqa: E402


@pytest.fixture(scope="module")
def template():
    return load_mni152()


def test_template_is_the_packaged_1mm_brain(template):
    assert template.t1.shape == (197, 233, 189) and template.spacing == 1.0
    assert 0 <= template.gm.min() and template.gm.max() <= 1 and template.wm.max() <= 1
    brain = (template.gm + template.wm) > 0.5
    assert 0.15 < brain.mean() < 0.25  # a brain, not a box
    assert np.array_equal(template.t1, template.t1[::-1])  # the symmetric template: left-right split holds nothing out


def test_reduce_averages_blocks():
    a = np.arange(5 * 4 * 6, dtype=float).reshape(5, 4, 6)
    r = reduce(a, 2)
    assert r.shape == (2, 2, 3) and r[1, 0, 2] == a[2:4, 0:2, 4:6].mean()


def test_labels(template):
    small = template.reduced()
    tissue = make_labels(small.gm, small.wm, "tissue", 2.0)
    context = make_labels(small.gm, small.wm, "context", 2.0)
    assert set(np.unique(tissue)) == {0, 1, 2} and set(np.unique(context)) == {0, 1, 2}
    assert np.array_equal(context > 0, tissue == 1)  # context splits the grey matter
    deeper = make_labels(small.gm, small.wm, "context", 2.0, depth_mm=14.0)
    assert (deeper == 2).sum() < (context == 2).sum()
    with pytest.raises(ValueError, match="task"):
        make_labels(small.gm, small.wm, "lesion", 2.0)
    assert list(TASKS) == ["tissue", "context"]


def test_rotated_block_matches_reduction_and_turns_like_transform_field(template):
    j0, size = np.array([40, 52, 19]), 16
    centre = 2 * j0 + size - 0.5
    block = template.rotated_block(centre, np.eye(3), size)
    direct = template.reduced()
    window = tuple(slice(j, j + size) for j in j0)
    assert np.allclose(block.t1, direct.t1[window], atol=1e-3) and np.allclose(block.gm, direct.gm[window], atol=1e-6)
    # a quarter turn made at 1 mm equals the array transform of the unrotated block (the same convention)
    quarter = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    turned = template.rotated_block(centre, quarter, size)
    expected = transform_field(torch.from_numpy(block.t1)[None, None].double(), "0e", torch.from_numpy(quarter))[0, 0]
    assert np.allclose(turned.t1, expected.numpy(), atol=1e-3)
    assert not np.allclose(turned.t1, block.t1, atol=1.0)
