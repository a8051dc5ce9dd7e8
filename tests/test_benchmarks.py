"""The benchmark suite's entry point runs (smoke test: tiny sizes, one repetition, docs untouched)."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_model_benchmark_smoke_run_prints_the_tables(tmp_path):
    doc = tmp_path / "bench.md"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--only", "bench_models", "--",
         "--model", "unet", "--reps", "1", "--doc", str(doc)],
        capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for heading in ("### Targets", "### Training step and inference", "### Construction", "### Peak memory"):
        assert heading in result.stdout
    text = doc.read_text()
    assert "<!-- bench_unet:start -->" in text and "| e3nn " in text and "| plain " in text


def test_gpu_benchmark_logic_runs_on_the_cpu(tmp_path):
    """bench_gpu.py measures on CUDA; its --cpu-dry-run runs every case and table on the CPU at tiny sizes."""
    out = tmp_path / "gpu.md"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_gpu.py"), "--cpu-dry-run", "--conv-size", "8", "--unet-size", "8",
         "--tetris-size", "12", "--reps", "1", "--rounds", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = out.read_text()
    for row in ("| ours ", "| plain Conv3d (cuDNN) ", "| ours, checkpointing=True ", "U-Net peak training memory"):
        assert row in text


def test_tetris_chirality_diagnostics_smoke_run(tmp_path):
    doc = tmp_path / "bench.md"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "tetris_chirality.py"), "--quick", "--threads", "1",
         "--config", "zero_background", "--seeds", "0", "--doc", str(doc)],
        capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = doc.read_text()
    rows = [" ".join(row.split()) for row in text.splitlines()]
    assert "<!-- tetris_chirality:start -->" in rows and any(row.startswith("| zero_background | 0 |") for row in rows)
