"""steerable3d.distributed.Context for one process behaves as for several, where it can be checked here."""

import torch

from steerable3d.distributed import Context


def test_mean_of_one_process_is_a_detached_copy():
    value = torch.tensor([1.0, 3.0], requires_grad=True) * 2
    mean = Context().mean(value)
    assert torch.equal(mean, value.detach())
    assert not mean.requires_grad  # as the all-reduced average of several processes
    mean += 1  # a copy: the caller's tensor is untouched
    assert torch.equal(value.detach(), torch.tensor([2.0, 6.0]))
