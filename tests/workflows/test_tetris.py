import pytest
import torch

from steerable3d.data import tetris_volumes
from steerable3d.models import TetrisNet
from steerable3d.workflows.tetris import train_full_batch


class _DivergesAfter(torch.nn.Module):
    """``net`` for the first ``finite`` calls, NaN logits after."""

    def __init__(self, net: torch.nn.Module, finite: int) -> None:
        super().__init__()
        self.net, self.finite, self.calls = net, finite, 0

    def forward(self, volumes: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        logits = self.net(volumes)
        return logits * float("nan") if self.calls > self.finite else logits


def _net() -> TetrisNet:
    torch.manual_seed(3)
    return TetrisNet()


def test_non_finite_loss_stops_before_the_step():
    volumes, labels = tetris_volumes(scale=2, pad=2)
    diverging = _DivergesAfter(_net(), finite=3)
    with pytest.raises(FloatingPointError, match="step 4 of 6 is nan"):
        train_full_batch(diverging, volumes, labels, steps=6)
    reference = _net()
    train_full_batch(reference, volumes, labels, steps=3)  # the weights after the three finite steps, not NaN
    for name, value in reference.state_dict().items():
        assert torch.equal(diverging.net.state_dict()[name], value), name
