"""How the O(3) Tetris net's chiral signal grows in training, and how SO(3) kernels drown it.

Trains ``TetrisNet(parity=True, first_kernel_size=5, input_scale=1.0)`` (the O(3) net as it was when this
was measured) with the protocol's loop (Adam lr 3e-3, the 8 canonical volumes, full
batch) and, side by side, the same net with SO(3) kernels: every convolution rebuilt with ``parity=False``
(which adds the parity-violating paths, such as a ``0e -> 0o`` radial filter), the O(3) paths' weights copied
and the new paths at zero, so both nets give the same logits at step 0. Every ``--every`` steps it prints the
pooled ``0o`` features of chiral_1 and chiral_2: their half-difference (the chiral part, mean over channels)
and their half-sum (the mirror-even part), and the training accuracy. Not a speed benchmark: not in ``run.py``.

    python benchmarks/tetris_chiral_growth.py --seed 0 --steps 100
"""

from __future__ import annotations

import argparse
import math

import torch

from steerable3d.data import TETRIS_CHIRAL_PAIR, tetris_volumes
from steerable3d.models import TetrisNet
from steerable3d.nn import SteerableConv3d


def with_so3_kernels(model: TetrisNet) -> TetrisNet:
    """``model`` with every convolution rebuilt on SO(3) kernels: O(3) path weights copied, the others zero."""
    for name, conv in list(model.features.named_children()):
        if not isinstance(conv, SteerableConv3d):
            continue
        so3 = SteerableConv3d(conv.irreps_in, conv.irreps_out, conv.kernel_size, padding=conv.padding, parity=False,
                              bias=conv.bias is not None, shell_width=conv.basis.shells[1].width / conv.basis.unit)
        old = {(i_out, i_in): (offset, shape) for i_out, i_in, offset, shape in conv._blocks}
        with torch.no_grad():
            so3.weight.zero_()
            for i_out, i_in, offset, shape in so3._blocks:
                if (i_out, i_in) not in old:
                    continue
                old_offset, old_shape = old[(i_out, i_in)]
                source = conv.weight[old_offset : old_offset + math.prod(old_shape)].view(old_shape)
                target = so3.weight[offset : offset + math.prod(shape)].view(shape)
                paths = so3.basis.pair_paths[(i_out, i_in)]
                for k, path in enumerate(conv.basis.pair_paths[(i_out, i_in)]):
                    target[:, :, paths.index(path)] = source[:, :, k]
            if conv.bias is not None:
                so3.bias.copy_(conv.bias)
        setattr(model.features, name, so3)
    return model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--scale", type=int, default=5)
    parser.add_argument("--pad", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    volumes, labels = tetris_volumes(args.scale, args.pad)
    a, b = TETRIS_CHIRAL_PAIR
    print("| kernels | step | loss | training accuracy | chiral part of pooled 0o | mirror-even part |")
    print("|---|---|---|---|---|---|")
    for kernels in ("O3", "SO3"):
        torch.manual_seed(args.seed)
        model = TetrisNet(parity=True, first_kernel_size=5, input_scale=1.0)
        if kernels == "SO3":
            model = with_so3_kernels(model)
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        captured = {}
        model.features.register_forward_hook(lambda module, inputs, output: captured.update(pooled=output.detach()))
        for step in range(args.steps):
            logits = model(volumes)
            loss = torch.nn.functional.cross_entropy(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % args.every == 0 or step == args.steps - 1:
                odd = captured["pooled"][:, model._odd]
                chiral, even = (odd[a] - odd[b]).abs().mean() / 2, (odd[a] + odd[b]).abs().mean() / 2
                correct = int((logits.argmax(1) == labels).sum())
                print(f"| {kernels} | {step} | {float(loss.detach()):.3f} | {correct}/8 | {chiral:.1e} | {even:.1e} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
