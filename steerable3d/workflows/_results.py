"""A protocol's results: a list of dataclass records as JSON, written atomically, and the pieces of their tables."""

from __future__ import annotations

import dataclasses
import json
import statistics
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


def percent_mean_std(values: Sequence[float]) -> str:
    """Fractions as "mean +- standard deviation" in % (the sample deviation; 0 for one value, "-" for none).

    >>> percent_mean_std([0.9, 0.92]), percent_mean_std([0.5]), percent_mean_std([])
    ('91.00 +- 1.41', '50.00 +- 0.00', '-')
    """
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.fmean(values):.2f} +- {100 * std:.2f}"


def model_label(model: str, average: float | None) -> str:
    """A table's name for a network: ``model``, and the decay when its weights are a moving average.

    >>> model_label("EquivariantUNet", 0.999), model_label("EquivariantUNet", None)
    ('EquivariantUNet, weights averaged (0.999)', 'EquivariantUNet')
    """
    return f"{model}, weights averaged ({average:g})" if average else model
