import os

import pytest
import torch


@pytest.fixture
def float64():
    """Exact tests run with torch's default dtype set to float64 (e3nn builds its constants in it)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def pytest_configure(config):
    # CI has 2 cores and the suite runs on 2 pytest-xdist workers: one thread each (two threads in a run
    # without workers, "-n 0"); STEERABLE3D_TEST_THREADS overrides. Subprocesses (the CLI, benchmarks,
    # torchrun, mkdocs) inherit it through OMP_NUM_THREADS: two workers with two threads each would
    # oversubscribe the cores, which slows OpenMP's barriers several times over.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    threads = os.environ.get("STEERABLE3D_TEST_THREADS") or ("1" if worker else "2")
    os.environ["OMP_NUM_THREADS"] = threads
    torch.set_num_threads(int(threads))
