import subprocess
import sys

from steerable3d import __version__
from steerable3d.cli import main


def test_check_reports_exact_grid_symmetry(capsys):
    assert main(["check", "--size", "7", "--rotation-size", "17", "--rotations", "1"]) == 0
    out = capsys.readouterr().out
    assert "exact to float rounding" in out
    for irrep in ("0e", "1o", "2e"):
        assert irrep in out


def test_check_plots_the_printed_errors(tmp_path, capsys):
    figure = tmp_path / "check.png"
    assert main(["check", "--irreps-in", "0e", "--irreps-out", "0e + 1o", "--size", "7", "--rotation-size", "13",
                 "--rotations", "1", "--plot", str(figure)]) == 0
    assert figure.read_bytes()[:4] == b"\x89PNG"
    assert f"figure: {figure}" in capsys.readouterr().out


def test_check_rejects_bad_irreps(capsys):
    assert main(["check", "--irreps-in", "2x1q"]) == 2
    assert "irreps_in" in capsys.readouterr().err


def test_module_entry_point_and_version():
    out = subprocess.run([sys.executable, "-m", "steerable3d", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"steerable3d {__version__}"


def test_tetris_prints_table_and_saves_plot(capsys, tmp_path):
    figure = tmp_path / "tetris.png"
    argv = ["tetris", "--seeds", "2", "--steps", "3", "--test-sets", "2", "--scale", "2", "--pad", "2", "--group", "both",
            "--plot", str(figure)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for row in ("| steerable SO3 |", "| steerable O3 |", "| plain CNN |"):
        assert row in out
    assert "+-" in out and figure.stat().st_size > 10_000


def test_tetris_rejects_bad_counts(capsys):
    assert main(["tetris", "--seeds", "0"]) == 2
    assert "--seeds" in capsys.readouterr().err
