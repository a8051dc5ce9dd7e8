"""Benchmark the models: ``EquivariantUNet`` and ``TetrisNet`` against a plain-torch model on the same graph
and against the same model on e3nn's voxel convolution (see ``_counterparts.py``).

- U-Net: ``EquivariantUNet(3, 1, 2, channels=(16, 32, 64), strides=(2, 2))`` (instance norm, kernel 5),
  batch 2, 32^3, CPU; peak training memory also at 128^3, batch 1, with and without activation
  checkpointing.
- TetrisNet: ``TetrisNet(kernel_group="SO3")`` (SO(3) kernels, no products) on the protocol batch, the 8 volumes at 36^3.

Measured per model: construction (cold: first in a fresh process; warm: second), the training step
(``zero_grad``, forward, ``out.square().mean().backward()``) and inference (eval, ``no_grad``), medians of
interleaved calls in rounds, and peak memory (max RSS of a fresh process per case).

    PYTHONUNBUFFERED=1 python benchmarks/bench_models.py            # both models, writes docs/benchmarks.md
    python benchmarks/bench_models.py --model unet --quick           # smoke test, docs untouched
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import statistics
import sys
import time

import torch
from e3nn import __version__ as e3nn_version

from steerable3d.models import EquivariantUNet, TetrisNet
from steerable3d.nn import SteerableConv3d

from _common import add_output_options, cpu_model, doc_target, fill_defaults, infer, rss_mib, run_worker, table, train_and_infer_times, train_step, write_section  # benchmarks/ is the script directory
from _counterparts import e3nn_conv, e3nn_counterpart, plain_counterpart

MODELS = ("ours", "plain", "e3nn")
TARGETS = {"train": 1.3, "memory": 1.3}  # U-Net, times plain (issue 7)
UNET = dict(channels=(16, 32, 64), strides=(2, 2))


# -- models ------------------------------------------------------------------------------------------------------


def example_input(kind: str, size: int, batch: int) -> torch.Tensor:
    if kind == "unet":
        return torch.randn(batch, 1, size, size, size)
    return torch.rand(batch, 1, size, size, size)


def build_ours(kind: str) -> torch.nn.Module:
    return EquivariantUNet(3, 1, 2, **UNET) if kind == "unet" else TetrisNet(kernel_group="SO3")


def build(kind: str, name: str, args) -> torch.nn.Module:
    """``name`` in ours, plain, e3nn; ``+ckpt`` appended: activation checkpointing (U-Net)."""
    base, _, option = name.partition("+")
    ours = build_ours(kind)
    if base == "ours":
        model = ours
    elif base == "plain":
        model = plain_counterpart(ours, example_input(kind, 16, 1))  # materializes the lazy widths
    elif base == "e3nn":
        model = e3nn_counterpart(ours)
    else:
        raise ValueError(f"unknown model {name!r}")
    if option == "ckpt":
        model.checkpointing = True
    return model


# -- workers (fresh processes) -------------------------------------------------------------------------------------


def construction_times(kind: str) -> dict[str, float]:
    """Seconds to build each model in this process: ours whole; for plain and e3nn their convolutions'
    constructors (``nn.Conv3d`` with the plain model's shapes, e3nn's ``Convolution`` in place of each of
    ours), the rest of those models being parameter-free or our own modules."""
    start = time.perf_counter()
    ours = build_ours(kind)
    times = {"ours": time.perf_counter() - start}
    plain = plain_counterpart(ours, example_input(kind, 16, 1))
    convs = [m for m in plain.modules() if isinstance(m, torch.nn.Conv3d)]
    start = time.perf_counter()
    for m in convs:
        torch.nn.Conv3d(m.in_channels, m.out_channels, m.kernel_size, padding=m.padding, bias=m.bias is not None)
    times["plain"] = time.perf_counter() - start
    steerable = [m for m in ours.modules() if isinstance(m, SteerableConv3d)]
    start = time.perf_counter()
    for m in steerable:
        e3nn_conv(m)
    times["e3nn"] = time.perf_counter() - start
    return times


def worker(args) -> None:
    kind, what, *rest = args.worker
    if what == "construct":
        cold = construction_times(kind)
        warm = construction_times(kind)
        print(json.dumps({name: {"cold": cold[name], "warm": warm[name]} for name in cold}))
    elif what == "memory":
        name, mode, size, batch = rest[0], rest[1], int(rest[2]), int(rest[3])
        torch.manual_seed(0)
        model = build(kind, name, args)
        x = example_input(kind, size, batch)
        baseline = rss_mib("VmRSS")
        if mode == "train":
            train_step(model.train(), x)
        else:
            infer(model.eval(), x)
        print(json.dumps({"baseline": baseline, "peak": rss_mib("VmHWM")}))
    else:
        raise ValueError(f"unknown worker {what!r}")


# -- measurements ------------------------------------------------------------------------------------------------------


def flags(args) -> list[str]:
    return ["--threads", str(args.threads)]


def measure_construction(kind: str, args) -> dict[str, dict[str, float]]:
    runs = [run_worker(__file__, flags(args), kind, "construct") for _ in range(args.procs)]
    return {name: {key: 1e3 * statistics.median(r[name][key] for r in runs) for key in ("cold", "warm")} for name in MODELS}


def measure_speed(kind: str, args) -> dict[str, dict[str, list[list[float]]]]:
    torch.manual_seed(0)
    models = {name: build(kind, name, args) for name in MODELS}
    x = example_input(kind, args.size[kind], args.batch[kind])
    return train_and_infer_times(models, x, args.reps, args.rounds)


def measure_memory(kind: str, args) -> dict[tuple, dict[str, float]]:
    """One fresh process per case, one at a time (two large cases side by side could exhaust the RAM)."""
    size, batch = args.size[kind], args.batch[kind]
    cases = [(name, mode, size, batch) for name in MODELS for mode in ("train", "infer")]
    if kind == "unet" and args.large:
        cases += [(name, "train", args.large, 1) for name in ("ours", "ours+ckpt", "plain", "plain+ckpt")]
    results = {}
    for case in cases:
        print(f"  memory {kind} {case} ...", file=sys.stderr)
        results[case] = run_worker(__file__, flags(args), kind, "memory", *map(str, case))
    return results


# -- report ------------------------------------------------------------------------------------------------------------


def _median_ms(rounds: list[list[float]]) -> float:
    return 1e3 * statistics.median(t for r in rounds for t in r)


def report(kind: str, args, construction, speed, memory) -> str:
    med = {mode: {n: _median_ms(r) for n, r in s.items()} for mode, s in speed.items()}
    ratio = {mode: {n: med[mode][n] / med[mode]["plain"] for n in MODELS} for mode in med}
    size, batch = args.size[kind], args.batch[kind]
    increment = {case: m["peak"] - m["baseline"] for case, m in memory.items()}
    n = args.reps * args.rounds
    yes = lambda ok: "yes" if ok else "**no**"  # noqa: E731
    command = " ".join(["python benchmarks/bench_models.py", *map(shlex.quote, sys.argv[1:])])
    if kind == "unet":
        title = "## EquivariantUNet vs the same graph in plain torch vs on e3nn's voxel convolution"
        config = (f"`EquivariantUNet(3, 1, 2, channels={UNET['channels']}, strides={UNET['strides']})` (instance norm, "
                  f"kernel 5, {sum(p.numel() for p in build_ours('unet').parameters()):,} parameters), batch {batch}, "
                  f"{size}^3, float32")
    else:
        title = "## TetrisNet vs the same graph in plain torch vs on e3nn's voxel convolution"
        config = f"`TetrisNet(kernel_group=\"SO3\")` (SO(3) kernels, {sum(p.numel() for p in build_ours('tetris').parameters()):,} parameters), batch {batch}, {size}^3, float32"
    out = [
        title,
        "",
        f"Machine: {cpu_model()}, `os.cpu_count()` = {os.cpu_count()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, e3nn {e3nn_version}, {datetime.date.today().isoformat()}.  ",
        f"Command: `{command}`  ",
        f"Configuration: CPU, {config}. Plain: every steerable convolution an `nn.Conv3d` of its output width (gate "
        "scalars included), norms `nn.InstanceNorm3d`, gates ReLU, the same low-pass and upsampling per channel "
        "(`benchmarks/_counterparts.py`). e3nn: every steerable convolution replaced by "
        "`v2104.voxel_convolution.Convolution(..., Irreps.spherical_harmonics(4), diameter=5 voxels, num_radial_basis=3)`.",
        "",
    ]
    if kind == "unet":
        train_x = ratio["train"]["ours"]
        mem_x = increment[("ours", "train", size, batch)] / increment[("plain", "train", size, batch)]
        rows = [
            [f"training step <= {TARGETS['train']}x plain", f"{train_x:.2f}x", yes(train_x <= TARGETS["train"])],
            [f"peak training memory <= {TARGETS['memory']}x plain ({size}^3, increment over the built model)", f"{mem_x:.2f}x", yes(mem_x <= TARGETS["memory"])],
        ]
        if args.large:
            large = args.large
            big = {name: increment[(name, "train", large, 1)] for name in ("ours", "ours+ckpt", "plain", "plain+ckpt")}
            rows.append([f"peak training memory <= {TARGETS['memory']}x plain ({large}^3, batch 1)", f"{big['ours'] / big['plain']:.2f}x", yes(big["ours"] / big["plain"] <= TARGETS["memory"])])
        out += ["### Targets", "", table(["target", "measured", "met"], rows), ""]
    out += [
        "### Training step and inference",
        "",
        f"Median of {n} calls ({args.rounds} round(s) x {args.reps}, interleaved ours, plain, e3nn, one warm-up per model per "
        "round). Per-round medians in brackets.",
        "",
        table(
            ["model", "train step (ms)", "x plain", "per round", "inference (ms)", "x plain", "per round"],
            [
                [name] + sum(
                    ([f"{med[mode][name]:.1f}", f"{ratio[mode][name]:.2f}",
                      "[" + ", ".join(f"{1e3 * statistics.median(r):.1f}" for r in speed[mode][name]) + "]"]
                     for mode in ("train", "infer")),
                    [],
                )
                for name in MODELS
            ],
        ),
        "",
        "### Construction",
        "",
        f"Cold: first construction in a fresh process (after imports); warm: a second one. Median over {args.procs} "
        "process(es). Ours: the whole model. Plain and e3nn: their convolutions' constructors only (the rest of those "
        "models is parameter-free or our own modules).",
        "",
        table(["model", "cold (ms)", "warm (ms)"], [[n, f"{construction[n]['cold']:.1f}", f"{construction[n]['warm']:.1f}"] for n in MODELS]),
        "",
        "### Peak memory",
        "",
        "A fresh process per row: RSS after imports and construction, then peak RSS (`VmHWM`) after one training step "
        "(train) or one inference forward (infer). The increment is what the step itself needs.",
        "",
        table(
            ["model", "mode", "input", "RSS after construction (MiB)", "peak RSS (MiB)", "increment (MiB)", "increment x plain"],
            [
                [name, mode, f"{b} x {s}^3", f"{m['baseline']:.0f}", f"{m['peak']:.0f}", f"{increment[(name, mode, s, b)]:.0f}",
                 f"{increment[(name, mode, s, b)] / increment[('plain', mode, s, b)]:.2f}"]
                for (name, mode, s, b), m in memory.items()
            ],
        ),
    ]
    return "\n".join(out)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("unet", "tetris"), nargs="+", default=["unet", "tetris"])
    p.add_argument("--reps", type=int, help="timed calls per model per round (default 7; 2 with --quick)")
    p.add_argument("--rounds", type=int, help="timing rounds (default 3; 1 with --quick)")
    p.add_argument("--procs", type=int, help="fresh processes for construction (default 3; 1 with --quick)")
    p.add_argument("--large", type=int, help="U-Net peak training memory at this size, batch 1 (default 128; none with --quick)")
    add_output_options(p, "fewer repetitions, smaller inputs")
    p.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    fill_defaults(args, [("reps", 7, 2), ("rounds", 3, 1), ("procs", 3, 1), ("large", 128, 0)])
    args.size = {"unet": 16 if args.quick else 32, "tetris": 20 if args.quick else 36}
    args.batch = {"unet": 2, "tetris": 8}
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.worker:
        worker(args)
        return
    doc = doc_target(args)
    for kind in args.model:
        t0 = time.perf_counter()
        print(f"{kind}: construction ...", file=sys.stderr)
        construction = measure_construction(kind, args)
        print(f"{kind}: training step and inference ...", file=sys.stderr)
        speed = measure_speed(kind, args)
        print(f"{kind}: peak memory ...", file=sys.stderr)
        memory = measure_memory(kind, args)
        body = report(kind, args, construction, speed, memory)
        print(body + "\n")
        if doc is not None:
            write_section(doc, f"bench_{kind}", body)
            print(f"wrote the bench_{kind} section of {doc} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
