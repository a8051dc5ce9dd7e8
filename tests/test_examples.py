import pathlib
import subprocess
import sys

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def test_equivariance_example_runs():
    out = subprocess.run([sys.executable, str(EXAMPLES / "equivariance.py")], capture_output=True, text=True, check=True)
    worst = float(out.stdout.split("worst relative error")[1].split()[0])
    rotation = float(out.stdout.split("relative L2 error")[1].split()[0])
    assert worst < 1e-10 and rotation < 5e-3
