"""Helpers shared by the benchmark scripts: interleaved timing, markdown tables, the machine, doc sections."""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
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


def rss_mib(field: str) -> float:
    """``"VmRSS"`` (now) or ``"VmHWM"`` (peak) of this process, MiB. The peak is ``ru_maxrss`` of a fresh
    process: ``getrusage`` itself is no use in a child, as Linux carries the parent's peak RSS over fork and
    exec (a worker started from a 450 MiB benchmark would report at least 450 MiB)."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 1024
    except (OSError, StopIteration):  # no procfs: fall back on getrusage (KiB on Linux)
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(script: str, flags: list[str], *worker: str) -> dict:
    """Run ``script --worker ...`` (with ``flags``) in a fresh Python process; return the JSON it prints last."""
    cmd = [sys.executable, str(Path(script).resolve()), *flags, "--worker", *worker]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"worker {' '.join(worker)} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def train_step(model, x) -> None:
    """One training step as every benchmark times it: ``zero_grad``, forward, ``out.square().mean().backward()``."""
    model.zero_grad()
    model(x).square().mean().backward()


def infer(model, x) -> None:
    """One inference forward (``no_grad``; the caller sets eval mode)."""
    import torch

    with torch.no_grad():
        model(x)


def train_and_infer_times(models: dict, x, reps: int, rounds: int) -> dict[str, dict[str, list[list[float]]]]:
    """``{"train": interleaved training-step times, "infer": interleaved inference times}`` of ``models``."""
    for m in models.values():
        m.train()
    train = interleaved_times({n: (lambda m=m: train_step(m, x)) for n, m in models.items()}, reps, rounds)
    for m in models.values():
        m.eval()
    inference = interleaved_times({n: (lambda m=m: infer(m, x)) for n, m in models.items()}, reps, rounds)
    return {"train": train, "infer": inference}


def fill_defaults(args, defaults: list[tuple[str, object, object]]) -> None:
    """Set each unset option ``(name, full, quick)`` to its full-run or ``--quick`` default."""
    for name, full, quick in defaults:
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)


def add_output_options(parser, quick_help: str) -> None:
    """The options every script shares: ``--threads``, ``--quick`` (a smoke test that writes no docs unless
    ``--doc``), ``--doc FILE``, ``--no-doc``."""
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--quick", action="store_true", help=f"smoke test: {quick_help}; no docs unless --doc")
    parser.add_argument("--doc", type=Path, help=f"markdown file to update (default {DOC.relative_to(DOC.parent.parent)})")
    parser.add_argument("--no-doc", action="store_true", help="print only")


def doc_target(args):
    """The markdown file a run writes: ``--doc``, else the default unless ``--quick`` or ``--no-doc``."""
    if args.no_doc:
        return None
    return args.doc or (None if args.quick else DOC)
