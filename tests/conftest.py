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
    # CI has 2 cores; STEERABLE3D_TEST_THREADS=1 keeps a run beside other work from oversubscribing them
    torch.set_num_threads(int(os.environ.get("STEERABLE3D_TEST_THREADS", "2")))
