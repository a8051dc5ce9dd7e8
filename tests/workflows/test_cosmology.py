"""A small version of the cosmology protocol: a displacement model on 16^3 periodic boxes."""

import numpy as np
import pytest
import torch

from steerable3d.cli import main
from steerable3d.data.cosmology import CICPaint
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


@pytest.mark.parametrize("paint", [False, True])
def test_both_models_start_from_a_zero_prediction(paint):
    """The protocol starts both networks from zero (linear weights and gain at 0), the plain graph too,
    whose linear layer plain_counterpart builds anew."""
    task = cosmology.FieldTask("density", 8, 32.0)
    delta, _ = task.sample(1, torch.Generator().manual_seed(0))
    for name, build in cosmology.build_models(task, paint=paint).items():
        model = build().eval()
        with torch.no_grad():
            assert float(model(delta).abs().max()) == 0.0, name
            assert float(model.linear.weight.abs().max()) == 0.0 and float(model.gain.detach()) == 0.0, name


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
    with torch.no_grad():
        plain.gain.fill_(1.0)  # it starts from a zero prediction; its U-Net part is the one to look at
    assert cosmology.grid_error(plain, task, test[0][:2]) > 1e-2  # the plain graph is not equivariant


def test_paint_layer_turns_the_displacement_task_target_into_the_density_task_target():
    # same seed, same fields: the displacement target (voxels) painted is the density target
    _, psi = cosmology.FieldTask("displacement", 16, 64.0).sample(2, torch.Generator().manual_seed(7))
    _, rho = cosmology.FieldTask("density", 16, 64.0).sample(2, torch.Generator().manual_seed(7))
    assert psi.abs().max() > 1 and torch.allclose(CICPaint()(psi), rho, atol=1e-5)


def test_painted_density_models_are_exact_on_the_grid_and_the_plain_graph_keeps_the_paint_layer(float64):
    task = cosmology.FieldTask("density", 8, 32.0)
    models = cosmology.build_models(task, paint=True)
    assert list(models) == ["EquivariantUNet + CIC paint", "plain CNN (same graph) + CIC paint"]
    delta = task.sample(2, torch.Generator().manual_seed(0))[0].double()
    torch.manual_seed(0)
    model = models["EquivariantUNet + CIC paint"]()
    assert isinstance(model.paint, CICPaint) and str(model.irreps_out) == "1x0e"
    assert model(delta).abs().max() == 0  # a zero displacement at the start: a uniform density
    with torch.no_grad():  # weights away from their zero start, batch-norm statistics from two passes
        model.gain.fill_(0.3)
        for parameter in model.linear.parameters():
            parameter.normal_(0, 0.3)
        model.train()
        model(delta), model(2 * delta)
    model.eval()
    with torch.no_grad():
        psi = model.linear(delta) + model.gain * model.net(delta)
    assert 0.5 < psi.abs().max() < 20  # displacements of a voxel or so: a non-linear deposit
    assert cosmology.grid_error(model, task, delta) < 1e-10
    torch.manual_seed(0)
    plain = models["plain CNN (same graph) + CIC paint"]()
    assert isinstance(plain.paint, CICPaint) and plain.linear.out_channels == 3
    with torch.no_grad():
        plain.gain.fill_(1.0)
    assert plain(delta).shape == (2, 1, 8, 8, 8) and cosmology.grid_error(plain, task, delta) > 1e-2
    with pytest.raises(ValueError, match="paint: only for the density task"):
        cosmology.build_models(cosmology.FieldTask("displacement", 8, 32.0), paint=True)


def test_cli_prints_the_tables_and_saves_the_figure(tmp_path, capsys):
    argv = ["cosmology", "--steps", "2", "--size", "8", "--box", "32", "--test", "2", "--train-boxes", "3", "--json", str(tmp_path / "c.json"),
            "--plot", str(tmp_path / "c.png")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "**displacement**" in out and "**density**" in out and "| plain CNN (same graph) |" in out
    assert len(cosmology.load_results(tmp_path / "c.json")) == 4
    assert (tmp_path / "c.png").stat().st_size > 20_000


def test_cli_paints_the_density_models(tmp_path, capsys):
    argv = ["cosmology", "--task", "density", "--paint", "--steps", "2", "--size", "8", "--box", "32", "--test", "2",
            "--json", str(tmp_path / "c.json"), "--checkpoints", str(tmp_path / "runs")]
    assert main(argv) == 0
    assert "| plain CNN (same graph) + CIC paint |" in capsys.readouterr().out
    first = cosmology.load_results(tmp_path / "c.json")
    assert [r.model for r in first] == ["EquivariantUNet + CIC paint", "plain CNN (same graph) + CIC paint"]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        "density-EquivariantUNet-CIC-paint.pt", "density-plain-CNN-same-graph-CIC-paint.pt"]
    assert main(argv) == 0  # the finished runs are loaded, not trained again
    assert cosmology.load_results(tmp_path / "c.json") == first


def test_weight_average_is_what_every_network_ends_with():
    from steerable3d.models import EquivariantUNet
    from steerable3d.nn import SteerableConv3d

    def small(task):
        return {"small U-Net": lambda: cosmology.FieldModel(
            SteerableConv3d("1x0e", task.irreps_out, task.size - 1, padding_mode="circular", backend="fft"),
            EquivariantUNet(3, 1, 3, (12,), (), parity=True, padding_mode="circular", irreps_out=task.irreps_out))}

    options = dict(tasks=("displacement",), steps=6, size=8, box_size=32.0, test=2, log=lambda line: None, models=small)
    last, averaged = cosmology.run(**options)[0], cosmology.run(**options, average=0.5)[0]
    assert last.average is None and averaged.average == 0.5
    assert last.final_loss == averaged.final_loss  # the same steps, then the average of steps 4 to 6 instead of step 6
    assert last.scores["relative_squared_error"] != averaged.scores["relative_squared_error"]
    assert averaged.grid_error < 1e-5  # an average of equivariant weights is equivariant
    assert "| small U-Net, weights averaged (0.5) |" in cosmology.format_table([averaged], size=8, box_size=32.0)
    with pytest.raises(ValueError, match="average: expected the decay"):
        cosmology.run(**options, average=1.5)
