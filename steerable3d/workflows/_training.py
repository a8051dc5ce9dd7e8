"""The training loop the field protocols share: Adam with a cosine learning rate, one loss per step,
optionally checkpointed so that an interrupted run resumes exactly where it stopped."""

from __future__ import annotations

import math
import os
import re
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..checkpoint import load_checkpoint, save_checkpoint


def checkpoint_path(folder: str | os.PathLike | None, *names: object) -> Path | None:
    """The checkpoint file of one training run in ``folder`` (created if needed), named by ``names``
    joined by dashes, each run of characters other than letters, digits and dots made one dash; None
    without a folder.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     checkpoint_path(folder, "MONAI UNet", "n16").name, checkpoint_path(folder, "plain CNN (same graph) + paint").name
    ('MONAI-UNet-n16.pt', 'plain-CNN-same-graph-paint.pt')
    >>> checkpoint_path(None, "MONAI UNet") is None
    True
    """
    if folder is None:
        return None
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(folder) / (re.sub(r"[^A-Za-z0-9.]+", "-", "-".join(str(name) for name in names)).strip("-") + ".pt")


def check_average(average: float | None) -> None:
    """Raise a ``ValueError`` unless ``average`` is None or the decay of a moving average, in (0, 1)."""
    if average is not None and (isinstance(average, bool) or not isinstance(average, (int, float)) or not 0 < average < 1):
        raise ValueError(f"average: expected the decay of a moving average of the weights, in (0, 1) (e.g. 0.999), got {average!r}")


def stop_if_diverged(loss: float, description: str, step: int, steps: int, checkpoint: str | os.PathLike | None = None,
                     saved_step: int | None = None) -> None:
    """Raise ``FloatingPointError`` if ``loss`` (that of ``step`` of ``steps``, 1-based) is not finite. Call it
    before the step: one Adam step on it would spread NaN to every weight, and the next checkpoint would
    replace the last good one with them. The message names the ``checkpoint`` file and the step it holds
    (``saved_step``) when there is one.

    >>> stop_if_diverged(0.5, "train", 3, 10)
    >>> stop_if_diverged(float("nan"), "train", 3, 10, "last.pt", saved_step=2)
    Traceback (most recent call last):
    ...
    FloatingPointError: train: the loss of step 3 of 10 is nan; the model holds the weights before that step, and last.pt those after step 2. Try a lower learning rate
    """
    if not math.isfinite(loss):
        kept = "" if checkpoint is None or saved_step is None else f", and {checkpoint} those after step {saved_step}"
        raise FloatingPointError(f"{description}: the loss of step {step} of {steps} is {loss}; the model holds the weights "
                                 f"before that step{kept}. Try a lower learning rate")


def train_steps(model: torch.nn.Module, batch_loss: Callable[[torch.Tensor], torch.Tensor], steps: int, *, lr: float,
                seed: int = 0, progress: Callable | None = None, description: str = "train",
                metric: str = "loss", checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 100,
                config: dict[str, Any] | None = None, stop_after: int | None = None,
                average: float | None = None) -> tuple[list[float], float]:
    """``steps`` Adam steps with a cosine learning rate from ``lr`` down to 0; ``batch_loss(generator)``
    draws a batch with the seeded ``generator`` and returns its loss. Leaves ``model`` in eval mode.
    Returns (losses, one per step so far, and seconds of training so far).

    With ``average`` (a decay in (0, 1), e.g. 0.999), an exponential moving average of the parameters and
    buffers (batch-norm statistics included) is kept over the second half of the steps, and the finished
    model holds it instead of the last step's weights. It starts half-way because the initial batch-norm
    statistics (mean 0, variance 1) would otherwise keep a weight of ``average ** steps`` in it.

    With a ``checkpoint`` path, everything the run depends on (model, optimizer, schedule, the batch
    generator's state, losses, elapsed seconds) is written there atomically every ``checkpoint_every``
    steps and at the end. If the file exists, the run continues from it and ends with the parameters an
    uninterrupted run would have had; a finished checkpoint just loads the trained model. ``config`` (any
    comparable values, e.g. the protocol's options) is stored with it, and a checkpoint written with
    another ``config``, ``steps``, ``lr`` or ``seed`` is refused. ``stop_after`` ends the call after that
    many steps of this call (the checkpoint written), as an interruption would.

    A loss that is not finite (a diverging run) raises ``FloatingPointError`` before its step is taken: the
    model keeps the weights before it, and the checkpoint those it last saved.

    >>> import tempfile
    >>> def make():
    ...     _ = torch.manual_seed(0)
    ...     return torch.nn.Linear(3, 1)
    >>> def loss_of(model):
    ...     return lambda generator: model(torch.randn(4, 3, generator=generator)).pow(2).mean()
    >>> straight = make()
    >>> _ = train_steps(straight, loss_of(straight), 10, lr=0.1)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     interrupted = make()
    ...     losses, _ = train_steps(interrupted, loss_of(interrupted), 10, lr=0.1, checkpoint=f"{folder}/run.pt", stop_after=4)
    ...     resumed = make()
    ...     losses, _ = train_steps(resumed, loss_of(resumed), 10, lr=0.1, checkpoint=f"{folder}/run.pt")
    >>> len(losses), torch.equal(resumed.weight, straight.weight)
    (10, True)
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator().manual_seed(seed)
    check_average(average)
    identity = {"steps": steps, "lr": lr, "seed": seed, "config": config}
    if average is not None:  # absent otherwise, so that checkpoints written before averages existed stay valid
        identity["average"] = average
    averaged = None if average is None else AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(average), use_buffers=True)
    losses: list[float] = []
    seconds = 0.0
    if checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint)
        if state.get("identity") != identity:
            raise ValueError(f"checkpoint {checkpoint}: written by another run ({state.get('identity')}); this run is "
                             f"{identity}. Remove it or give this run another checkpoint path")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        losses, seconds = state["losses"], state["seconds"]
        if averaged is not None:
            averaged.load_state_dict(state["average"])

    saved_step = len(losses) if losses else None  # the step of the checkpoint on disk, for a diverging run's message

    def save() -> None:
        nonlocal saved_step
        saved_step = len(losses)
        save_checkpoint(checkpoint, {
            "identity": identity, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(), "generator": generator.get_state(), "losses": losses,
            "seconds": seconds, **({} if averaged is None else {"average": averaged.state_dict()}),
        })

    start, before = time.perf_counter(), seconds
    model.train()
    remaining = range(len(losses), steps)
    bar = progress(remaining, desc=description, leave=False, initial=len(losses), total=steps) if progress else remaining
    for done, _ in enumerate(bar, 1):
        optimizer.zero_grad(set_to_none=True)
        loss = batch_loss(generator)
        value = float(loss.detach())
        stop_if_diverged(value, description, len(losses) + 1, steps, checkpoint, saved_step)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(value)
        if averaged is not None and len(losses) > steps // 2:
            averaged.update_parameters(model)
        seconds = before + time.perf_counter() - start
        if hasattr(bar, "set_postfix"):
            bar.set_postfix({metric: f"{losses[-1]:.4f}"}, refresh=False)  # redraws only as often as the bar's own mininterval
        stopping = stop_after is not None and done >= stop_after
        if checkpoint is not None and (len(losses) % checkpoint_every == 0 or len(losses) == steps or stopping):
            save()
        if stopping:
            break
    if averaged is not None and len(losses) == steps:
        model.load_state_dict(averaged.module.state_dict())
    model.eval()
    return losses, seconds
