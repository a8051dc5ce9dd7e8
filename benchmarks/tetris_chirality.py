"""Where the Tetris nets' rotation errors come from: the chiral logit gap under shifts and rotations.

All remaining errors of the Tetris protocol are the chiral pair confused. This script trains a
``TetrisNet`` configuration with the protocol's plain loop and prints, per seed, the chiral gap
``logit[chiral_1] - logit[chiral_2]`` of the chiral_1 volume (it should stay positive; chiral_2's gap
should stay negative):

* canonical;
* after moving the shape by whole voxels of the working grid (``2^downsample`` input voxels): exact with
  ``zero_background=True``, moved by the border's interaction with the shape otherwise;
* after moving it by a fraction of a working voxel (1 .. ``2^downsample - 1`` input voxels): the
  sampling-phase (aliasing) error of the coarse grid;
* under the protocol's random rotations (about the volume centre, which also moves the shape);

and the rotated-test accuracy. Not a speed benchmark: it is not part of ``run.py``.

    python benchmarks/tetris_chirality.py --config base zero_background o3 o3_zero_background --seeds 0 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from steerable3d.data import TETRIS_CHIRAL_PAIR, tetris_volumes
from steerable3d.models import TetrisNet
from steerable3d.workflows.tetris import evaluate, make_test_sets, train_full_batch

from _common import add_output_options, cpu_model, doc_target, fill_defaults, table, write_section  # benchmarks/ is the script directory

# the O(3) nets measured before the 7-tap first convolution and the input scale became defaults
O3_BEFORE = {"first_kernel_size": 5, "input_scale": 1.0}
CONFIGS = {  # explicit kernels, grids, backgrounds and shells: the defaults differ between the kernel groups
    "base": {"kernel_group": "SO3", "downsample": 2, "zero_background": False},  # the previous SO(3) default
    "zero_background": {"kernel_group": "SO3", "downsample": 2, "zero_background": True},
    "fine_zero_background": {"kernel_group": "SO3", "downsample": 1, "zero_background": True},
    "o3": {"parity": True, "downsample": 2, "zero_background": False, "shell_width": 0.6, **O3_BEFORE},
    "o3_zero_background": {"parity": True, "downsample": 2, "zero_background": True, "shell_width": 0.6, **O3_BEFORE},
    "o3_fine_zero_background": {"parity": True, "downsample": 1, "zero_background": True, "shell_width": 0.6, **O3_BEFORE},
    "o3_default": {"parity": True, "downsample": 1},  # fine grid, zero background, smooth shells
    "so3_default": {"downsample": 1},  # the O(3) layers, pseudoscalars read out for the chiral pair only
    "dilated_zero_background": {"kernel_group": "SO3", "downsample": 1, "dilation": 2, "zero_background": True},
    "o3_dilated_zero_background": {"parity": True, "downsample": 1, "dilation": 2, "zero_background": True, "shell_width": 0.6, **O3_BEFORE},
}


def chiral_gaps(model, volumes) -> torch.Tensor:
    """``logit[a] - logit[b]`` of the chiral pair ``(a, b)`` for every volume ``[B]``."""
    a, b = TETRIS_CHIRAL_PAIR
    with torch.no_grad():
        logits = model(volumes)
    return logits[:, a] - logits[:, b]


def diagnose(config: str, seed: int, args, test_sets) -> list[str]:
    volumes, labels = tetris_volumes(args.scale, args.pad)
    chiral = volumes[list(TETRIS_CHIRAL_PAIR)]
    torch.manual_seed(seed)
    model = TetrisNet(**CONFIGS[config])
    start = time.perf_counter()
    train_full_batch(model, volumes, labels, args.steps)
    seconds = time.perf_counter() - start
    stride = 2 ** CONFIGS[config]["downsample"]  # input voxels per working voxel
    canonical = chiral_gaps(model, chiral)
    whole, partial = [], []
    for axis in (2, 3, 4):
        whole.append(chiral_gaps(model, torch.roll(chiral, stride, axis)) - canonical)
        partial += [chiral_gaps(model, torch.roll(chiral, s, axis)) - canonical for s in range(1, stride)]
    rotated = torch.stack([chiral_gaps(model, v[list(TETRIS_CHIRAL_PAIR)]) for v, _ in test_sets])  # [sets, 2]
    accuracy = statistics.fmean(evaluate(model, test_sets))
    worst = lambda changes: float(torch.stack(changes).abs().max()) if changes else 0.0  # noqa: E731
    return [
        config, str(seed), f"{seconds:.0f}", f"{canonical[0]:+.3f} / {canonical[1]:+.3f}", f"{worst(whole):.1e}",
        f"{worst(partial):.3f}", f"{rotated[:, 0].mean():+.3f} / {rotated[:, 1].mean():+.3f}",
        f"{rotated.std(0).mean():.3f}", f"{100 * accuracy:.2f}",
    ]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", nargs="+", choices=sorted(CONFIGS), default=["base", "zero_background", "o3", "o3_zero_background"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--steps", type=int, help="training steps (default 300; --quick 3)")
    p.add_argument("--test-sets", type=int, help="rotated test sets (default 20; --quick 1)")
    p.add_argument("--scale", type=int, help="voxels per cube (default 5; --quick 2)")
    p.add_argument("--pad", type=int, help="padding voxels (default 8; --quick 4)")
    add_output_options(p, "tiny volumes, 3 steps, 1 test set")
    args = p.parse_args(argv)
    fill_defaults(args, [("steps", 300, 3), ("test_sets", 20, 1), ("scale", 5, 2), ("pad", 8, 4)])
    torch.set_num_threads(args.threads)
    test_sets = make_test_sets(args.test_sets, scale=args.scale, pad=args.pad)
    headers = ["config", "seed", "train s", "gap canonical (c1 / c2)", "max change, whole-voxel shifts",
               "max change, sub-voxel shifts", "gap mean under rotations (c1 / c2)", "gap std under rotations",
               "rotated accuracy (%)"]
    rows = []
    for config in args.config:
        for seed in args.seeds:
            rows.append(diagnose(config, seed, args, test_sets))
            print(" | ".join(rows[-1]), flush=True)
    n = 4 * args.scale + 2 * args.pad
    body = (
        "## Tetris: where the chiral errors come from\n\n"
        f"Command: `python benchmarks/tetris_chirality.py --config {' '.join(args.config)} --seeds {' '.join(map(str, args.seeds))}`  \n"
        f"Machine: {cpu_model()}, {args.threads} threads. {n}^3 volumes, {args.steps} steps, {args.test_sets} rotated sets. "
        "Gap: `logit[chiral_1] - logit[chiral_2]` of the chiral_1 (c1) and chiral_2 (c2) volumes; c1's should stay "
        "positive and c2's negative. Shifts move the two volumes along each axis.\n\n" + table(headers, rows)
    )
    print("\n" + body)
    target = doc_target(args)
    if target is not None:
        write_section(target, "tetris_chirality", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
