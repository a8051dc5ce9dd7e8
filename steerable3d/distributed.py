"""Multi-process training on PyTorch's own engine: ``torchrun`` starts the processes and sets their
environment, :class:`torch.nn.parallel.DistributedDataParallel` averages the gradients (gloo on CPU, nccl
on CUDA).

The training entry points call :func:`setup` and behave as one process when ``WORLD_SIZE`` is unset or 1::

    torchrun --standalone --nproc_per_node=2 -m steerable3d segment train --images ... --out run/

Conventions, as in PyTorch: every process draws ``batch_size`` samples (the effective batch is
``batch_size x world_size``), only rank 0 writes checkpoints and logs, and every process reads the
checkpoint on resume.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["Context", "launched", "setup", "teardown"]


@dataclass(frozen=True)
class Context:
    """Where this process stands: its ``rank`` among ``world_size`` processes and its ``device``.

    >>> ctx = Context()  # one process on the CPU, as setup() gives without torchrun
    >>> model = torch.nn.Linear(2, 2)
    >>> ctx.is_main, ctx.enabled, ctx.mean(torch.tensor([1.0, 3.0])), ctx.wrap(model) is model
    (True, False, tensor([1., 3.]), True)
    >>> Context(rank=1, world_size=2).is_main, Context(rank=1, world_size=2).enabled
    (False, True)
    """

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes checkpoints and prints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    def barrier(self) -> None:
        """Wait for every process (a no-op for one process)."""
        if self.enabled:
            dist.barrier()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The average of a tensor over the processes, detached from the graph (a detached copy of it for
        one process), so that a caller gets the same kind of tensor whatever the number of processes."""
        if not self.enabled:
            return value.detach().clone()
        total = value.detach().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total / self.world_size

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` in :class:`~torch.nn.parallel.DistributedDataParallel` (itself for one process)."""
        if not self.enabled:
            return model
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def launched() -> bool:
    """Whether this process is one of several that ``torchrun`` started (``WORLD_SIZE`` > 1).

    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"WORLD_SIZE": "2"}):  # as torchrun --nproc_per_node=2 sets it
    ...     launched()
    True
    >>> with mock.patch.dict(os.environ, {"WORLD_SIZE": "1"}):
    ...     launched()
    False
    """
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return True  # a malformed WORLD_SIZE: setup() names it


def setup(device: str | torch.device = "cpu") -> Context:
    """Join the process group that ``torchrun`` describes in the environment (``RANK``, ``WORLD_SIZE``,
    ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), once; CUDA processes take the GPU of their local rank.
    Without ``torchrun`` (``WORLD_SIZE`` unset or 1) returns a one-process context on ``device``.

    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"WORLD_SIZE": "1"}):  # no torchrun
    ...     setup("cpu")
    Context(rank=0, world_size=1, device=device(type='cpu'))
    >>> with mock.patch.dict(os.environ, {"WORLD_SIZE": "two"}):
    ...     setup()
    Traceback (most recent call last):
    ValueError: distributed environment: expected integer RANK, WORLD_SIZE, LOCAL_RANK (...)
    """
    device = torch.device(device)
    try:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as error:
        raise ValueError(f"distributed environment: expected integer RANK, WORLD_SIZE, LOCAL_RANK ({error})") from None
    if world_size <= 1:
        return Context(0, 1, device)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Context(rank, world_size, device)


def teardown() -> None:
    """Leave the process group, if one was joined.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:  # a one-process gloo group
    ...     dist.init_process_group("gloo", store=dist.FileStore(f"{tmp}/store", 1), rank=0, world_size=1)
    ...     joined = dist.is_initialized()
    ...     teardown()
    >>> joined, dist.is_initialized()
    (True, False)
    >>> teardown()  # none joined: nothing to do
    """
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
