"""``steerable3d segment train`` under ``torchrun``: 2 CPU processes (gloo, DistributedDataParallel).

A 2-process run with batch 1 each must equal one process trained on the joined batch of 2, and a 2-process
run killed mid-way and resumed must end at the parameters of the uninterrupted one.

Kernels of 7 taps: with 5, the first convolution reaches its ``2e`` field through a single weight, which
instance norm makes irrelevant (the field is rescaled to unit size whatever that weight is). Its true
gradient is zero, the computed one rounding noise, and Adam turns noise into steps of the learning rate:
two single-process runs on 1 and on 2 threads then differ by 1.5e-3 in that weight (and agree to 1e-7
elsewhere), so no parallel run could match there. With 7 taps every field has two weights or more."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from steerable3d.checkpoint import load_checkpoint
from steerable3d.cli import main

pytest.importorskip("monai")
pytestmark = pytest.mark.xdist_group("torchrun")  # one worker computes the module's runs, once

REPO = Path(__file__).resolve().parents[2]
STEPS, EVERY = 40, 4


def train_args(images, labels, out, batch_size, *extra):
    return [
        "segment", "train", "--images", str(images), "--labels", str(labels), "--out", str(out),
        "--channels", "12", "16", "--strides", "2", "--kernel-size", "7", "--patch", "12", "--batch-size", str(batch_size),
        "--steps", str(STEPS), "--validate-every", str(EVERY), "--lr", "1e-2", "--seed", "3", *extra,
    ]


def torchrun(args, **popen):
    """Start ``torchrun --standalone --nproc_per_node=2 -m steerable3d <args>`` (one thread per process)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "steerable3d", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def finish(process, timeout=300):
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output
    return output


def parameters(checkpoint):
    return load_checkpoint(checkpoint)["model"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, make_dataset):
    """The uninterrupted 2-process run (batch 1 each) and the single-process run on the joined batch of 2."""
    root = tmp_path_factory.mktemp("ddp")
    images, labels = make_dataset(root, n=4)
    ddp = finish(torchrun(train_args(images, labels, root / "ddp", 1)))
    assert main(train_args(images, labels, root / "single", 2, "--threads", "1")) == 0
    return root, images, labels, ddp


def test_two_processes_equal_one_process_on_the_joined_batch(runs):
    root, _, _, output = runs
    assert "2 processes x batch 1" in output
    ddp, single = load_checkpoint(root / "ddp" / "last.pt"), load_checkpoint(root / "single" / "last.pt")
    assert ddp["step"] == single["step"] == STEPS and ddp["world_size"] == 2
    for name, value in single["model"].items():
        assert torch.allclose(ddp["model"][name], value, rtol=0, atol=1e-5), name
    losses = torch.tensor(ddp["history"]["losses"])
    assert torch.allclose(losses, torch.tensor(single["history"]["losses"]), atol=1e-5)  # the joined batch's loss
    assert float(losses[-8:].mean()) < 0.7 * float(losses[:8].mean())  # and it decreases


def test_killed_run_resumes_to_the_uninterrupted_parameters(runs):
    root, images, labels, _ = runs
    out = root / "killed"
    process = torchrun(train_args(images, labels, out, 1), start_new_session=True)
    deadline = time.monotonic() + 240
    step = 0
    while time.monotonic() < deadline and process.poll() is None:
        if (out / "last.pt").exists():
            step = load_checkpoint(out / "last.pt")["step"]
            if step >= EVERY:
                break
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)  # torchrun and both workers, mid-run
    process.wait()
    assert 0 < load_checkpoint(out / "last.pt")["step"] < STEPS
    output = finish(torchrun([*train_args(images, labels, out, 1), "--resume"]))
    assert "resumed from" in output
    resumed, uninterrupted = parameters(out / "last.pt"), parameters(root / "ddp" / "last.pt")
    for name, value in uninterrupted.items():
        assert torch.allclose(resumed[name], value, rtol=0, atol=1e-6), name


def test_single_process_commands_refuse_torchrun(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["tetris", "--steps", "1", "--seeds", "1", "--test-sets", "1"]) == 2
    assert "segment train` is the command that trains across processes" in capsys.readouterr().err
