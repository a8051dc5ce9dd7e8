"""GPU benchmark: the conv layer, the U-Net and TetrisNet on CUDA, side by side with the plain-torch model of
the same graph (cuDNN's conv3d) and e3nn's voxel convolution, in bf16 autocast with ``channels_last_3d``
(and the conv layer in float32 too).

    python benchmarks/bench_gpu.py                       # prints the tables, writes its docs section
    python benchmarks/bench_gpu.py --out FILE.md         # the section's markdown to FILE.md as well

Timing: every call ends with ``torch.cuda.synchronize()``; medians of ``--reps`` interleaved calls in each of
``--rounds`` rounds, after a warm-up (cuDNN autotuning on). Training step: forward,
``out.float().square().mean().backward()``. A step that starts on an idle GPU waits for every host-side op
before the convolution; for the conv layer the tables also give back-to-back steps (``STREAM`` steps, then one
synchronize), where the host runs ahead of the GPU as in a training loop that does not synchronize each step. Peak memory: ``torch.cuda.max_memory_allocated`` during one
training step, over what was allocated before it (the built model and the input).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

from steerable3d.models import EquivariantUNet, TetrisNet
from steerable3d.nn import SteerableConv3d

from _common import DOC, interleaved_times, table, write_section  # benchmarks/ is the script directory
from _counterparts import e3nn_conv, e3nn_counterpart, plain_counterpart

IRREPS = "8x0e + 4x1o + 2x2e"
TARGETS = {"conv train": 1.05, "conv infer": 1.02, "unet train": 1.3, "unet memory": 1.3}


DEVICE = "cuda"


def synchronized(fn):
    def call():
        fn()
        if DEVICE == "cuda":
            torch.cuda.synchronize()
    return call


STREAM = 10  # back-to-back training steps per timed call


def step(model, x, dtype):
    def train_unsynchronized():
        model.zero_grad(set_to_none=True)
        with torch.autocast(DEVICE, dtype=dtype, enabled=dtype != torch.float32):
            out = model(x)
        out.float().square().mean().backward()

    def train():
        train_unsynchronized()
        if DEVICE == "cuda":
            torch.cuda.synchronize()

    def stream():
        for _ in range(STREAM):
            train_unsynchronized()
        if DEVICE == "cuda":
            torch.cuda.synchronize()

    def infer():
        with torch.no_grad(), torch.autocast(DEVICE, dtype=dtype, enabled=dtype != torch.float32):
            model(x)

    return train, synchronized(infer), stream


def peak_training_mib(model, x, dtype) -> float:
    if DEVICE != "cuda":
        return float("nan")
    train = step(model, x, dtype)[0]
    model.train()
    train()  # the first step allocates the gradients; measure a later one
    model.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    train()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


FAILED: dict[str, str] = {}  # "model (setting)": the error, for the notes under the tables


def runnable(models: dict, x, dtype, setting: str) -> dict:
    """The models whose training step runs in this setting (e3nn's voxel convolution fails under bf16
    autocast: its linear layers mix dtypes); the others are noted in ``FAILED``."""
    kept = {}
    for name, model in models.items():
        try:
            step(model.train(), x, dtype)[0]()
            kept[name] = model
        except RuntimeError as error:
            FAILED[f"{name} ({setting})"] = str(error).splitlines()[0]
    return kept


def measure(models: dict, x, dtype, reps: int, rounds: int, back_to_back: bool = False) -> dict:
    """``{name: {"train": ms, "infer": ms, "memory": MiB}}`` (and ``"stream"``, ms per back-to-back step):
    medians over rounds of per-round medians."""
    results = {name: {} for name in models}
    for mode in ("train", "infer", "stream") if back_to_back else ("train", "infer"):
        fns = {}
        for name, model in models.items():
            model.train(mode != "infer")
            fns[name] = step(model, x, dtype)[("train", "infer", "stream").index(mode)]
        times = interleaved_times(fns, reps, rounds)
        for name, per_round in times.items():
            results[name][mode] = 1e3 * statistics.median(statistics.median(r) for r in per_round) / (STREAM if mode == "stream" else 1)
    for name, model in models.items():
        results[name]["memory"] = peak_training_mib(model, x, dtype)
    return results


def prepare(model, channels_last: bool):
    """On the device; with ``channels_last``, every 5-d weight in ``channels_last_3d`` (``Module.to`` refuses
    modules that also hold buffers of other ranks)."""
    model = model.to(DEVICE)
    if channels_last:
        with torch.no_grad():
            for tensor in [*model.parameters(), *model.buffers()]:
                if tensor.dim() == 5:
                    tensor.data = tensor.data.contiguous(memory_format=torch.channels_last_3d)
    return model


def rows_of(results: dict, reference: str) -> list[list[str]]:
    ref = results[reference]
    rows = []
    for name, r in results.items():
        row = [name, f"{r['train']:.2f}", f"{r['train'] / ref['train']:.3f}"]
        if "stream" in r:
            row += [f"{r['stream']:.2f}", f"{r['stream'] / ref['stream']:.3f}"]
        rows.append(row + [f"{r['infer']:.2f}", f"{r['infer'] / ref['infer']:.3f}", f"{r['memory']:.0f}", f"{r['memory'] / ref['memory']:.2f}"])
    return rows


HEADERS = ["model", "train (ms)", "train / plain", "infer (ms)", "infer / plain", "peak train memory (MiB)", "memory / plain"]
STREAM_HEADERS = HEADERS[:3] + ["train back-to-back (ms/step)", "back-to-back / plain"] + HEADERS[3:]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--conv-size", type=int, default=64)
    p.add_argument("--unet-size", type=int, default=96)
    p.add_argument("--tetris-size", type=int, default=36)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, help="also write the section's markdown here")
    p.add_argument("--no-doc", action="store_true")
    p.add_argument("--cpu-dry-run", action="store_true", help="run the script's logic on the CPU (no docs; a smoke test)")
    args = p.parse_args(argv)
    global DEVICE
    if args.cpu_dry_run:
        DEVICE, args.no_doc = "cpu", True
    elif not torch.cuda.is_available():
        print("bench_gpu: no CUDA device (--cpu-dry-run tests the script on the CPU)", file=sys.stderr)
        return 1
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    name = torch.cuda.get_device_name() if DEVICE == "cuda" else "CPU (dry run)"
    sections, summary = [], []

    # the conv layer: bf16 + channels_last_3d, then float32
    for dtype, channels_last, label in ((torch.bfloat16, True, "bf16 autocast, channels_last_3d"), (torch.float32, False, "float32")):
        ours = SteerableConv3d(IRREPS, IRREPS, 5)
        dim = ours.irreps_in.dim
        models = {"plain Conv3d (cuDNN)": torch.nn.Conv3d(dim, dim, 5, padding=2), "ours": ours, "e3nn voxel conv": e3nn_conv(ours)}
        models = {k: prepare(m, channels_last) for k, m in models.items()}
        x = torch.randn(args.batch, dim, *(args.conv_size,) * 3, device=DEVICE)
        if channels_last:
            x = x.to(memory_format=torch.channels_last_3d)
        results = measure(runnable(models, x, dtype, f"conv, {label}"), x, dtype, args.reps, args.rounds, back_to_back=True)
        sections.append(f"**Conv layer, {label}**: `{IRREPS}` -> same, kernel 5, batch {args.batch}, {args.conv_size}^3.\n\n"
                        + table(STREAM_HEADERS, rows_of(results, "plain Conv3d (cuDNN)")))
        if dtype == torch.bfloat16:
            conv = results
        print(sections[-1], "\n", flush=True)

    # the U-Net and TetrisNet in bf16 + channels_last_3d
    for kind in ("unet", "tetris"):
        if kind == "unet":
            ours = EquivariantUNet(3, 1, 2, (16, 32, 64), (2, 2))
            x = torch.randn(args.batch, 1, *(args.unet_size,) * 3)
            config = f"`EquivariantUNet(3, 1, 2, (16, 32, 64), (2, 2))`, batch {args.batch}, {args.unet_size}^3"
        else:
            ours = TetrisNet(kernel_group="SO3")
            x = torch.rand(8, 1, *(args.tetris_size,) * 3)
            config = f"`TetrisNet(kernel_group=\"SO3\")`, 8 volumes at {args.tetris_size}^3 (the protocol batch)"
        models = {"plain (same graph)": plain_counterpart(ours, x), "ours": ours, "e3nn convs": e3nn_counterpart(ours)}
        if kind == "unet":
            models["ours, checkpointing=True"] = EquivariantUNet(3, 1, 2, (16, 32, 64), (2, 2), checkpointing=True)
        models = {k: prepare(m, True) for k, m in models.items()}
        x = x.to(DEVICE).to(memory_format=torch.channels_last_3d)
        results = measure(runnable(models, x, torch.bfloat16, f"{kind}, bf16"), x, torch.bfloat16, args.reps, args.rounds)
        sections.append(f"**{kind}, bf16 autocast, channels_last_3d**: {config}.\n\n" + table(HEADERS, rows_of(results, "plain (same graph)")))
        if kind == "unet":
            unet = results
        print(sections[-1], "\n", flush=True)

    ratio = lambda results, ref, key: results["ours"][key] / results[ref][key]  # noqa: E731
    checks = [
        ("conv layer training <= 1.05x plain (bf16)", ratio(conv, "plain Conv3d (cuDNN)", "train"), TARGETS["conv train"]),
        ("conv layer inference <= 1.02x plain (bf16)", ratio(conv, "plain Conv3d (cuDNN)", "infer"), TARGETS["conv infer"]),
        (f"(not the target's protocol) conv layer training, {STREAM} steps back to back <= 1.05x plain (bf16)",
         ratio(conv, "plain Conv3d (cuDNN)", "stream"), TARGETS["conv train"]),
        ("U-Net training step <= 1.3x plain (bf16)", ratio(unet, "plain (same graph)", "train"), TARGETS["unet train"]),
        ("U-Net peak training memory <= 1.3x plain (bf16)", ratio(unet, "plain (same graph)", "memory"), TARGETS["unet memory"]),
        ("the same with checkpointing=True",
         unet["ours, checkpointing=True"]["memory"] / unet["plain (same graph)"]["memory"], TARGETS["unet memory"]),
    ]
    summary = table(["target", "measured", "met"], [[t, f"{v:.3f}x", "yes" if v <= limit else "**no**"] for t, v, limit in checks])
    body = "\n\n".join([
        "## GPU (CUDA)",
        f"Command: `python benchmarks/bench_gpu.py`  \nDevice: {name}, torch {torch.__version__}, cuDNN "
        f"{torch.backends.cudnn.version()}, TF32 for cuDNN convolutions: {torch.backends.cudnn.allow_tf32} (PyTorch's "
        f"default); medians of {args.reps} interleaved calls in each of {args.rounds} rounds.",
        summary, *sections,
        *(["Did not run: " + "; ".join(f"{k}: `{v}`" for k, v in FAILED.items()) + "."] if FAILED else []),
    ])
    print(summary)
    if args.out:
        args.out.write_text(body + "\n")
    if not args.no_doc:
        write_section(DOC, "bench_gpu", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
