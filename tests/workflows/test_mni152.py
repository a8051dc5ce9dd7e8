from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip("nilearn")
pytest.importorskip("monai")

from steerable3d.cli import main  # noqa: E402
from steerable3d.workflows import mni152  # noqa: E402


def test_held_out_sphere_lies_beyond_the_training_region():
    centre_y = mni152.CORNER[1] + (mni152.SIZE - 1) / 2
    assert centre_y - mni152.RADIUS >= mni152.TRAIN_Y + 2  # a margin of at least 2 voxels (4 mm)
    assert mni152._sphere().sum() > 6000


def test_sphere_dice():
    sphere = torch.ones(4, 4, 4, dtype=torch.bool)
    labels = torch.zeros(4, 4, 4, dtype=torch.long)
    labels[:2] = 1
    prediction = labels.clone()
    prediction[0] = 2
    assert mni152.sphere_dice(prediction, labels, sphere) == [2 * 16 / (16 + 32), 0.0]
    sphere[:, :, :] = False
    assert all(np.isnan(mni152.sphere_dice(prediction, labels, sphere)))


def test_small_protocol_is_exact_under_grid_rotations(tmp_path):
    """A few steps of the whole protocol with small networks: the equivariant net and the per-voxel
    classifier score the same Dice under grid rotations as unrotated; the plain U-Net does not."""
    from monai.networks.nets import UNet

    from steerable3d.models import EquivariantUNet

    small = {
        "EquivariantUNet": lambda: EquivariantUNet(3, 1, 3, (12,), (), irreps=["4x0e + 1x1o"], parity=True, spacing=2.0,
                                                 kernel_size=3, convolutions=1),
        "MONAI UNet": lambda: UNet(3, 1, 3, (4, 8), (2,), num_res_units=1, norm="instance"),
    }
    torch.manual_seed(0)
    results = mni152.run(tasks=("context",), patches=(4,), steps=2, rotations=1, seeds=(0, 1), log=lambda s: None,
                         models=lambda classes: small)
    assert [r.seed for r in results] == [0] * 3 + [1] * 3
    seed_runs = {r.model: [s for s in results if s.model == r.model] for r in results}
    by_model = {r.model: r for r in results if r.seed == 1}
    for name in ("EquivariantUNet", "per-voxel intensity"):
        dice = by_model[name].dice
        assert len(dice["grid rotations"]) == 6
        assert np.allclose(dice["grid rotations"], dice["unrotated"][0], rtol=0, atol=1e-12), name
    plain = by_model["MONAI UNet"].dice
    assert np.ptp(plain["grid rotations"]) > 1e-4
    table = mni152.format_tables(results)
    mni152.save_results(results, tmp_path / "r.json")
    assert mni152.format_tables(mni152.load_results(tmp_path / "r.json")) == table
    mni152.plot_learning_curves(results, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert f"| EquivariantUNet | {by_model['EquivariantUNet'].parameters:,} | 4 | 2 |" in table and "arbitrary rotations" in table
    # one row per model over both seeds: the mean of the two seeds' scores, which differ (own pools and rotations)
    for name, runs in seed_runs.items():
        row = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
        arbitrary = [100 * np.mean(r.dice["arbitrary rotations"]) for r in runs]
        assert f"{np.mean(arbitrary):.2f} +- {np.std(arbitrary, ddof=1):.2f} / {100 * min(min(r.dice['arbitrary rotations']) for r in runs):.2f} |" in row
    assert seed_runs["per-voxel intensity"][0].dice["arbitrary rotations"] != seed_runs["per-voxel intensity"][1].dice["arbitrary rotations"]


def test_cli_rejects_bad_counts(capsys):
    assert main(["mni152", "--steps", "0"]) == 2
    assert "--steps" in capsys.readouterr().err
    assert main(["mni152", "--seeds", "0"]) == 2
    assert "--seeds" in capsys.readouterr().err


def test_training_stops_before_a_non_finite_step():
    split = SimpleNamespace(image=torch.rand(1, 34, 34, 34), labels=torch.randint(0, 3, (34, 34, 34)))
    torch.manual_seed(0)
    model = torch.nn.Conv3d(1, 3, 1)
    initial = {name: value.clone() for name, value in model.state_dict().items()}
    split.image[0, 1, 1, 1] = float("nan")  # in both patches the pool offers
    with pytest.raises(FloatingPointError, match="step 1 of 3 is nan"):
        mni152.train_model(model, split, [(0, 0, 0), (1, 1, 1)], 3)
    for name, value in model.state_dict().items():
        assert torch.equal(value, initial[name]), name
