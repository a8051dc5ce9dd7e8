"""steerable3d.io: NIfTI reading/writing, RAS reorientation, oblique images, errors and atomic writes."""

from __future__ import annotations

import os

import nibabel as nib
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from steerable3d.io import Volume, from_ras, load_nifti, save_nifti, to_ras

SPACING = (0.8, 1.0, 2.5)
SHAPE = (5, 6, 7)


def f32(affine) -> np.ndarray:
    """NIfTI stores the affine in float32: make it exactly representable so round trips can be exact."""
    return np.asarray(affine, dtype=np.float32).astype(np.float64)


def lps_affine() -> np.ndarray:
    affine = np.diag([-SPACING[0], -SPACING[1], SPACING[2], 1.0])
    affine[:3, 3] = [10.3, -4.1, 7.7]
    return f32(affine)


def pir_affine() -> np.ndarray:
    """Voxel axes i, j, k point Posterior, Inferior, Right (sagittal acquisition), voxel sizes SPACING."""
    linear = np.zeros((3, 3))
    linear[1, 0], linear[2, 1], linear[0, 2] = -SPACING[0], -SPACING[1], SPACING[2]
    affine = np.eye(4)
    affine[:3, :3], affine[:3, 3] = linear, [-3.2, 12.9, -20.5]
    return f32(affine)


def oblique_affine() -> np.ndarray:
    rotation = Rotation.from_euler("xyz", [20, -15, 30], degrees=True).as_matrix()
    affine = np.eye(4)
    affine[:3, :3], affine[:3, 3] = rotation * SPACING, [4.0, -6.0, 2.0]
    return f32(affine)


def write(path, array, affine, **header_fields) -> str:
    image = nib.Nifti1Image(array, affine)
    for key, value in header_fields.items():
        image.header[key] = value
    nib.save(image, str(path))
    return str(path)


def world(affine: np.ndarray, index) -> np.ndarray:
    return affine[:3, :3] @ np.asarray(index, dtype=np.float64) + affine[:3, 3]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("make_affine", [lps_affine, pir_affine])
@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_round_trip(tmp_path, rng, make_affine, suffix):
    affine = make_affine()
    array = rng.standard_normal(SHAPE).astype(np.float32)
    volume = load_nifti(write(tmp_path / f"a{suffix}", array, affine))
    assert volume.data.dtype == torch.float32 and volume.data.shape == (1, *SHAPE) and volume.shape == SHAPE
    np.testing.assert_array_equal(volume.data[0].numpy(), array)
    np.testing.assert_array_equal(volume.affine, affine)
    np.testing.assert_allclose(volume.spacing, SPACING, rtol=1e-6)

    again = load_nifti(save_nifti(tmp_path / f"b{suffix}", volume))
    assert torch.equal(again.data, volume.data)
    np.testing.assert_array_equal(again.affine, affine)
    assert nib.load(tmp_path / f"b{suffix}").get_data_dtype() == np.float32


def test_multichannel_round_trip(tmp_path, rng):
    array = rng.standard_normal((*SHAPE, 3)).astype(np.float32)
    volume = load_nifti(write(tmp_path / "a.nii.gz", array, lps_affine()))
    assert volume.data.shape == (3, *SHAPE)
    np.testing.assert_array_equal(volume.data.numpy(), np.moveaxis(array, -1, 0))

    path = save_nifti(tmp_path / "b.nii.gz", volume.data, affine=volume.affine)
    np.testing.assert_array_equal(nib.load(path).get_fdata(dtype=np.float32), array)  # channels last on disk
    assert torch.equal(load_nifti(path).data, volume.data)


def test_vector_image_with_singleton_time_axis(tmp_path, rng):
    array = rng.standard_normal((*SHAPE, 1, 3)).astype(np.float32)
    volume = load_nifti(write(tmp_path / "v.nii", array, lps_affine()))
    np.testing.assert_array_equal(volume.data.numpy(), np.moveaxis(array[:, :, :, 0], -1, 0))


@pytest.mark.parametrize("low, high, disk", [(0, 5, np.uint8), (-3, 1000, np.int16), (0, 70000, np.int32)])
def test_label_map_keeps_integers(tmp_path, low, high, disk):
    labels = torch.randint(low, high + 1, (1, *SHAPE))
    labels[0, 0, 0, 0], labels[0, -1, -1, -1] = low, high
    path = save_nifti(tmp_path / "labels.nii.gz", labels, affine=pir_affine())
    image = nib.load(path)
    assert image.get_data_dtype() == disk and image.ndim == 3
    np.testing.assert_array_equal(np.asanyarray(image.dataobj), labels[0].numpy())
    loaded = load_nifti(path, dtype=torch.long)
    assert loaded.data.dtype == torch.long and torch.equal(loaded.data, labels)


def test_scaling_applied_on_load_and_reset_on_save(tmp_path, rng):
    raw = rng.integers(-100, 100, SHAPE).astype(np.int16)
    image = nib.Nifti1Image(raw, lps_affine())
    image.header.set_slope_inter(0.5, 10.0)
    nib.save(image, tmp_path / "scaled.nii")
    volume = load_nifti(tmp_path / "scaled.nii", dtype=torch.float64)
    np.testing.assert_array_equal(volume.data[0].numpy(), raw * 0.5 + 10.0)

    values = torch.rand(1, *SHAPE) * 1000
    path = save_nifti(tmp_path / "out.nii", values, like=tmp_path / "scaled.nii")
    assert torch.equal(load_nifti(path).data, values)


def test_like_copies_affine_and_header(tmp_path, rng):
    image = nib.Nifti1Image(rng.standard_normal(SHAPE).astype(np.float32), pir_affine())
    image.set_sform(pir_affine(), "scanner")
    image.set_qform(pir_affine(), "talairach")
    image.header.set_xyzt_units("mm", "msec")
    image.header.set_dim_info(freq=1, phase=0, slice=2)
    image.header["cal_min"], image.header["cal_max"] = -3.0, 500.0
    nib.save(image, tmp_path / "template.nii.gz")

    path = save_nifti(tmp_path / "out.nii.gz", torch.rand(2, *SHAPE), like=tmp_path / "template.nii.gz")
    header = nib.load(path).header
    assert int(header["sform_code"]) == 1 and int(header["qform_code"]) == 3
    assert header.get_xyzt_units() == ("mm", "msec")
    assert header.get_dim_info() == (1, 0, 2)
    assert header["cal_min"] == header["cal_max"] == 0  # the template's display range is not the data's
    assert header.get_data_shape() == (*SHAPE, 2)
    np.testing.assert_array_equal(nib.load(path).affine, pir_affine())
    np.testing.assert_allclose(header.get_qform(), pir_affine(), atol=1e-5)

    # a Volume or a nibabel image as template gives the same affine
    for like in (load_nifti(tmp_path / "template.nii.gz"), nib.load(tmp_path / "template.nii.gz")):
        other = save_nifti(tmp_path / "other.nii", torch.rand(*SHAPE), like=like)
        np.testing.assert_array_equal(nib.load(other).affine, pir_affine())


def test_saving_a_reoriented_volume_keeps_codes(tmp_path, rng):
    image = nib.Nifti1Image(rng.standard_normal(SHAPE).astype(np.float32), lps_affine())
    image.set_sform(lps_affine(), "scanner")
    image.set_qform(lps_affine(), "scanner")
    nib.save(image, tmp_path / "lps.nii")
    ras = load_nifti(tmp_path / "lps.nii", ras=True)
    saved = nib.load(save_nifti(tmp_path / "ras.nii", ras))
    assert int(saved.header["sform_code"]) == int(saved.header["qform_code"]) == 1  # still scanner space
    np.testing.assert_array_equal(saved.affine, f32(ras.affine))  # the file stores float32
    assert nib.aff2axcodes(saved.header.get_qform()) == ("R", "A", "S")
    assert torch.equal(load_nifti(tmp_path / "ras.nii").data, ras.data)


def test_new_header_is_in_mm(tmp_path):
    path = save_nifti(tmp_path / "a.nii", np.zeros(SHAPE, np.float64), affine=lps_affine())
    image = nib.load(path)
    assert image.header.get_xyzt_units()[0] == "mm" and image.get_data_dtype() == np.float32


@pytest.mark.parametrize("make_affine", [lps_affine, pir_affine, oblique_affine])
def test_to_ras_keeps_world_positions(tmp_path, rng, make_affine):
    volume = Volume(torch.from_numpy(rng.standard_normal((2, *SHAPE)).astype(np.float32)), make_affine())
    ras = to_ras(volume)
    if make_affine is not oblique_affine:
        assert ras.orientation == ("R", "A", "S")
        assert np.all(np.diag(ras.affine)[:3] > 0)
    np.testing.assert_allclose(sorted(ras.spacing), sorted(volume.spacing))
    inverse = np.linalg.inv(ras.affine)
    for index in rng.integers(0, SHAPE, (10, 3)):
        position = world(volume.affine, index)
        new_index = inverse[:3, :3] @ position + inverse[:3, 3]
        np.testing.assert_allclose(new_index, np.round(new_index), atol=1e-9)
        new_index = np.round(new_index).astype(int)
        assert torch.equal(ras.data[(slice(None), *new_index)], volume.data[(slice(None), *index)])
        np.testing.assert_allclose(world(ras.affine, new_index), position, atol=1e-9)


@pytest.mark.parametrize("make_affine", [lps_affine, pir_affine, oblique_affine])
def test_from_ras_is_exact_inverse(tmp_path, rng, make_affine):
    path = write(tmp_path / "a.nii.gz", rng.standard_normal((*SHAPE, 2)).astype(np.float32), make_affine())
    volume = load_nifti(path, oblique="keep")
    ras = load_nifti(path, oblique="keep", ras=True)
    assert torch.equal(ras.data, to_ras(volume).data)
    for like in (volume, path, nib.load(path)):
        back = from_ras(ras, like)
        assert torch.equal(back.data, volume.data)
        assert np.array_equal(back.affine, volume.affine)
        assert back.orientation == volume.orientation


def test_from_ras_is_exact_for_float64_affines(rng):
    # in-memory affines are not float32-rounded: undoing a flip's origin shift rounds (0.1 + 6.3) - 6.3
    affine = np.diag([-0.7, 0.9, -1.3, 1.0])
    affine[:3, 3] = [0.1, -0.3, 1e-3]
    volume = Volume(torch.from_numpy(rng.standard_normal((1, 10, 11, 12)).astype(np.float32)), affine)
    back = from_ras(to_ras(volume), volume)
    assert np.array_equal(back.affine, volume.affine) and torch.equal(back.data, volume.data)


def test_to_ras_on_ras_volume_is_unchanged(rng):
    affine = f32(np.diag([*SPACING, 1.0]) + np.c_[np.zeros((4, 3)), [1.5, 2.5, -3.5, 0]])
    volume = Volume(torch.from_numpy(rng.standard_normal((1, *SHAPE)).astype(np.float32)), affine)
    ras = to_ras(volume)
    assert torch.equal(ras.data, volume.data) and np.array_equal(ras.affine, volume.affine)
    assert ras.data is volume.data and ras.affine is not volume.affine  # no copy of the data, own affine
    assert ras.orientation == ("R", "A", "S")


def test_to_ras_moves_dim_info(tmp_path, rng):
    image = nib.Nifti1Image(rng.standard_normal(SHAPE).astype(np.float32), pir_affine())
    image.header.set_dim_info(slice=2)  # k points Right: it becomes the RAS x axis
    nib.save(image, tmp_path / "a.nii")
    assert load_nifti(tmp_path / "a.nii", ras=True).header.get_dim_info()[2] == 0


def test_oblique_default_refuses(tmp_path, rng):
    path = write(tmp_path / "tilted_scan.nii.gz", rng.random(SHAPE).astype(np.float32), oblique_affine())
    with pytest.raises(ValueError, match=r"(?s)tilted_scan\.nii\.gz.*oblique.*resample"):
        load_nifti(path)


def test_oblique_keep_returns_stored_affine(tmp_path, rng):
    array = rng.random(SHAPE).astype(np.float32)
    volume = load_nifti(write(tmp_path / "o.nii", array, oblique_affine()), oblique="keep")
    np.testing.assert_array_equal(volume.affine, oblique_affine())
    np.testing.assert_array_equal(volume.data[0].numpy(), array)


def test_almost_aligned_is_not_oblique(tmp_path, rng):
    affine = lps_affine()
    affine[1, 0] = 1e-6  # qform quaternions and float32 storage leave such residues
    volume = load_nifti(write(tmp_path / "a.nii", rng.random(SHAPE).astype(np.float32), affine))
    np.testing.assert_array_equal(volume.affine, f32(affine))


def test_oblique_resample_interpolates_linear_function(tmp_path):
    affine, shape = oblique_affine(), (12, 14, 10)
    gradient, bias = np.array([0.3, -0.7, 0.45]), 2.0

    def f(points):  # linear in world mm: reproduced exactly by trilinear interpolation
        return points @ gradient + bias

    index = np.stack(np.meshgrid(*map(np.arange, shape), indexing="ij"), -1)
    array = f(index @ affine[:3, :3].T + affine[:3, 3]).astype(np.float32)
    volume = load_nifti(write(tmp_path / "o.nii.gz", array, affine), oblique="resample", dtype=torch.float64)

    linear = volume.affine[:3, :3]
    assert np.count_nonzero(linear) == 3 and np.array_equal(np.abs(linear).astype(bool).sum(0), [1, 1, 1])
    np.testing.assert_allclose(volume.spacing, SPACING, rtol=1e-6)
    assert volume.orientation == nib.aff2axcodes(affine)  # the closest axis-aligned orientation

    new_index = np.stack(np.meshgrid(*map(np.arange, volume.shape), indexing="ij"), -1).reshape(-1, 3)
    points = new_index @ linear.T + volume.affine[:3, 3]
    source_index = (points - affine[:3, 3]) @ np.linalg.inv(affine[:3, :3]).T
    inside = np.all((source_index >= 0) & (source_index <= np.array(shape) - 1), axis=1)
    assert inside.sum() > 200
    values = volume.data[0].numpy().reshape(-1)
    np.testing.assert_allclose(values[inside], f(points[inside]), atol=1e-4)
    assert np.all(values[~inside & np.any(source_index < -1, axis=1)] == 0)  # zero outside the source grid

    # the new grid covers the source field of view (its voxel box)
    corners = np.array([[a, b, c] for a in (-0.5, shape[0] - 0.5) for b in (-0.5, shape[1] - 0.5)
                        for c in (-0.5, shape[2] - 0.5)]) @ affine[:3, :3].T + affine[:3, 3]
    corner_index = (corners - volume.affine[:3, 3]) @ np.linalg.inv(linear).T
    assert np.all(corner_index >= -0.5 - 1e-6) and np.all(corner_index <= np.array(volume.shape) - 0.5 + 1e-6)


def test_oblique_resample_nearest(tmp_path, rng):
    array = rng.integers(0, 4, SHAPE).astype(np.float32)
    path = write(tmp_path / "o.nii", array, oblique_affine())
    volume = load_nifti(path, oblique="resample", order=0)
    assert set(np.unique(volume.data.numpy())) <= {0.0, 1.0, 2.0, 3.0}


def test_missing_file(tmp_path):
    path = tmp_path / "nothing_here.nii.gz"
    with pytest.raises(FileNotFoundError, match="nothing_here.nii.gz"):
        load_nifti(path)
    with pytest.raises(FileNotFoundError, match="nothing_here.nii.gz"):
        save_nifti(tmp_path / "x.nii", torch.zeros(SHAPE), like=path)


@pytest.mark.parametrize("name", ["garbage.nii.gz", "garbage.nii"])
def test_corrupt_file(tmp_path, rng, name):
    (tmp_path / name).write_bytes(rng.bytes(600))
    with pytest.raises(ValueError, match=name.replace(".", r"\.")):
        load_nifti(tmp_path / name)


def test_truncated_file(tmp_path, rng):
    path = write(tmp_path / "cut.nii.gz", rng.standard_normal((40, 40, 40)).astype(np.float32), lps_affine())
    content = open(path, "rb").read()
    open(path, "wb").write(content[: len(content) // 2])
    with pytest.raises(ValueError, match=r"cut\.nii\.gz"):
        load_nifti(path)


def test_two_dimensional_image(tmp_path):
    path = write(tmp_path / "flat.nii", np.zeros((5, 6), np.float32), np.eye(4))
    with pytest.raises(ValueError, match=r"(?s)flat\.nii.*\(5, 6\)"):
        load_nifti(path)


def test_non_finite_values(tmp_path, rng):
    array = rng.random(SHAPE).astype(np.float32)
    array[0, 0, 0], array[1, 2, 3], array[4, 5, 6] = np.nan, np.inf, np.nan
    with pytest.raises(ValueError, match=r"nan\.nii.* 3 of 210 voxels"):
        load_nifti(write(tmp_path / "nan.nii", array, np.eye(4)))


@pytest.mark.parametrize("kwargs, message", [
    ({"oblique": "ignore"}, "oblique"),
    ({"order": 7}, "order"),
    ({"dtype": "float32"}, "dtype"),
])
def test_bad_arguments(tmp_path, kwargs, message):
    path = write(tmp_path / "a.nii", np.zeros(SHAPE, np.float32), np.eye(4))
    with pytest.raises(ValueError, match=message):
        load_nifti(path, **kwargs)


def test_save_errors(tmp_path):
    like = write(tmp_path / "like.nii", np.zeros(SHAPE, np.float32), lps_affine())
    with pytest.raises(ValueError, match=r"\(5, 6, 8\).*\(5, 6, 7\)"):
        save_nifti(tmp_path / "a.nii", torch.zeros(1, 5, 6, 8), like=like)
    with pytest.raises(ValueError, match="affine"):
        save_nifti(tmp_path / "a.nii", torch.zeros(SHAPE))
    with pytest.raises(ValueError, match="not both"):
        save_nifti(tmp_path / "a.nii", torch.zeros(SHAPE), like=like, affine=np.eye(4))
    with pytest.raises(ValueError, match="4x4"):
        save_nifti(tmp_path / "a.nii", torch.zeros(SHAPE), affine=np.eye(3))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        save_nifti(tmp_path / "a.nii", torch.zeros(2, 3), affine=np.eye(4))
    with pytest.raises(ValueError, match=r"\.nii or \.nii\.gz"):
        save_nifti(tmp_path / "a.img", torch.zeros(SHAPE), affine=np.eye(4))
    with pytest.raises(FileNotFoundError, match="missing_dir"):
        save_nifti(tmp_path / "missing_dir" / "a.nii", torch.zeros(SHAPE), affine=np.eye(4))
    assert sorted(os.listdir(tmp_path)) == ["like.nii"]


@pytest.mark.parametrize("name", ["target.nii.gz", "target.nii"])
def test_atomic_write(tmp_path, monkeypatch, name):
    target = tmp_path / name
    save_nifti(target, torch.ones(SHAPE), affine=lps_affine())
    before = target.read_bytes()
    written = []

    def broken_save(image, filename):
        written.append(os.fspath(filename))
        with open(filename, "wb") as file:
            file.write(b"half a header")
        raise OSError("disk full")

    monkeypatch.setattr(nib, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_nifti(target, torch.zeros(SHAPE), affine=lps_affine())
    assert written and os.path.dirname(written[0]) == str(tmp_path) and written[0].endswith(
        ".nii.gz" if name.endswith(".gz") else ".nii")
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == [name]


def test_save_keeps_file_mode(tmp_path):
    path = save_nifti(tmp_path / "a.nii", torch.zeros(SHAPE), affine=np.eye(4))
    reference = tmp_path / "reference"
    reference.touch()
    assert os.stat(path).st_mode == os.stat(reference).st_mode
