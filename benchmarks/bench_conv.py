"""Benchmark ``SteerableConv3d`` side by side with a plain ``torch.nn.Conv3d`` and e3nn's voxel convolution.

The three models map the same channel shape (default ``8x0e + 4x1o + 2x2e`` -> same, 30 channels, kernel 5,
batch 2, 32^3 volume, CPU, 2 threads):

- ours:  ``SteerableConv3d(irreps, irreps, 5)``
- plain: ``torch.nn.Conv3d(30, 30, 5, padding=2)``
- e3nn:  ``e3nn.nn.models.v2104.voxel_convolution.Convolution(irreps, irreps, Irreps.spherical_harmonics(4),
  diameter=5, num_radial_basis=3)``

Measured:

1. construction time, cold (first construction in a fresh process, after imports) and warm (a second one in
   the same process), median over a few subprocesses;
2. a training step (train mode, ``zero_grad``, forward, ``out.square().mean().backward()``) and an inference
   forward (eval mode, ``torch.no_grad()``), timed interleaved between the models, in rounds, one warm-up per
   model per round, median over all repetitions;
3. peak memory: max RSS of a fresh subprocess per (model, mode) after one step, next to its RSS right after
   imports and construction;
4. continuous-rotation error per output irrep (float64, blurred noise on 33^3, cubic-spline rotation, relative
   L2 on the central 17^3), median over random rotations and initializations, for ours and e3nn.

The tables go to stdout and to the ``bench_conv`` section of ``docs/benchmarks.md``:

    PYTHONUNBUFFERED=1 python benchmarks/bench_conv.py    # full run, a few minutes on 2 cores
    python benchmarks/bench_conv.py --quick               # smoke test (< 1 minute); does not write the docs
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
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from e3nn import __version__ as e3nn_version
from e3nn import o3
from e3nn.nn.models.v2104.voxel_convolution import Convolution
from scipy import ndimage

from steerable3d import random_rotations
from steerable3d.nn import SteerableConv3d
from steerable3d.testing import equivariance_error

from _common import add_output_options, cpu_model, doc_target, fill_defaults, infer, rss_mib, run_worker, table, train_and_infer_times, train_step, write_section  # benchmarks/ is the script directory

MODELS = ("ours", "plain", "e3nn")
TARGETS = {"train": 1.05, "infer": 1.02, "warm_ms": 50.0}


# -- models and steps ----------------------------------------------------------------------------------------


def build(name: str, args) -> torch.nn.Module:
    k = args.kernel_size
    if name == "ours":
        return SteerableConv3d(args.irreps_in, args.irreps_out, k)
    if name == "plain":
        return torch.nn.Conv3d(o3.Irreps(args.irreps_in).dim, o3.Irreps(args.irreps_out).dim, k, padding=k // 2)
    if name == "e3nn":
        sh = o3.Irreps.spherical_harmonics(4)
        return Convolution(args.irreps_in, args.irreps_out, sh, diameter=k, num_radial_basis=3)
    raise ValueError(f"unknown model {name!r}")


def random_input(args) -> torch.Tensor:
    return torch.randn(args.batch, o3.Irreps(args.irreps_in).dim, args.size, args.size, args.size)


# -- measurement helpers ---------------------------------------------------------------------------------------


def config_flags(args) -> list[str]:
    return [
        "--irreps-in", args.irreps_in, "--irreps-out", args.irreps_out, "--kernel-size", str(args.kernel_size),
        "--size", str(args.size), "--batch", str(args.batch), "--threads", str(args.threads),
    ]


def worker_result(args, *worker: str) -> dict:
    """This script's ``--worker`` mode in a fresh Python process."""
    return run_worker(__file__, config_flags(args), *worker)


def worker(args) -> None:
    """Subprocess side: ``construct MODEL`` or ``memory MODEL {train,infer}``; prints one JSON line."""
    kind, name, *rest = args.worker
    if kind == "construct":
        start = time.perf_counter()
        build(name, args)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        build(name, args)
        warm = time.perf_counter() - start
        print(json.dumps({"cold": cold, "warm": warm}))
    elif kind == "memory":
        model = build(name, args)
        baseline = rss_mib("VmRSS")
        x = random_input(args)
        if rest == ["train"]:
            train_step(model.train(), x)
        else:
            infer(model.eval(), x)
        print(json.dumps({"baseline": baseline, "peak": rss_mib("VmHWM")}))
    else:
        raise ValueError(f"unknown worker {kind!r}")


# -- the four measurements ---------------------------------------------------------------------------------------


def measure_construction(args) -> dict[str, dict[str, float]]:
    runs = {name: [worker_result(args, "construct", name) for _ in range(args.procs)] for name in MODELS}
    return {
        name: {key: 1e3 * statistics.median(r[key] for r in rs) for key in ("cold", "warm")}
        for name, rs in runs.items()
    }


def measure_speed(args) -> dict[str, dict[str, list[list[float]]]]:
    torch.manual_seed(0)
    models = {name: build(name, args) for name in MODELS}
    x = random_input(args)
    return train_and_infer_times(models, x, args.reps, args.rounds)


def measure_memory(args) -> dict[tuple[str, str], dict[str, float]]:
    """One fresh process per (model, mode), two at a time (RSS does not depend on what runs beside it)."""
    cases = [(name, mode) for name in MODELS for mode in ("train", "infer")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(cases, pool.map(lambda case: worker_result(args, "memory", *case), cases)))


def blurred_noise(dim: int, size: int, seed: int) -> torch.Tensor:
    """White noise ``[1, dim, size, size, size]`` float64, blurred per channel by a Gaussian of 2 voxels."""
    noise = np.random.default_rng(seed).standard_normal((1, dim, size, size, size))
    return torch.from_numpy(ndimage.gaussian_filter(noise, sigma=(0, 0, 2, 2, 2)))


def measure_rotation(args) -> dict[str, dict[str, float]]:
    """Median continuous-rotation error per output irrep over ``rotations x inits``, float64."""
    variants = {
        "ours": ("ours", False),
        "ours, weights ~ N(0, 1)": ("ours", True),
        "e3nn": ("e3nn", False),
    }
    rotations = random_rotations(args.rotations, seed=1)
    values: dict[str, dict[str, list[float]]] = {v: {} for v in variants}
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        for seed in range(args.inits):
            x = blurred_noise(o3.Irreps(args.irreps_in).dim, args.rotation_size, seed)
            for variant, (name, redraw) in variants.items():
                torch.manual_seed(seed)
                model = build(name, args).double().eval()
                if redraw:
                    with torch.no_grad():
                        model.weight.normal_()
                for r in rotations:
                    errors = equivariance_error(
                        model, x, args.irreps_in, args.irreps_out, group="continuous", rotations=r[None], crop=args.crop
                    )
                    for irrep, e in errors.items():
                        values[variant].setdefault(irrep, []).append(e)
    finally:
        torch.set_default_dtype(previous)
    return {v: {irrep: statistics.median(es) for irrep, es in per.items()} for v, per in values.items()}


# -- report ------------------------------------------------------------------------------------------------------


def report(args, construction, speed, memory, rotation) -> str:
    med = {mode: {n: 1e3 * statistics.median(t for rnd in r for t in rnd) for n, r in s.items()} for mode, s in speed.items()}
    ratio = {mode: {n: med[mode][n] / med[mode]["plain"] for n in MODELS} for mode in med}
    irreps = list(rotation["ours"])
    worst = max(irreps, key=lambda i: rotation["ours"][i] / rotation["e3nn"][i])
    worst_ratio = rotation["ours"][worst] / rotation["e3nn"][worst]
    yes = lambda ok: "yes" if ok else "**no**"  # noqa: E731
    command = " ".join(["python benchmarks/bench_conv.py", *map(shlex.quote, sys.argv[1:])])
    n = args.reps * args.rounds

    out = [
        "## SteerableConv3d vs `torch.nn.Conv3d` vs e3nn voxel convolution",
        "",
        f"Machine: {cpu_model()}, `os.cpu_count()` = {os.cpu_count()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, e3nn {e3nn_version}, {datetime.date.today().isoformat()}.  ",
        f"Command: `{command}`  ",
        f"Configuration: CPU, `{args.irreps_in}` -> `{args.irreps_out}`, kernel {args.kernel_size}, "
        f"batch {args.batch}, {args.size}^3 volume, float32. Models: ours `SteerableConv3d(irreps_in, irreps_out, "
        f"{args.kernel_size})`; plain `Conv3d({o3.Irreps(args.irreps_in).dim}, {o3.Irreps(args.irreps_out).dim}, "
        f"{args.kernel_size}, padding={args.kernel_size // 2})`; e3nn `v2104.voxel_convolution.Convolution(irreps_in, "
        f"irreps_out, Irreps.spherical_harmonics(4), diameter={args.kernel_size}, num_radial_basis=3)`.",
        "",
        "### Targets",
        "",
        table(
            ["target", "measured", "met"],
            [
                [f"training step <= {TARGETS['train']:.2f}x plain", f"{ratio['train']['ours']:.3f}x", yes(ratio["train"]["ours"] <= TARGETS["train"])],
                [f"inference <= {TARGETS['infer']:.2f}x plain", f"{ratio['infer']['ours']:.3f}x", yes(ratio["infer"]["ours"] <= TARGETS["infer"])],
                [f"warm construction <= {TARGETS['warm_ms']:.0f} ms", f"{construction['ours']['warm']:.1f} ms", yes(construction["ours"]["warm"] <= TARGETS["warm_ms"])],
                ["continuous-rotation error below e3nn, every output irrep", f"worst ours/e3nn {worst_ratio:.2f} ({worst})", yes(worst_ratio < 1)],
            ],
        ),
        "",
        "### Training step and inference",
        "",
        f"Median of {n} calls ({args.rounds} round(s) x {args.reps}, interleaved ours, plain, e3nn, one warm-up per "
        "model per round). Training step: train mode, `zero_grad`, forward, `out.square().mean().backward()`. "
        "Inference: eval mode, `torch.no_grad()` (ours reuses its cached kernel). Per-round medians in brackets.",
        "",
        table(
            ["model", "train step (ms)", "x plain", "per round", "inference (ms)", "x plain", "per round"],
            [
                [name]
                + sum(
                    (
                        [f"{med[mode][name]:.1f}", f"{ratio[mode][name]:.3f}",
                         "[" + ", ".join(f"{1e3 * statistics.median(r):.1f}" for r in speed[mode][name]) + "]"]
                        for mode in ("train", "infer")
                    ),
                    [],
                )
                for name in MODELS
            ],
        ),
        "",
        "### Construction",
        "",
        f"Cold: first construction in a fresh Python process (after imports); warm: a second identical construction "
        f"in the same process. Median over {args.procs} process(es).",
        "",
        table(
            ["model", "cold (ms)", "warm (ms)"],
            [[name, f"{construction[name]['cold']:.1f}", f"{construction[name]['warm']:.2f}"] for name in MODELS],
        ),
        "",
        "### Peak memory",
        "",
        "A fresh process per row: its RSS right after imports and construction, and its peak RSS (`VmHWM`, i.e. "
        "`ru_maxrss` of a fresh process) after one training step (train) or one inference forward (infer) on a new "
        "random input.",
        "",
        table(
            ["model", "mode", "RSS after construction (MiB)", "peak RSS (MiB)", "increment (MiB)"],
            [
                [name, mode, f"{m['baseline']:.0f}", f"{m['peak']:.0f}", f"{m['peak'] - m['baseline']:.0f}"]
                for (name, mode), m in memory.items()
            ],
        ),
        "",
        "### Continuous-rotation error",
        "",
        f"Relative L2 of f(R x) vs R f(x) per output irrep, float64. Input: white noise, {o3.Irreps(args.irreps_in).dim} "
        f"channels on {args.rotation_size}^3, blurred per channel by a Gaussian of 2 voxels, batch 1, new noise per "
        f"initialization. Rotation about the volume centre by cubic-spline resampling, features by D(R); error on the "
        f"central {args.rotation_size - 2 * args.crop}^3 (crop {args.crop}). Median over {args.rotations} rotations "
        f"(`random_rotations({args.rotations}, seed=1)`) x {args.inits} initializations (`torch.manual_seed(0..{args.inits - 1})`).",
        "",
        table(
            ["model", *irreps],
            [[v, *(f"{errs[i]:.2e}" for i in irreps)] for v, errs in rotation.items()]
            + [["ratio e3nn / ours", *(f"{rotation['e3nn'][i] / rotation['ours'][i]:.1f}x" for i in irreps)]],
        ),
    ]
    return "\n".join(out)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--irreps-in", default="8x0e + 4x1o + 2x2e")
    p.add_argument("--irreps-out", default="8x0e + 4x1o + 2x2e")
    p.add_argument("--kernel-size", type=int, default=5)
    p.add_argument("--size", type=int, default=32, help="cubic volume for timing and memory")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--reps", type=int, help="timed calls per model per round (default 7; 3 with --quick)")
    p.add_argument("--rounds", type=int, help="timing rounds (default 3; 1 with --quick)")
    p.add_argument("--procs", type=int, help="subprocesses per model for construction (default 5; 1 with --quick)")
    p.add_argument("--rotation-size", type=int, default=33)
    p.add_argument("--crop", type=int, default=8)
    p.add_argument("--rotations", type=int, help="random rotations (default 3; 1 with --quick)")
    p.add_argument("--inits", type=int, help="initializations, seeds 0, 1, ... (default 3; 1 with --quick)")
    add_output_options(p, "fewer repetitions, 1 round")
    p.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    fill_defaults(args, [("reps", 7, 3), ("rounds", 3, 1), ("procs", 5, 1), ("rotations", 3, 1), ("inits", 3, 1)])
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.worker:
        worker(args)
        return
    t0 = time.perf_counter()
    print("construction (subprocesses) ...", file=sys.stderr)
    construction = measure_construction(args)
    print("training step and inference ...", file=sys.stderr)
    speed = measure_speed(args)
    print("peak memory (subprocesses) ...", file=sys.stderr)
    memory = measure_memory(args)
    print("continuous-rotation error ...", file=sys.stderr)
    rotation = measure_rotation(args)
    body = report(args, construction, speed, memory, rotation)
    print(body)
    doc = doc_target(args)
    if doc is not None:
        write_section(doc, "bench_conv", body)
        print(f"\nwrote {doc} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    else:
        print(f"\n(docs not written; {time.perf_counter() - t0:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
