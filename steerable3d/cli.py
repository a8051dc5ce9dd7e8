"""Command line: ``steerable3d --version``, ``check``, ``tetris``, ``segment train|predict``, ``mni152``,
``density``, ``cosmology``.

The public API: :func:`main` (the ``steerable3d`` entry point, also ``python -m steerable3d``) and
:func:`build_parser` (its options). Every subcommand prints its tables; ``steerable3d <command> --help``
lists the options. The protocols themselves live in :mod:`steerable3d.workflows`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from . import __version__, distributed

__all__ = ["main", "build_parser"]

GRID_TOLERANCE = {"float64": 1e-10, "float32": 1e-5}


def _blurred_noise(irreps, size: int, seed: int) -> torch.Tensor:
    """White noise blurred by a Gaussian of 2 voxels, ``[1, irreps.dim, size, size, size]`` float64."""
    import numpy as np
    from scipy import ndimage

    noise = np.random.default_rng(seed).standard_normal((1, irreps.dim, size, size, size))
    return torch.from_numpy(ndimage.gaussian_filter(noise, sigma=(0, 0, 2, 2, 2)))


def check(args: argparse.Namespace) -> int:
    """Build one layer, print its equivariance error per output irrep; non-zero exit if the grid fails."""
    from .nn import SteerableConv3d
    from .testing import equivariance_error

    torch.manual_seed(args.seed)
    conv = SteerableConv3d(args.irreps_in, args.irreps_out, args.kernel_size, stride=args.stride, parity=not args.so3)
    print(f"steerable3d {__version__}: {conv}")
    n = args.size
    failed = False
    rows = []
    for dtype in ("float64", "float32"):
        layer = conv.to(getattr(torch, dtype))
        x = torch.randn(2, conv.irreps_in.dim, n, n, n, dtype=getattr(torch, dtype))
        errors = equivariance_error(layer, x, conv.irreps_in, conv.irreps_out, parity=not args.so3)
        group = "24 rotations" if args.so3 else "48 rotations and reflections"
        rows.append((f"grid, {group}, {dtype}", errors, GRID_TOLERANCE[dtype]))
        failed |= any(e > GRID_TOLERANCE[dtype] for e in errors.values())
    layer = conv.double()
    x = _blurred_noise(conv.irreps_in, args.rotation_size, args.seed)
    errors = equivariance_error(
        layer, x, conv.irreps_in, conv.irreps_out, group="continuous", rotations=args.rotations,
        parity=not args.so3, seed=args.seed, crop=args.rotation_size // 4,
    )
    rows.append((f"continuous, {args.rotations} random rotations (rel. L2)", errors, None))
    names = list(rows[0][1])
    print(f"\n{'equivariance error':<48}" + "".join(f"{name:>12}" for name in names) + "   limit")
    for label, errors, tolerance in rows:
        limit = f"{tolerance:.0e}" if tolerance else "approx."
        print(f"{label:<48}" + "".join(f"{errors[name]:>12.2e}" for name in names) + f"   {limit}")
    print("\ngrid symmetries:", "FAILED" if failed else "exact to float rounding")
    if args.plot:
        from .plot import equivariance_bars, save_figure

        save_figure(equivariance_bars({label: errors for label, errors, _ in rows}, tolerance=GRID_TOLERANCE["float32"],
                                      title=f"SteerableConv3d {conv.irreps_in} -> {conv.irreps_out}"), args.plot)
        print(f"figure: {args.plot}")
    return 1 if failed else 0


ORIENTATION_WORDS = {"random": "each shape under one random rotation per seed", "canonical": "axis-aligned"}


def tetris(args: argparse.Namespace) -> int:
    """Train on one orientation of the Tetris volumes, test on random rotations, print the table."""
    from .workflows.tetris import format_table, plot_runs, run_protocol

    if args.seeds < 1 or args.steps < 1 or args.test_sets < 1:
        raise ValueError(f"--seeds, --steps and --test-sets: expected positive counts, got {args.seeds}, {args.steps}, {args.test_sets}")
    groups = {"so3": ("SO3",), "o3": ("O3",), "both": ("SO3", "O3")}[args.group]
    if args.threads:
        torch.set_num_threads(args.threads)
    n = 4 * args.scale + 2 * args.pad
    print(
        f"3D Tetris: train on the 8 {n}^3 volumes, {ORIENTATION_WORDS[args.train_orientation]} "
        f"({args.steps} steps, Adam lr 3e-3, full batch), "
        f"test on {args.test_sets} sets of 8 randomly rotated shapes; seeds {args.seed} .. {args.seed + args.seeds - 1}"
    )
    start = time.perf_counter()
    runs = run_protocol(
        seeds=range(args.seed, args.seed + args.seeds), steps=args.steps, test_sets=args.test_sets,
        scale=args.scale, pad=args.pad, groups=groups, plain_cnn=args.plain_cnn,
        train_orientation=args.train_orientation, device=args.device,
    )
    print()
    print(format_table(runs))
    print(f"\nwall time {time.perf_counter() - start:.0f} s ({torch.get_num_threads()} threads, {args.device})")
    if args.plot:
        plot_runs(runs, args.plot)
        print(f"figure saved to {args.plot}")
    return 0


def segment(args: argparse.Namespace) -> int:
    """``segment train`` / ``segment predict`` on folders of NIfTI volumes."""
    from .workflows import segment as seg
    from .workflows.tetris import progress_bar

    if args.threads:
        torch.set_num_threads(args.threads)
    progress = progress_bar()
    if args.action == "predict":
        written = seg.predict(args.checkpoint, args.images, args.out, overlap=args.overlap, device=args.device,
                              probabilities=args.probabilities, progress=progress)
        print(f"{len(written)} file(s) written to {args.out}")
        return 0
    pairs = seg.find_cases(args.images, args.labels)
    cases = [seg.load_case(image, label, args.classes or None) for image, label in pairs]
    val_cases = []
    if args.val_images:
        val_cases = [seg.load_case(i, l, args.classes or None) for i, l in seg.find_cases(args.val_images, args.val_labels)]
    spacings = {tuple(round(s, 3) for s in c.volume.spacing) for c in cases}
    if len(spacings) > 1:
        raise ValueError(f"--images: expected one voxel size for all training images, got {sorted(spacings)}; resample them first")
    classes = args.classes or int(max(int(c.label.max()) for c in cases)) + 1
    channels = {c.image.shape[0] for c in cases}
    if len(channels) > 1:
        raise ValueError(f"--images: expected the same number of channels in every image, got {sorted(channels)}")
    config = seg.SegmentConfig(
        classes=classes, channels=tuple(args.channels), strides=tuple(args.strides), parity=not args.so3,
        kernel_size=args.kernel_size, patch=args.patch, batch_size=args.batch_size, steps=args.steps, lr=args.lr,
        validate_every=args.validate_every, amp=args.amp, seed=args.seed, spacing=spacings.pop(),
        in_channels=channels.pop(), norm=None if args.norm == "none" else args.norm, residual=args.residual,
    )
    ctx = distributed.setup(args.device)  # one process, or the group torchrun started
    if ctx.is_main:
        model = config.build_model()
        print(f"EquivariantUNet: {sum(p.numel() for p in model.parameters()):,} parameters, levels "
              f"{', '.join(map(str, model.level_irreps))}; {len(cases)} training and {len(val_cases)} validation volumes, "
              f"{classes} classes, voxel size {config.spacing} mm"
              + (f"; {ctx.world_size} processes x batch {config.batch_size}" if ctx.enabled else ""))
    try:
        _, history = seg.train(config, cases, args.out, val_cases=val_cases, resume=args.resume, device=args.device, progress=progress)
    finally:
        distributed.teardown()
    if not ctx.is_main:
        return 0
    if history.validation:
        print(f"best validation Dice {max(d for _, d in history.validation):.4f}; checkpoints in {args.out}")
    else:
        print(f"final loss {history.losses[-1]:.4f}; checkpoint {args.out}/last.pt")
    return 0


def mni152(args: argparse.Namespace) -> int:
    """The real-MRI protocol of :mod:`steerable3d.workflows.mni152`: print the tables, optionally save them."""
    from .workflows import mni152 as protocol
    from .workflows.tetris import progress_bar

    if args.steps < 1 or args.rotations < 1 or args.seeds < 1 or not args.patches or min(args.patches) < 1:
        raise ValueError(f"--steps, --rotations, --seeds and --patches: expected positive counts, got {args.steps}, "
                         f"{args.rotations}, {args.seeds}, {args.patches}")
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    results = protocol.run(tasks=args.task, patches=args.patches, steps=args.steps, rotations=args.rotations,
                           seeds=range(args.seed, args.seed + args.seeds), progress=progress_bar())
    _report(protocol.format_tables(results), start, args.json, lambda path: protocol.save_results(results, path),
            args.plot, lambda path: protocol.plot_learning_curves(results, path))
    return 0


def _report(table: str, start: float, json_path, save, plot_path, plot) -> None:
    """Print a protocol's tables and wall time; save its scores and figure where asked."""
    print()
    print(table)
    print(f"wall time {time.perf_counter() - start:.0f} s ({torch.get_num_threads()} threads)")
    if json_path:
        save(json_path)
        print(f"results saved to {json_path}")
    if plot_path:
        plot(plot_path)
        print(f"figure saved to {plot_path}")


def _default_cache(name: str) -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "steerable3d"
    root.mkdir(parents=True, exist_ok=True)
    return root / name


def density(args: argparse.Namespace) -> int:
    """The electron-density protocol of :mod:`steerable3d.workflows.density`: print the table, save it."""
    from .workflows import density as protocol
    from .workflows.tetris import progress_bar

    if args.steps < 1 or not args.molecules or min(args.molecules) < 1 or args.copies < 0:
        raise ValueError(f"--steps, --molecules and --copies: expected positive counts (--copies 0 or more), got {args.steps}, "
                         f"{args.molecules} and {args.copies}")
    if args.threads:
        torch.set_num_threads(args.threads)
    cache = None if args.cache == "none" else (
        _default_cache(f"g2-densities-{args.grid}-{args.spacing:g}-{args.test}-{args.seed}-{args.pool or 'all'}"
                       + (f"-copies{args.copies}" if args.copies else "") + ".pt") if args.cache == "auto" else Path(args.cache))
    start = time.perf_counter()
    trained: dict = {}
    results = protocol.run(sizes=args.molecules, steps=args.steps, size=args.grid, spacing=args.spacing, test=args.test,
                           seed=args.seed, cache=cache, progress=progress_bar(), trained=trained, pool=args.pool, copies=args.copies,
                           checkpoints=args.checkpoints, train_seed=args.train_seed, average=args.average,
                           conserve_charge=args.conserve_charge)
    _report(protocol.format_table(results), start, args.json, lambda path: protocol.save_results(results, path), args.plot,
            lambda path: protocol.plot_results(results, path, example=(trained["sets"]["rotated"], trained["EquivariantUNet"])))
    return 0


def cosmology(args: argparse.Namespace) -> int:
    """The cosmology protocol of :mod:`steerable3d.workflows.cosmology`: print the tables, save them."""
    from .workflows import cosmology as protocol
    from .workflows.tetris import progress_bar

    if args.steps < 1 or args.test < 1 or (args.train_boxes is not None and args.train_boxes < 1):
        raise ValueError(f"--steps, --test and --train-boxes: expected positive counts, got {args.steps}, {args.test} and {args.train_boxes}")
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    trained: dict = {}
    results = protocol.run(tasks=args.task, steps=args.steps, size=args.size, box_size=args.box, test=args.test, seed=args.seed,
                           progress=progress_bar(), trained=trained, train_boxes=args.train_boxes, paint=args.paint,
                           checkpoints=args.checkpoints, average=args.average)
    example = next(value for (task, name), value in trained.items() if task == args.task[0] and name.startswith("EquivariantUNet"))
    _report(protocol.format_table(results, args.size, args.box), start, args.json, lambda path: protocol.save_results(results, path),
            args.plot, lambda path: protocol.plot_results(results, path, args.size, args.box, example=example))
    return 0


def _protocol_options(parser: argparse.ArgumentParser, plot_help: str) -> None:
    """The options every protocol command shares: seed, threads, JSON scores, figure."""
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", metavar="FILE", help="save every score to this JSON file")
    parser.add_argument("--plot", metavar="PNG", help=plot_help)


def _checkpoint_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoints", metavar="DIR",
                        help="keep a checkpoint of every training run in this folder (every 100 steps, written atomically); "
                        "rerunning the same command resumes an interrupted run exactly, and only evaluates a finished one")


def _average_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--average", type=float, metavar="DECAY", default=None,
                        help="end every network with a moving average of its weights and batch-norm statistics over the "
                        "second half of its steps, with this decay per step (e.g. 0.999; default: the last step's weights)")


def build_parser() -> argparse.ArgumentParser:
    """The ``steerable3d`` argument parser: one subcommand per protocol, each with its defaults.

    >>> parser = build_parser()
    >>> args = parser.parse_args(["cosmology", "--task", "displacement", "--steps", "100"])
    >>> args.command, args.task, args.steps, args.size, args.box  # the box side in Mpc/h
    ('cosmology', ['displacement'], 100, 24, 96.0)
    >>> args = parser.parse_args(["segment", "train", "--images", "images", "--labels", "labels", "--out", "run"])
    >>> args.action, args.channels, args.patch, args.steps
    ('train', [16, 32, 64], 32, 500)
    """
    parser = argparse.ArgumentParser(prog="steerable3d", description=__doc__)
    parser.add_argument("--version", action="version", version=f"steerable3d {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="build a default layer and print its equivariance error per irrep")
    p.add_argument("--irreps-in", default="8x0e + 4x1o + 2x2e")
    p.add_argument("--irreps-out", default="8x0e + 4x1o + 2x2e")
    p.add_argument("--kernel-size", type=int, default=5)
    p.add_argument("--stride", type=int, default=1)
    p.add_argument("--size", type=int, default=12, help="cubic volume for the grid-group check")
    p.add_argument("--rotation-size", type=int, default=33, help="cubic volume for continuous rotations")
    p.add_argument("--rotations", type=int, default=3)
    p.add_argument("--so3", action="store_true", help="rotations only (parity=False)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="PNG", help="save the errors per irrep as bars to this file (needs matplotlib)")
    p.set_defaults(func=check)

    p = sub.add_parser(
        "tetris",
        help="3D Tetris: train on one orientation, test on random rotations (steerable net vs plain CNN)",
        description="Train on the 8 Tetris volumes in one orientation, test on sets of randomly rotated shapes, and print "
        "mean +- std accuracy over seeds for the steerable net and a plain CNN. The full protocol of the paper: "
        "--seeds 5 --test-sets 100 --group both.",
    )
    p.add_argument("--seeds", type=int, default=2, help="number of seeds (default 2)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    p.add_argument("--test-sets", type=int, default=20, help="sets of 8 rotated shapes (default 20; the protocol: 100)")
    p.add_argument("--group", choices=("so3", "o3", "both"), default="so3", help="steerable net: logits invariant to "
                   "rotations (so3, default: TetrisNet()), also equivariant to reflections (o3: TetrisNet(parity=True), the "
                   "chiral pair's logits swap), or both")
    p.add_argument("--plain-cnn", action=argparse.BooleanOptionalAction, default=True, help="also train the plain CNN")
    p.add_argument("--train-orientation", choices=("canonical", "random"), default="canonical", help="training volumes: "
                   "axis-aligned (default) or each shape under one random rotation per seed (as in the paper's script)")
    p.add_argument("--scale", type=int, default=5, help="voxels per cube edge (default 5: 36^3 volumes)")
    p.add_argument("--pad", type=int, default=8, help="zero voxels on each side (default 8)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--plot", metavar="PNG", help="save loss curves and accuracies to this file (needs matplotlib)")
    p.set_defaults(func=tetris)

    p = sub.add_parser("segment", help="train or apply an equivariant U-Net on folders of NIfTI volumes")
    actions = p.add_subparsers(dest="action", required=True)
    t = actions.add_parser(
        "train", help="train on images and label maps (same file names)",
        description="Train an EquivariantUNet on random patches (Dice + cross-entropy, Adam). Checkpoints last.pt "
        "and best.pt are written atomically to --out; --resume continues from last.pt exactly. Under "
        "`torchrun --nproc_per_node=N -m steerable3d segment train ...` the processes train one model with "
        "DistributedDataParallel (gloo on CPU, nccl on CUDA), each drawing --batch-size patches.",
    )
    t.add_argument("--images", required=True, help="folder of .nii/.nii.gz images")
    t.add_argument("--labels", required=True, help="folder of label maps with the images' file names")
    t.add_argument("--val-images", help="folder of validation images (Dice every --validate-every steps)")
    t.add_argument("--val-labels", help="folder of validation label maps")
    t.add_argument("--out", required=True, help="folder for checkpoints")
    t.add_argument("--classes", type=int, default=0, help="number of classes incl. background (default: from the labels)")
    t.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64], help="width per level (default 16 32 64)")
    t.add_argument("--strides", type=int, nargs="*", default=[2, 2], help="downsampling per level (default 2 2)")
    t.add_argument("--kernel-size", type=int, default=5)
    t.add_argument("--so3", action="store_true", help="rotations only (parity=False); default O(3)")
    t.add_argument("--norm", choices=("instance", "batch", "none"), default="instance",
                   help="normalization after each convolution (default instance)")
    t.add_argument("--residual", action="store_true",
                   help="add an un-normalized 1x1x1 path to every block, as MONAI's residual units (keeps the intensity)")
    t.add_argument("--patch", type=int, default=32, help="patch edge in voxels (default 32)")
    t.add_argument("--batch-size", type=int, default=2)
    t.add_argument("--steps", type=int, default=500)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--validate-every", type=int, default=100)
    t.add_argument("--amp", action="store_true", help="mixed precision (bf16 on CPU, fp16 on CUDA)")
    t.add_argument("--resume", action="store_true", help="continue from --out/last.pt")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="cpu")
    t.add_argument("--threads", type=int, default=0)
    t.set_defaults(func=segment)
    q = actions.add_parser("predict", help="segment every image of a folder with a trained checkpoint")
    q.add_argument("--checkpoint", required=True)
    q.add_argument("--images", required=True)
    q.add_argument("--out", required=True, help="folder for <name>.nii.gz label maps (the images' grids)")
    q.add_argument("--overlap", type=float, default=None, help="sliding-window overlap (default: the training one)")
    q.add_argument("--probabilities", action="store_true", help="also write <name>_prob.nii.gz")
    q.add_argument("--device", default="cpu")
    q.add_argument("--threads", type=int, default=0)
    q.set_defaults(func=segment)

    p = sub.add_parser(
        "mni152", help="real MRI: segment the MNI152 template held out anterior-posterior, under rotations",
        description="Train the EquivariantUNet, a MONAI UNet of similar size and a per-voxel intensity classifier on "
        "the posterior brain of nilearn's MNI152 template (2 mm), and score Dice in a held-out anterior sphere: "
        "unrotated, under the 24 grid rotations and under random rotations made at 1 mm (needs nilearn and monai).",
    )
    p.add_argument("--task", nargs="+", choices=("tissue", "context"), default=["tissue", "context"],
                   help="tissue: grey/white matter; context: cortical vs deep grey matter (default both)")
    p.add_argument("--patches", type=int, nargs="+", default=[16, 64, 256], help="training pool sizes (learning curve)")
    p.add_argument("--steps", type=int, default=500, help="training steps of batch 2 (default 500)")
    p.add_argument("--rotations", type=int, default=4, help="random rotations of the test cube (default 4)")
    p.add_argument("--seeds", type=int, default=1, help="repetitions of the protocol, seeds --seed, --seed + 1, ... (default 1)")
    _protocol_options(p, "save the learning curves to this file (needs matplotlib)")
    p.set_defaults(func=mni152)

    p = sub.add_parser(
        "density", help="electron densities: correct the superposition of atomic densities toward DFT (needs pyscf, ase)",
        description="Make PBE/6-31G densities of ASE's G2 molecules with PySCF (cached), train the EquivariantUNet and a "
        "MONAI UNet of similar size to correct the superposition of atomic densities, and print the held-out NMAE, "
        "unrotated and on rotated molecules, against the number of training molecules (needs pyscf, ase, monai).",
    )
    p.add_argument("--molecules", type=int, nargs="+", default=[4, 16, 57], help="training-set sizes (learning curve; the pool has 73 - --test)")
    p.add_argument("--steps", type=int, default=2000, help="training steps of batch 2 (default 2000)")
    p.add_argument("--grid", type=int, default=24, help="voxels per axis (a multiple of 4; default 24)")
    p.add_argument("--spacing", type=float, default=0.7, help="voxel size in Bohr (default 0.7)")
    p.add_argument("--test", type=int, default=16, help="held-out molecules (default 16)")
    p.add_argument("--pool", type=int, default=None, help="keep only this many training molecules (quick runs; default all)")
    p.add_argument("--copies", type=int, default=0,
                   help="train also on this many DFT densities per training molecule, each of the molecule turned by a random "
                   "rotation and moved by a random sub-voxel shift (default 0)")
    p.add_argument("--cache", default="auto", help="file for the DFT densities ('auto': ~/.cache/steerable3d/..., 'none': recompute)")
    p.add_argument("--train-seed", type=int, default=None,
                   help="seed of the networks' initial weights and batches only (default --seed, which also draws the split, "
                   "the rotations and the copies): several training seeds on the same data measure the spread between runs")
    p.add_argument("--conserve-charge", action="store_true",
                   help="scale every prediction of both networks, in training too, so that it holds the electrons of its input "
                   "(the superposition of atoms) instead of the count the network would give")
    _average_option(p)
    _checkpoint_option(p)
    _protocol_options(p, "save the learning curves and a density slice (needs matplotlib)")
    p.set_defaults(func=density)

    p = sub.add_parser(
        "cosmology", help="periodic boxes: Zel'dovich displacement and evolved density from the linear density",
        description="Train the EquivariantUNet (circular padding) and the plain CNN of the same graph on Gaussian random "
        "fields, to predict the Zel'dovich displacement (a vector field) or the cloud-in-cell density of the moved "
        "particles, and print the transfer function and cross-correlation per k shell.",
    )
    p.add_argument("--task", nargs="+", choices=("displacement", "density"), default=["displacement", "density"])
    p.add_argument("--steps", type=int, default=600, help="training steps of batch 2 (default 600)")
    p.add_argument("--size", type=int, default=24, help="voxels per axis (a multiple of 4; default 24)")
    p.add_argument("--box", type=float, default=96.0, help="box side in Mpc/h (default 96)")
    p.add_argument("--test", type=int, default=8, help="test fields (default 8)")
    p.add_argument("--train-boxes", type=int, default=None,
                   help="train on a fixed set of this many boxes, as with simulations (default: fresh fields every step)")
    p.add_argument("--paint", action="store_true",
                   help="density task: both models predict a displacement (in voxels) and paint it with a cloud-in-cell layer, "
                   "trained on the density only")
    _average_option(p)
    _checkpoint_option(p)
    _protocol_options(p, "save T(k), r(k) and field slices (needs matplotlib)")
    p.set_defaults(func=cosmology)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command ``argv`` (default ``sys.argv[1:]``); returns the exit status: 0, 1 when ``check``
    finds the grid symmetries broken, 2 for bad options (the message goes to stderr).

    >>> main(["check", "--irreps-in", "0e + 1o", "--irreps-out", "0e + 1o", "--kernel-size", "3", "--size", "5",
    ...       "--rotation-size", "9", "--rotations", "1"])
    steerable3d ...: SteerableConv3d(1x0e+1x1o -> 1x0e+1x1o, kernel_size=3, ...)
    <BLANKLINE>
    equivariance error                                        0e          1o   limit
    grid, 48 rotations and reflections, float64         ...   1e-10
    grid, 48 rotations and reflections, float32         ...   1e-05
    continuous, 1 random rotations (rel. L2)            ...   approx.
    <BLANKLINE>
    grid symmetries: exact to float rounding
    0
    >>> main(["tetris", "--seeds", "0"])  # a bad count: a message on stderr, status 2
    2
    """
    args = build_parser().parse_args(argv)
    try:
        multi_process = (args.command, getattr(args, "action", None)) == ("segment", "train")
        if not multi_process and distributed.launched():
            raise ValueError(
                "runs in one process (a full-batch demo or a fixed protocol); under torchrun every process would "
                "repeat the same run. `segment train` is the command that trains across processes"
            )
        return args.func(args)
    except (ValueError, FileNotFoundError, ImportError) as error:  # ImportError: an optional extra is missing
        print(f"steerable3d {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
