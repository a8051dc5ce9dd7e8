"""Atomic file writes: write a temporary file next to the target, flush it to disk, then rename it.

``os.replace`` is atomic on POSIX and Windows, so a reader (or a crash) sees the previous file or the new
one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in ``path``'s directory (ending in ``suffix``, for writers that go by the
    extension); when the block ends without an error, fsync it and rename it to ``path``; otherwise remove it.
    Not ``mkstemp``: its 0600 mode would end up on the final file."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: the directory {path.parent} does not exist")
    temporary = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}{suffix}")
    try:
        yield temporary
        with open(temporary, "r+b") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
