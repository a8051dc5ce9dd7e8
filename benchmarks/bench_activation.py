"""Benchmark the equivariant nonlinearities against a plain ReLU on the same tensor.

``Gate`` (16x0e scalars, 8x0e gates, 4x1o + 4x2e gated) and ``NormActivation`` on a field of the same
width (56 channels), batch 2, 32^3, CPU, 2 threads; forward and forward + backward, medians of interleaved
repetitions over rounds, written to the ``bench_activation`` section of ``docs/benchmarks.md``:

    python benchmarks/bench_activation.py           # add --quick for a smoke test (does not write the docs)
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics

import torch

from steerable3d.nn import Gate, NormActivation

from _common import DOC, cpu_model, interleaved_times, table, write_section  # benchmarks/ is the script directory


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.rounds = 3, 1
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    gate = Gate("16x0e", [torch.relu], "8x0e", [torch.sigmoid], "4x1o + 4x2e")
    norm_act = NormActivation("24x0e + 4x1o + 4x2e", torch.relu, bias=True)
    models = {"ReLU": torch.nn.ReLU(), "Gate": gate, "NormActivation": norm_act}
    x = torch.randn(2, gate.irreps_in.dim, args.size, args.size, args.size, requires_grad=True)

    def forward(m):
        with torch.no_grad():
            m(x)

    def train(m):
        x.grad = None
        m(x).square().mean().backward()

    rows = []
    results = {}
    for label, step in (("forward", forward), ("forward + backward", train)):
        times = interleaved_times({n: (lambda m=m: step(m)) for n, m in models.items()}, args.reps, args.rounds)
        results[label] = {n: statistics.median(t for r in rounds for t in r) for n, rounds in times.items()}
    for name in models:
        rows.append(
            [name]
            + [f"{1000 * results[label][name]:.1f}" for label in results]
            + [f"{results[label][name] / results[label]['ReLU']:.2f}" for label in results]
        )
    body = "\n".join(
        [
            "## Nonlinearities vs a plain ReLU",
            "",
            f"Machine: {cpu_model()}, `os.cpu_count()` = {os.cpu_count()}, {args.threads} torch threads, "
            f"torch {torch.__version__}, {datetime.date.today().isoformat()}.  ",
            "Command: `python benchmarks/bench_activation.py`  ",
            f"Input `[2, 56, {args.size}, {args.size}, {args.size}]` float32. Gate: `16x0e` through ReLU, `8x0e` gates "
            "through sigmoid times `4x1o + 4x2e`; NormActivation on `24x0e + 4x1o + 4x2e` (ReLU of the biased norm "
            f"times the direction). Medians of {args.reps} x {args.rounds} interleaved calls.",
            "",
            table(["module", "forward (ms)", "fwd + bwd (ms)", "forward x ReLU", "fwd + bwd x ReLU"], rows),
        ]
    )
    print(body)
    if not args.quick:
        write_section(DOC, "bench_activation", body)
        print(f"\nwrote {DOC}")


if __name__ == "__main__":
    main()
