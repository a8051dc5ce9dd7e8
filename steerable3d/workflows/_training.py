"""The training loop the field protocols share: Adam with a cosine learning rate, one loss per step."""

from __future__ import annotations

import time
from typing import Callable

import torch


def train_steps(model: torch.nn.Module, batch_loss: Callable[[torch.Tensor], torch.Tensor], steps: int, *, lr: float,
                seed: int = 0, progress: Callable | None = None, description: str = "train",
                metric: str = "loss") -> tuple[list[float], float]:
    """``steps`` Adam steps with a cosine learning rate from ``lr`` down to 0; ``batch_loss(generator)``
    draws a batch with the seeded ``generator`` and returns its loss. Leaves ``model`` in eval mode.
    Returns (losses, seconds)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator().manual_seed(seed)
    losses, start = [], time.perf_counter()
    model.train()
    bar = progress(range(steps), desc=description, leave=False) if progress else range(steps)
    for _ in bar:
        optimizer.zero_grad(set_to_none=True)
        loss = batch_loss(generator)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if hasattr(bar, "set_postfix"):
            bar.set_postfix({metric: f"{losses[-1]:.4f}"})
    model.eval()
    return losses, time.perf_counter() - start
