"""The benchmark suite's one entry point: every script in turn, each in its own process, each printing its
tables and replacing its section of ``docs/benchmarks.md``.

    PYTHONUNBUFFERED=1 python benchmarks/run.py           # the full suite (about half an hour on 2 cores)
    python benchmarks/run.py --quick                      # smoke test of every script; docs untouched
    python benchmarks/run.py --only bench_models          # one script (extra arguments go to it: -- --model unet)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ("bench_conv", "bench_activation", "bench_models", "bench_fft")  # and bench_gpu.py, on a CUDA machine


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="pass --quick to every script (no docs written)")
    p.add_argument("--only", nargs="+", choices=SCRIPTS, help="run only these scripts")
    p.add_argument("extra", nargs=argparse.REMAINDER, help="arguments after -- go to every script run")
    args = p.parse_args(argv)
    extra = args.extra[1:] if args.extra[:1] == ["--"] else args.extra
    failed = []
    for name in args.only or SCRIPTS:
        start = time.perf_counter()
        print(f"=== {name} ===", flush=True)
        command = [sys.executable, str(HERE / f"{name}.py"), *(["--quick"] if args.quick else []), *extra]
        if subprocess.run(command).returncode != 0:
            failed.append(name)
        print(f"=== {name}: {time.perf_counter() - start:.0f} s ===\n", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
