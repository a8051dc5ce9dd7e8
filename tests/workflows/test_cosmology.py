"""A small version of the cosmology protocol: a displacement model on 16^3 periodic boxes."""

import numpy as np
import pytest
import torch

from steerable3d.cli import main
from steerable3d.workflows import cosmology

STEPS = 150  # about 35 s on one core


def test_field_task_draws_reproducible_pairs():
    task = cosmology.FieldTask("displacement", 16, 64.0)
    delta, psi = task.sample(2, torch.Generator().manual_seed(0))
    again, _ = task.sample(2, torch.Generator().manual_seed(0))
    assert delta.shape == (2, 1, 16, 16, 16) and psi.shape == (2, 3, 16, 16, 16) and torch.equal(delta, again)
    _, rho = cosmology.FieldTask("density", 16, 64.0).sample(2, torch.Generator().manual_seed(0))
    assert rho.shape == (2, 1, 16, 16, 16) and rho.min() >= -1
    with pytest.raises(ValueError, match="task: expected one of"):
        cosmology.FieldTask("velocity")
    with pytest.raises(ValueError, match="size: expected a multiple of 4"):
        cosmology.FieldTask("density", 18)


def test_small_displacement_model_correlates_at_low_k_and_is_exact_on_the_grid():
    task = cosmology.FieldTask("displacement", 16, 64.0)
    models = cosmology.build_models(task)
    torch.manual_seed(0)
    model = models["EquivariantUNet"]()
    cosmology.train_model(model, task, STEPS, lr=2e-3)
    test = task.sample(4, torch.Generator().manual_seed(99))
    scores = cosmology.evaluate(model, task, test)
    low = np.asarray(scores["k"]) < np.pi * task.size / (2 * task.box_size)
    assert np.min(np.asarray(scores["r"])[low]) > 0.99
    assert cosmology.grid_error(model, task, test[0][:2]) < 1e-5
    torch.manual_seed(0)
    plain = models["plain CNN (same graph)"]()
    assert cosmology.grid_error(plain, task, test[0][:2]) > 1e-2  # the plain graph is not equivariant


def test_cli_prints_the_tables_and_saves_the_figure(tmp_path, capsys):
    argv = ["cosmology", "--steps", "2", "--size", "8", "--box", "32", "--test", "2", "--train-boxes", "3", "--json", str(tmp_path / "c.json"),
            "--plot", str(tmp_path / "c.png")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "**displacement**" in out and "**density**" in out and "| plain CNN (same graph) |" in out
    assert len(cosmology.load_results(tmp_path / "c.json")) == 4
    assert (tmp_path / "c.png").stat().st_size > 20_000
