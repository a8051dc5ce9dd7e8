"""Benchmark ``SteerableConv3d`` with ``backend="direct"`` against ``backend="fft"`` over kernel sizes.

Setting of issue 6: batch 2, ``8x0e + 4x1o + 2x2e`` -> same, 64^3, circular padding, float32, CPU. For each
kernel size: the relative difference of the two outputs (max-abs), a training step (train mode, forward,
``out.square().mean().backward()``: the FFT route transforms the kernel every step) and an inference forward
(eval mode, ``no_grad``: the kernel, or its spectrum, is cached), direct and FFT interleaved, medians.
What ``backend="auto"`` would pick is shown beside.

    PYTHONUNBUFFERED=1 python benchmarks/bench_fft.py                 # writes docs/benchmarks.md
    python benchmarks/bench_fft.py --quick                            # 32^3, kernels 3, 9, 13; docs untouched
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import statistics
import sys
import time

import torch

from steerable3d.nn import SteerableConv3d

from _common import add_output_options, cpu_model, doc_target, fill_defaults, table, train_and_infer_times, write_section  # benchmarks/ is the script directory

TARGETS = {9: 1.0, 13: 3.0}  # direct / FFT at least this (issue 6)


def measure(kernel_size: int, args) -> dict:
    torch.manual_seed(kernel_size)
    direct = SteerableConv3d(args.irreps, args.irreps, kernel_size, padding_mode=args.padding_mode)
    fft = SteerableConv3d(args.irreps, args.irreps, kernel_size, padding_mode=args.padding_mode, backend="fft")
    fft.load_state_dict(direct.state_dict())
    auto = SteerableConv3d(args.irreps, args.irreps, kernel_size, padding_mode=args.padding_mode, backend="auto")
    x = torch.randn(args.batch, direct.irreps_in.dim, args.size, args.size, args.size)
    with torch.no_grad():
        a, b = direct(x), fft(x)
        difference = float((a - b).abs().max() / a.abs().max())
    times = train_and_infer_times({"direct": direct, "fft": fft}, x, args.reps, args.rounds)
    med = {mode: {n: statistics.median(t for r in rounds for t in r) for n, rounds in per.items()} for mode, per in times.items()}
    picks = {"train": auto.uses_fft(x.shape[2:], args.batch)}
    with torch.no_grad():
        picks["infer"] = auto.eval().uses_fft(x.shape[2:], args.batch)
    return {"difference": difference, "auto": " / ".join("fft" if picks[m] else "direct" for m in ("train", "infer")), **med}


def report(args, results: dict[int, dict]) -> str:
    command = " ".join(["python benchmarks/bench_fft.py", *map(shlex.quote, sys.argv[1:])])
    speedup = {k: {mode: r[mode]["direct"] / r[mode]["fft"] for mode in ("train", "infer")} for k, r in results.items()}
    rows = []
    for k, r in results.items():
        rows.append([
            str(k), f"{r['difference']:.1e}",
            f"{1e3 * r['train']['direct']:.0f}", f"{1e3 * r['train']['fft']:.0f}", f"{speedup[k]['train']:.2f}",
            f"{1e3 * r['infer']['direct']:.0f}", f"{1e3 * r['infer']['fft']:.0f}", f"{speedup[k]['infer']:.2f}", r["auto"],
        ])
    targets = []
    for k, need in TARGETS.items():
        if k in results:
            for mode in ("train", "infer"):
                s = speedup[k][mode]
                targets.append([f"kernel {k}, {mode}: direct / FFT >= {need:g}", f"{s:.2f}", "yes" if s >= need else "**no**"])
    return "\n".join([
        "## Direct vs FFT convolution",
        "",
        f"Machine: {cpu_model()}, `os.cpu_count()` = {os.cpu_count()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, {datetime.date.today().isoformat()}.  ",
        f"Command: `{command}`  ",
        f"Configuration: CPU, `{args.irreps}` -> same, batch {args.batch}, {args.size}^3, padding `{args.padding_mode}`, "
        f"float32; medians of {args.reps * args.rounds} interleaved calls ({args.rounds} round(s) x {args.reps}) after a "
        "warm-up. Training step: train mode, forward, `out.square().mean().backward()` (the FFT route transforms the "
        "kernel every step). Inference: eval mode, `no_grad`, kernel or kernel spectrum cached. Difference: "
        "max |fft - direct| / max |direct|.",
        "",
        "### Targets",
        "",
        table(["target", "measured", "met"], targets) if targets else "(kernels 9 and 13 not in this run)",
        "",
        "### Per kernel size",
        "",
        table(["kernel", "difference", "train direct (ms)", "train FFT (ms)", "direct / FFT", "infer direct (ms)",
               "infer FFT (ms)", "direct / FFT", "auto picks (train / infer)"], rows),
    ])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--irreps", default="8x0e + 4x1o + 2x2e")
    p.add_argument("--kernels", type=int, nargs="+", help="kernel sizes (default 3 5 ... 21; 3 9 13 with --quick)")
    p.add_argument("--size", type=int, help="cubic volume (default 64; 32 with --quick)")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--padding-mode", default="circular", choices=("circular", "zeros"))
    p.add_argument("--reps", type=int, help="timed calls per backend per round (default 3; 1 with --quick)")
    p.add_argument("--rounds", type=int, help="rounds (default 1)")
    add_output_options(p, "32^3, kernels 3, 9, 13")
    args = p.parse_args(argv)
    fill_defaults(args, [("kernels", list(range(3, 22, 2)), [3, 9, 13]), ("size", 64, 32), ("reps", 3, 1), ("rounds", 1, 1)])
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    results = {}
    for k in args.kernels:
        print(f"kernel {k} ...", file=sys.stderr, flush=True)
        results[k] = measure(k, args)
    body = report(args, results)
    print(body)
    doc = doc_target(args)
    if doc is not None:
        write_section(doc, "bench_fft", body)
        print(f"\nwrote {doc} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
