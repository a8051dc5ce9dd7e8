"""Checkpoints that survive a crash: written to a temporary file next to the target, then renamed.

``os.replace`` is atomic on POSIX and Windows, so a reader sees either the previous checkpoint or the new
one, never half of one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ._files import atomic_path

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (anything ``torch.save`` takes) to ``path`` atomically; returns the path.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_checkpoint(f"{tmp}/last.pt", {"step": 3})
    ...     load_checkpoint(path)["step"]
    3
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"checkpoint {path}: the directory {path.parent} does not exist")
    with atomic_path(path) as temporary:
        torch.save(state, temporary)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors go to ``map_location``). A damaged or
    truncated file raises ``ValueError``, a missing one ``FileNotFoundError``.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_checkpoint(f"{tmp}/last.pt", {"weights": torch.arange(3.0)})
    ...     state = load_checkpoint(path)
    ...     _ = path.write_bytes(path.read_bytes()[:100])  # e.g. a copy cut short
    ...     load_checkpoint(path)
    Traceback (most recent call last):
    ValueError: checkpoint .../last.pt: cannot be read (...)
    >>> state["weights"], state["weights"].device
    (tensor([0., 1., 2.]), device(type='cpu'))
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path}: no such file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as error:  # torch raises pickle, zip and runtime errors for damaged files
        raise ValueError(f"checkpoint {path}: cannot be read ({type(error).__name__}: {error})") from None
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {path}: expected a dict of training state, got {type(state).__name__}")
    return state
