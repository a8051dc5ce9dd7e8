"""A small version of the electron-density protocol (PySCF, ASE and MONAI are installed by CI)."""

import numpy as np
import pytest
import torch

pytest.importorskip("pyscf")
pytest.importorskip("ase")
pytest.importorskip("monai")

from steerable3d.cli import main  # noqa: E402
from steerable3d.models import EquivariantUNet  # noqa: E402
from steerable3d.workflows import density  # noqa: E402

SMALL = ["H2O", "NH3", "CH4", "HCN"]


@pytest.fixture(scope="module")
def small_set():
    return density.make_set(SMALL, 12, 1.0)


def test_set_holds_the_electrons_and_the_superposition_is_the_baseline(small_set):
    assert small_set.inputs.shape == (4, 5, 12, 12, 12) and small_set.targets.shape == (4, 1, 12, 12, 12)
    counts = small_set.targets.sum(dim=(1, 2, 3, 4))  # voxel volume 1 Bohr^3
    assert torch.allclose(counts, small_set.electrons.float(), rtol=5e-3)
    baseline = density.evaluate(lambda x: x.sum(1, keepdim=True), small_set)
    assert all(0.02 < b < 0.3 for b in baseline)  # the crude guess is off by a few percent to tens of percent


def test_equivariant_model_learns_the_correction_and_is_exact_on_the_grid(small_set):
    torch.manual_seed(0)
    model = density.DensityModel(EquivariantUNet(3, 5, 1, (12, 24), (2,), parity=True, spacing=1.0))
    baseline = np.mean(density.evaluate(lambda x: x.sum(1, keepdim=True), small_set))
    assert np.mean(density.evaluate(model, small_set)) == pytest.approx(baseline, rel=1e-6)  # gain 0: the guess
    losses, _ = density.train_model(model, small_set, len(small_set), 300, lr=3e-3)
    assert np.mean(density.evaluate(model, small_set)) < 0.5 * baseline
    assert density.grid_error(model, small_set.inputs[:2]) < 1e-5


def test_cli_runs_the_protocol_and_saves_tables_and_figure(tmp_path, capsys):
    argv = ["density", "--pool", "3", "--test", "2", "--molecules", "1", "3", "--steps", "3", "--grid", "12", "--spacing", "1.2",
            "--cache", str(tmp_path / "sets.pt"), "--json", str(tmp_path / "r.json"), "--plot", str(tmp_path / "d.png")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for row in ("| superposition of atoms |", "| EquivariantUNet | 3 |", "| MONAI UNet | 1 |"):
        assert row in out
    results = density.load_results(tmp_path / "r.json")
    assert len(results) == 5 and set(results[0].nmae) == {"held out", "held out, rotated"}
    assert (tmp_path / "d.png").stat().st_size > 20_000
    assert main(argv) == 0 and "read from" in capsys.readouterr().out  # the second run reads the cached densities


def test_cli_names_bad_counts(capsys):
    assert main(["density", "--pool", "0", "--cache", "none"]) == 2
    assert "pool: expected None or a positive number of training molecules, got 0" in capsys.readouterr().err
