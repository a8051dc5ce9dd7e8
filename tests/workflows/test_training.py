"""The shared training loop of the field protocols: an interrupted run resumes to the same parameters."""

import pytest
import torch

from steerable3d.checkpoint import load_checkpoint
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


def test_average_is_the_moving_average_of_the_second_half_and_resumes(tmp_path):
    # the weights after every step, from a run without average (the average never changes the steps taken)
    plain = _model()
    states = []
    loss = _loss(plain)

    def recording(generator):
        states.append({k: v.clone() for k, v in plain.state_dict().items()})  # after the previous step
        return loss(generator)

    train_steps(plain, recording, 8, lr=1e-2, seed=5)
    states = states[1:] + [plain.state_dict()]  # states[i]: after step i + 1
    decay = 0.7
    expected = {k: v.clone() for k, v in states[4].items()}  # steps 5 to 8: the second half
    for state in states[5:]:
        for k, v in state.items():
            if v.is_floating_point():
                expected[k] = decay * expected[k] + (1 - decay) * v

    averaged = _model()
    train_steps(averaged, _loss(averaged), 8, lr=1e-2, seed=5, average=decay)
    for k, v in expected.items():
        if v.is_floating_point():
            torch.testing.assert_close(averaged.state_dict()[k], v, rtol=1e-6, atol=1e-7, msg=k)
    changed = [k for k, v in expected.items() if v.is_floating_point() and not torch.allclose(v, plain.state_dict()[k])]
    assert changed  # the average is not the last step's weights

    # interrupted before half-way and after it, then resumed: the same average
    path = tmp_path / "run.pt"
    for stop in (3, 3):
        interrupted = _model()
        train_steps(interrupted, _loss(interrupted), 8, lr=1e-2, seed=5, checkpoint=path, checkpoint_every=2,
                    stop_after=stop, average=decay)
    resumed = _model()
    train_steps(resumed, _loss(resumed), 8, lr=1e-2, seed=5, checkpoint=path, average=decay)
    for k, v in averaged.state_dict().items():
        assert torch.equal(resumed.state_dict()[k], v), k
    with pytest.raises(ValueError, match="written by another run"):
        train_steps(resumed, _loss(resumed), 8, lr=1e-2, seed=5, checkpoint=path)
    with pytest.raises(ValueError, match="average: expected"):
        train_steps(resumed, _loss(resumed), 8, lr=1e-2, average=1.0)


def test_non_finite_loss_stops_before_the_step_and_keeps_the_checkpoint(tmp_path):
    path = tmp_path / "run.pt"
    model = _model()
    loss = _loss(model)
    calls = []

    def diverging(generator):  # finite for 5 steps, then infinite
        calls.append(None)
        return loss(generator) * (float("inf") if len(calls) > 5 else 1.0)

    with pytest.raises(FloatingPointError, match=r"step 6 of 9 is inf.*those after step 4"):
        train_steps(model, diverging, 9, lr=1e-2, seed=5, checkpoint=path, checkpoint_every=2)
    # the model holds the weights of a run stopped after step 5, and the checkpoint those after step 4
    for steps_done, state in ((5, model.state_dict()), (4, load_checkpoint(path)["model"])):
        reference = _model()
        train_steps(reference, _loss(reference), 9, lr=1e-2, seed=5, stop_after=steps_done)
        for name, value in reference.state_dict().items():
            assert torch.equal(state[name], value), (steps_done, name)
