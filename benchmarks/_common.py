"""Helpers shared by the benchmark scripts: interleaved timing, markdown tables, the machine, doc sections."""

from __future__ import annotations

import platform
import time
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
DOC_HEADER = (
    "# Benchmarks\n\n"
    "Each section is written by the script it names; rerunning the script replaces the text between its\n"
    "`<!-- name:start -->` and `<!-- name:end -->` markers and leaves the other sections alone.\n"
)


def interleaved_times(fns: dict, reps: int, rounds: int) -> dict[str, list[list[float]]]:
    """Seconds per call, ``{name: [[round 1 times], [round 2 times], ...]}``. Each round warms every function
    up once, then calls them in turn (a, b, c, a, b, c, ...) ``reps`` times, so drifts hit all alike."""
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for fn in fns.values():
            fn()
        for name in fns:
            times[name].append([])
        for _ in range(reps):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn()
                times[name][-1].append(time.perf_counter() - start)
    return times


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def cpu_model() -> str:
    try:
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                return row.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def write_section(path: Path, name: str, body: str) -> None:
    """Replace the text between the ``name`` markers (or append the section; create the file if missing)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    section = f"{start}\n{body}\n{end}"
    text = path.read_text() if path.exists() else DOC_HEADER
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
