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
    assert main(["density", "--copies", "-1", "--cache", "none"]) == 2
    assert "--copies: expected positive counts (--copies 0 or more), got 2000, [4, 16, 57] and -1" in capsys.readouterr().err


def test_cli_trains_on_copies(tmp_path, capsys):
    argv = ["density", "--pool", "1", "--test", "1", "--molecules", "1", "--steps", "2", "--grid", "8", "--spacing", "1.5",
            "--copies", "1", "--seed", "26", "--cache", "none", "--json", str(tmp_path / "r.json")]
    assert main(argv) == 0
    assert "| EquivariantUNet | 1 (+ 1 copies each) |" in capsys.readouterr().out
    assert [r.copies for r in density.load_results(tmp_path / "r.json")] == [0, 1, 1]


def test_turned_and_moved_molecules_carry_their_density_with_them():
    # a grid symmetry and a whole-voxel shift, checked against the exact array transform of the unmoved set
    from steerable3d.symmetry import grid_symmetries, random_rotations, transform_field

    turn = grid_symmetries(parity=False)[5]
    plain = density.make_set(["H2O"], 12, 1.0)
    moved = density.make_set(["H2O"], 12, 1.0, turn[None], shifts=torch.tensor([[1.0, 0.0, 0.0]]))
    for field, unmoved, irreps in ((moved.targets, plain.targets, "1x0e"), (moved.inputs, plain.inputs, "5x0e")):
        expected = transform_field(unmoved.double(), irreps, turn)[..., :-1, :, :]
        assert torch.allclose(field[..., 1:, :, :].double(), expected, atol=1e-5 * float(expected.abs().max()))
    # any rotation and sub-voxel shift: the same electrons, and a different density
    generic = density.make_set(["H2O"], 12, 1.0, random_rotations(1, seed=3), shifts=torch.tensor([[0.31, -0.2, 0.12]]))
    assert generic.targets.sum() == pytest.approx(float(plain.targets.sum()), rel=2e-3)
    assert not torch.allclose(generic.targets, plain.targets, atol=1e-3)
    with pytest.raises(ValueError, match=r"expected \[1, 3, 3\] and \[1, 3\]"):
        density.make_set(["H2O"], 12, 1.0, shifts=torch.zeros(2, 3))


def test_copies_are_new_densities_of_each_pool_molecule_and_cached(tmp_path):
    cache = tmp_path / "sets.pt"
    sets = density.load_or_make_sets(8, 1.5, test=1, seed=26, cache=cache, pool=1, log=lambda line: None, copies=2)
    copies, pool = sets["copies"], sets["train"]
    assert copies.names == pool.names * 2 and copies.electrons.tolist() == pool.electrons.tolist() * 2
    assert not torch.allclose(copies.targets[0], copies.targets[1]) and not torch.allclose(copies.targets[0], pool.targets[0])
    volume = 1.5**3
    assert (copies.targets.sum(dim=(1, 2, 3, 4)) * volume).tolist() == pytest.approx(copies.electrons.tolist(), rel=0.02)
    lines = []
    again = density.load_or_make_sets(8, 1.5, test=1, seed=26, cache=cache, pool=1, log=lines.append, copies=2)
    assert "read from" in lines[0] and torch.equal(again["copies"].targets, copies.targets)
    # each copy records its move (within half a voxel per axis, not zero); the pool molecules are not moved
    assert copies.shifts.shape == (2, 3) and 0 < copies.shifts.abs().max() <= 0.75 and not torch.equal(*copies.shifts)
    assert torch.equal(pool.shifts, torch.zeros(1, 3, dtype=torch.float64))
    assert torch.equal(again["copies"].shifts, copies.shifts)
    stored = torch.load(cache, weights_only=False)  # a cache written before the sets kept their shifts
    for data in stored["sets"].values():
        del data["shifts"]
    torch.save(stored, cache)
    old = density.load_or_make_sets(8, 1.5, test=1, seed=26, cache=cache, pool=1, log=lambda line: None, copies=2)
    assert torch.equal(old["copies"].shifts, copies.shifts) and torch.equal(old["train"].shifts, pool.shifts)
    with pytest.raises(ValueError, match="copies: expected a count"):
        density.load_or_make_sets(8, 1.5, test=1, seed=26, pool=1, copies=-1)


def test_training_draws_from_the_first_molecules_and_their_copies():
    def tagged(names, first):  # each sample's inputs hold its own tag, so a batch shows which samples it drew
        tags = torch.arange(first, first + len(names), dtype=torch.float32)
        return density.DensitySet(names, tags.view(-1, 1, 1, 1, 1).expand(-1, 5, 2, 2, 2).clone(), torch.ones(len(names), 1, 2, 2, 2),
                                  torch.eye(3).expand(len(names), 3, 3), torch.full((len(names),), 2), 1.0)

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight, self.seen = torch.nn.Parameter(torch.ones(())), set()

        def forward(self, inputs):
            self.seen.update(inputs[:, 0, 0, 0, 0].tolist())
            return self.weight * inputs[:, :1]

    data, copies = tagged(["a", "b", "c"], 0), tagged(["a", "a", "b", "b", "c", "c"], 10)
    model = Recorder()
    density.train_model(model, data, 2, 100, copies=copies)
    assert model.seen == {0, 1, 10, 11, 12, 13}  # molecules a and b and their copies; never c
    model = Recorder()
    density.train_model(model, data, 2, 100)
    assert model.seen == {0, 1}
    with pytest.raises(ValueError, match="copies: expected K >= 1 copies of each of the 3 molecules"):
        density.train_model(model, data, 2, 1, copies=tagged(["a", "b", "c", "a", "b", "c"], 10))


def test_cli_keeps_checkpoints_and_a_rerun_only_evaluates(tmp_path, capsys):
    argv = ["density", "--pool", "1", "--test", "1", "--molecules", "1", "--steps", "3", "--grid", "8", "--spacing", "1.5",
            "--seed", "26", "--cache", str(tmp_path / "sets.pt"), "--checkpoints", str(tmp_path / "runs"),
            "--json", str(tmp_path / "r.json")]
    assert main(argv) == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["EquivariantUNet-n1.pt", "MONAI-UNet-n1.pt"]
    first = density.load_results(tmp_path / "r.json")
    assert main(argv) == 0
    second = density.load_results(tmp_path / "r.json")
    assert [r.nmae for r in second] == [r.nmae for r in first]  # the same trained networks, loaded
    assert [r.train_seconds for r in second] == [r.train_seconds for r in first]  # no step was taken again
    capsys.readouterr()
    assert main(argv[:argv.index("--steps") + 1] + ["4"] + argv[argv.index("--steps") + 2:]) == 2
    assert "written by another run" in capsys.readouterr().err


def test_a_training_seed_changes_the_networks_and_not_the_data(tmp_path, capsys):
    argv = ["density", "--pool", "1", "--test", "1", "--molecules", "1", "--steps", "2", "--grid", "8", "--spacing", "1.5",
            "--seed", "26", "--cache", str(tmp_path / "sets.pt")]

    def scores(*extra):
        assert main(argv + ["--json", str(tmp_path / "r.json"), *extra]) == 0
        capsys.readouterr()
        results = density.load_results(tmp_path / "r.json")
        train_seed = int(extra[1]) if extra else 26
        assert [r.train_seed for r in results] == [None] + [train_seed] * (len(results) - 1)  # the JSON names it
        return [(r.model, r.nmae) for r in results]

    default, same, other = scores(), scores("--train-seed", "26"), scores("--train-seed", "27")
    assert same == default  # the training seed defaults to --seed
    assert other[0] == default[0]  # the same held-out molecules and rotations: the same baseline
    for trained, moved in zip(default[1:], other[1:]):
        assert trained[0] == moved[0] and trained[1] != moved[1]  # each network starts and draws batches elsewhere


def test_weight_average_is_what_every_network_ends_with_and_the_json_names_it(tmp_path, capsys):
    argv = ["density", "--pool", "1", "--test", "1", "--molecules", "1", "--steps", "4", "--grid", "8", "--spacing", "1.5",
            "--seed", "26", "--cache", str(tmp_path / "sets.pt")]
    assert main(argv + ["--json", str(tmp_path / "last.json")]) == 0
    capsys.readouterr()
    assert main(argv + ["--json", str(tmp_path / "averaged.json"), "--average", "0.9", "--checkpoints", str(tmp_path / "runs")]) == 0
    assert "| EquivariantUNet, weights averaged (0.9) |" in capsys.readouterr().out
    last, averaged = density.load_results(tmp_path / "last.json"), density.load_results(tmp_path / "averaged.json")
    assert [r.average for r in averaged] == [None, 0.9, 0.9] and [r.average for r in last] == [None, None, None]
    assert averaged[0].nmae == last[0].nmae  # the baseline trains nothing
    for plain, moved in zip(last[1:], averaged[1:]):  # the same steps, then the average of steps 3 and 4 instead of step 4
        assert plain.final_loss == moved.final_loss and plain.nmae != moved.nmae
    # a checkpoint of an averaged run is not resumed by a run without the average
    assert main(argv + ["--checkpoints", str(tmp_path / "runs")]) == 2
    assert "written by another run" in capsys.readouterr().err
    # a bad decay is refused before any DFT density is computed
    assert main(argv[:-1] + [str(tmp_path / "other.pt"), "--average", "1"]) == 2
    assert "average: expected the decay of a moving average of the weights, in (0, 1)" in capsys.readouterr().err
    assert not (tmp_path / "other.pt").exists()


def test_charge_conserving_models_hold_the_electrons_of_their_input_and_stay_exact(small_set):
    def trained(conserve_charge):
        torch.manual_seed(0)
        model = density.DensityModel(EquivariantUNet(3, 5, 1, (12, 24), (2,), parity=True, spacing=1.0), conserve_charge=conserve_charge)
        losses, _ = density.train_model(model, small_set, len(small_set), 60, lr=3e-3)
        with torch.no_grad():
            return model, losses, model(small_set.inputs).sum(dim=(1, 2, 3, 4)).double()

    inputs = small_set.inputs.sum(dim=(1, 2, 3, 4)).double()  # voxels of 1 Bohr^3: the sums are electron counts
    scaled, scaled_losses, held = trained(True)
    free, free_losses, moved = trained(False)
    assert scaled_losses[0] == free_losses[0]  # gain 0: the scale is exactly 1, both start from the superposition
    assert torch.allclose(held, inputs, rtol=1e-5)
    assert torch.allclose(held, small_set.electrons.double(), rtol=5e-3)  # the input holds the molecule's count
    assert (moved / inputs - 1).abs().max() > 1e-3  # without the scale, training moves the count
    assert density.grid_error(scaled, small_set.inputs[:2]) < 1e-5
    baseline = np.mean(density.evaluate(lambda x: x.sum(1, keepdim=True), small_set))
    assert np.mean(density.evaluate(scaled, small_set)) < 0.7 * baseline  # it learns (0.53 after these 60 steps)
    empty = torch.zeros(1, 5, 12, 12, 12)  # no atoms: an empty density, not 0 / 0
    assert torch.equal(scaled(empty), torch.zeros(1, 1, 12, 12, 12))
    with pytest.raises(TypeError, match="conserve_charge: expected True or False, got 1"):
        density.DensityModel(EquivariantUNet(3, 5, 1, (12,), (), parity=True), conserve_charge=1)


def test_cli_conserves_charge_in_both_networks_and_the_json_says_so(tmp_path, capsys):
    argv = ["density", "--pool", "1", "--test", "1", "--molecules", "1", "--steps", "4", "--grid", "8", "--spacing", "1.5",
            "--seed", "26", "--cache", str(tmp_path / "sets.pt"), "--checkpoints", str(tmp_path / "runs")]
    assert main(argv + ["--json", str(tmp_path / "free.json")]) == 0
    capsys.readouterr()
    # a checkpoint of a run without the scale is not resumed by one with it
    assert main(argv + ["--conserve-charge"]) == 2
    assert "written by another run" in capsys.readouterr().err
    assert main(argv[:-1] + [str(tmp_path / "scaled"), "--conserve-charge", "--json", str(tmp_path / "scaled.json")]) == 0
    out = capsys.readouterr().out
    assert "| EquivariantUNet, charge conserved | 1 |" in out and "| MONAI UNet, charge conserved | 1 |" in out
    free, scaled = density.load_results(tmp_path / "free.json"), density.load_results(tmp_path / "scaled.json")
    assert [r.conserve_charge for r in scaled] == [False, True, True] and not any(r.conserve_charge for r in free)
    assert scaled[0].nmae == free[0].nmae  # the baseline is not a network
    for plain, conserving in zip(free[1:], scaled[1:]):
        assert plain.nmae != conserving.nmae
    with pytest.raises(ValueError, match="conserve_charge: it builds the protocol's own networks"):
        density.run(models=density.build_models, conserve_charge=True, cache=tmp_path / "sets.pt")
