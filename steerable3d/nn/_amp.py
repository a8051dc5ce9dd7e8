"""Mixed precision: constants and kernels are assembled in full precision even under ``torch.autocast``."""

from __future__ import annotations

import contextlib

import torch


def full_precision(device_type: str):
    """A context that turns autocast off on ``device_type`` (a no-op where autocast does not exist there).

    Kernels and bilinear tables are small: building them in float32 costs nothing and keeps their
    symmetries (exact zeros, equal entries) intact; the big ``conv3d`` that uses them still runs in the
    autocast dtype."""
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def autocast_active(device_type: str) -> bool:
    """Whether autocast is on for ``device_type``."""
    return torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type)
