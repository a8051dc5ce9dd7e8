"""The shared training loop of the field protocols: an interrupted run resumes to the same parameters."""

import pytest
import torch

from steerable3d.models import EquivariantUNet
from steerable3d.workflows._training import train_steps


def _model():
    torch.manual_seed(3)
    return EquivariantUNet(3, 1, 1, (12, 12), (2,), parity=True)  # batch norm: running statistics must resume too


def _loss(model):
    target = torch.linspace(-1, 1, 8).expand(8, 8, 8)
    return lambda generator: (model(torch.randn(2, 1, 8, 8, 8, generator=generator)) - target).abs().mean()


def test_interrupted_run_resumes_to_the_uninterrupted_parameters(tmp_path):
    straight = _model()
    straight_losses, _ = train_steps(straight, _loss(straight), 7, lr=1e-2, seed=5)
    path = tmp_path / "run.pt"
    first = _model()
    losses, _ = train_steps(first, _loss(first), 7, lr=1e-2, seed=5, checkpoint=path, checkpoint_every=2, stop_after=3)
    assert len(losses) == 3 and path.exists()  # stopped between two regular checkpoints
    resumed = _model()
    losses, seconds = train_steps(resumed, _loss(resumed), 7, lr=1e-2, seed=5, checkpoint=path, checkpoint_every=2)
    assert losses == straight_losses and seconds > 0
    for name, value in straight.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], value), name
    assert not resumed.training

    # a finished checkpoint only loads: no step is taken, the trained model comes back
    again = _model()
    losses, _ = train_steps(again, lambda generator: pytest.fail("a finished run must not train"), 7, lr=1e-2, seed=5,
                            checkpoint=path)
    assert losses == straight_losses
    assert all(torch.equal(again.state_dict()[k], v) for k, v in straight.state_dict().items())


def test_checkpoint_of_another_run_is_refused(tmp_path):
    path = tmp_path / "run.pt"
    model = _model()
    train_steps(model, _loss(model), 2, lr=1e-2, checkpoint=path, config={"molecules": 4})
    with pytest.raises(ValueError, match="written by another run"):
        train_steps(model, _loss(model), 2, lr=1e-2, checkpoint=path, config={"molecules": 16})
    with pytest.raises(ValueError, match="written by another run"):
        train_steps(model, _loss(model), 3, lr=1e-2, checkpoint=path, config={"molecules": 4})
