"""Saving a protocol's results: a list of dataclass records as JSON, written atomically."""

from __future__ import annotations

import dataclasses
import json
from typing import Sequence, TypeVar

from .._files import atomic_path

Record = TypeVar("Record")


def save_records(records: Sequence, path) -> None:
    """Every field of every record as a JSON list (temporary file, then rename)."""
    with atomic_path(path) as temporary, open(temporary, "w") as handle:
        json.dump([dataclasses.asdict(r) for r in records], handle, indent=1)


def load_records(cls: type[Record], path) -> list[Record]:
    """The records :func:`save_records` wrote, as ``cls`` instances."""
    with open(path) as handle:
        return [cls(**r) for r in json.load(handle)]
