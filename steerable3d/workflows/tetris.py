"""The 3D Tetris protocol: train on one orientation, test on random continuous rotations.

Protocol (3D Steerable CNNs, Weiler et al. 2018): the eight shapes (:func:`~steerable3d.data.tetris_volumes`),
each in one orientation, are the training set, one full batch: by default the axis-aligned ("canonical")
volumes, or each shape under one random rotation drawn once per seed (:func:`training_set`), as in the
paper's own script. The model is trained with Adam (lr 3e-3) and cross-entropy for a
fixed number of steps. It is then tested on ``test_sets`` sets of the
eight shapes, each shape under its own Haar-random rotation about the volume centre, resampled by a cubic
spline with no extra smoothing. O(3) models are also tested under random improper rotations (rotation
times inversion), where the two chiral shapes swap labels. Every model sees the same test sets.

Everything here is plain PyTorch around the models: the training loop is the one a user would write.

The public API: :func:`run_protocol` (the whole protocol) and its :class:`TetrisRun` records,
:func:`format_table` and :func:`plot_runs`, and its steps: :func:`training_set`, :func:`train_full_batch`, :func:`make_test_sets`,
:func:`evaluate` and :func:`grid_check`. ``steerable3d tetris`` (:mod:`steerable3d.cli`) runs it from the
command line.
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch

from ..data.tetris import TETRIS_CHIRAL_PAIR, tetris_volumes
from ..models.tetris import PlainTetrisCNN, TetrisNet
from ..symmetry import grid_symmetries, random_rotations, transform_field
from ._results import percent_mean_std
from ._training import stop_if_diverged

__all__ = ["TetrisRun", "train_full_batch", "training_set", "make_test_sets", "evaluate", "grid_check", "run_protocol", "format_table", "plot_runs"]


TRAIN_ROTATION_SEED = 5000  # training_set(s) draws its rotations with seed TRAIN_ROTATION_SEED + s


def _no_progress(iterable: Iterable, **_: object) -> Iterable:
    return iterable


def progress_bar() -> Callable:
    """``tqdm.auto.tqdm`` when installed (``pip install steerable3d[cli]``), else a silent pass-through."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _no_progress
    return tqdm


@dataclass
class TetrisRun:
    """One trained model and its scores. Accuracies are fractions in [0, 1]; ``losses`` the cross-entropy
    of every training step, ``train_seconds`` the training time.

    >>> run = TetrisRun("plain CNN", seed=0, parameters=3500, losses=[2.08, 0.5], steps_to_perfect=None,
    ...                 train_seconds=1.0, train_accuracy=0.875, rotation_accuracy=[0.25, 0.375])
    >>> statistics.fmean(run.rotation_accuracy), math.isnan(run.grid_accuracy)  # no grid check for a plain CNN
    (0.3125, True)
    """

    model: str
    seed: int
    parameters: int
    losses: list[float]
    steps_to_perfect: int | None  # first step whose training batch was classified 100% right
    train_seconds: float
    train_accuracy: float = math.nan
    rotation_accuracy: list[float] = field(default_factory=list)  # per test set
    reflection_accuracy: list[float] = field(default_factory=list)  # per test set, O(3) models only
    grid_accuracy: float = math.nan  # over the 24 (or 48) grid symmetries
    grid_deviation: float = math.nan  # worst max|logits(g x) - P_g logits(x)| / max|logits(x)|


def train_full_batch(
    model: torch.nn.Module,
    volumes: torch.Tensor,
    labels: torch.Tensor,
    steps: int = 300,
    lr: float = 3e-3,
    progress: Callable = _no_progress,
    description: str = "train",
) -> tuple[list[float], int | None]:
    """Adam + cross-entropy on one full batch (``volumes [B, 1, N, N, N]``, ``labels [B]``) for ``steps``
    steps. Leaves ``model`` in eval mode. Returns (losses, first step at 100%, or None). A loss that is not
    finite raises ``FloatingPointError`` before its step, so the model keeps the weights before it.

    >>> from steerable3d.data import tetris_volumes
    >>> from steerable3d.models import TetrisNet
    >>> volumes, labels = tetris_volumes(scale=2, pad=2)  # the 8 shapes, 12^3 voxels
    >>> _ = torch.manual_seed(0)
    >>> losses, perfect = train_full_batch(TetrisNet(), volumes, labels, steps=10)
    >>> len(losses), losses[-1] < losses[0]
    (10, True)
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses, perfect = [], None
    bar = progress(range(steps), desc=description, leave=False)
    for step in bar:
        optimizer.zero_grad()
        logits = model(volumes)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        losses.append(float(loss.detach()))
        stop_if_diverged(losses[-1], description, step + 1, steps)
        loss.backward()
        optimizer.step()
        if perfect is None and bool((logits.argmax(1) == labels).all()):
            perfect = step
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    model.eval()
    return losses, perfect


def _mirror_permutation() -> torch.Tensor:
    """The label permutation a reflection induces: the chiral pair swaps, the rest stay. It is an
    involution, so it maps labels (``perm[labels]``) and logit columns (``logits[:, perm]``) alike."""
    perm = torch.arange(8)
    a, b = TETRIS_CHIRAL_PAIR
    perm[a], perm[b] = b, a
    return perm


def make_test_sets(
    n_sets: int, *, seed: int = 1234, scale: int = 5, pad: int = 8, improper: bool = False, progress: Callable = _no_progress
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n_sets`` sets ``(volumes [8, 1, N, N, N], labels [8])``, each shape under its own random rotation
    (``random_rotations(8 n_sets, seed)``); with ``improper`` every rotation is times ``-I`` and the
    chiral labels are swapped.

    >>> sets = make_test_sets(2, scale=2, pad=2)
    >>> len(sets), sets[0][0].shape, sets[0][1].tolist()
    (2, torch.Size([8, 1, 12, 12, 12]), [0, 1, 2, 3, 4, 5, 6, 7])
    >>> improper = make_test_sets(1, scale=2, pad=2, improper=True)[0][1].tolist()
    >>> [i for i, label in enumerate(improper) if label != i], TETRIS_CHIRAL_PAIR  # the chiral pair swaps
    ([0, 1], (0, 1))
    """
    rotations = random_rotations(8 * n_sets, seed=seed)
    if improper:
        rotations = -rotations
    sets = []
    for i in progress(range(n_sets), desc="improper test sets" if improper else "rotated test sets", leave=False):
        volumes, labels = tetris_volumes(scale, pad, rotations[8 * i : 8 * i + 8])
        sets.append((volumes, _mirror_permutation()[labels] if improper else labels))
    return sets


def training_set(seed: int, *, scale: int = 5, pad: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """The 8 volumes ``[8, 1, N, N, N]`` and labels ``[8]`` of seed ``seed``'s training set: each shape under
    one random rotation (``random_rotations(8, TRAIN_ROTATION_SEED + seed)``), resampled like the test
    volumes. These rotations are independent of the test sets' (:func:`make_test_sets`, seed 1234).

    >>> volumes, labels = training_set(0, scale=2, pad=2)
    >>> volumes.shape, labels.tolist()
    (torch.Size([8, 1, 12, 12, 12]), [0, 1, 2, 3, 4, 5, 6, 7])
    """
    return tetris_volumes(scale, pad, random_rotations(8, seed=TRAIN_ROTATION_SEED + seed))


@torch.no_grad()
def evaluate(model: torch.nn.Module, sets: Sequence[tuple[torch.Tensor, torch.Tensor]], device="cpu") -> list[float]:
    """Accuracy of ``model`` (eval mode) on every set ``(volumes, labels)``, fractions in [0, 1].

    >>> from steerable3d.models import PlainTetrisCNN
    >>> _ = torch.manual_seed(0)
    >>> accuracies = evaluate(PlainTetrisCNN(), make_test_sets(2, scale=2, pad=2))
    >>> len(accuracies), all(0 <= a <= 1 for a in accuracies)
    (2, True)
    """
    model.eval()
    return [float((model(v.to(device)).argmax(1).cpu() == y).float().mean()) for v, y in sets]


@torch.no_grad()
def grid_check(model: torch.nn.Module, volumes: torch.Tensor, labels: torch.Tensor, parity: bool) -> tuple[float, float]:
    """Accuracy over the grid symmetries (48 with ``parity``, else 24) and the worst relative deviation of
    the logits from the expected ones (equal, or with the chiral pair swapped under reflections): float
    rounding for a steerable net.

    >>> from steerable3d.data import tetris_volumes
    >>> from steerable3d.models import TetrisNet
    >>> volumes, labels = tetris_volumes(scale=2, pad=2)
    >>> _ = torch.manual_seed(0)
    >>> accuracy, deviation = grid_check(TetrisNet(), volumes, labels, parity=False)
    >>> 0 <= accuracy <= 1, deviation < 1e-5
    (True, True)
    """
    model.eval()
    reference = model(volumes)
    correct, total, worst = 0, 0, 0.0
    perm = _mirror_permutation().to(labels.device)
    for g in grid_symmetries(parity):
        logits = model(transform_field(volumes, "0e", g.to(volumes.dtype)))
        expected, target = reference, labels
        if torch.det(g) < 0:
            expected, target = reference[:, perm], perm[labels]
        worst = max(worst, float((logits - expected).abs().max() / expected.abs().max()))
        correct += int((logits.argmax(1) == target).sum())
        total += len(target)
    return correct / total, worst


def run_protocol(
    *,
    seeds: Sequence[int] = (0, 1),
    steps: int = 300,
    test_sets: int = 20,
    scale: int = 5,
    pad: int = 8,
    groups: Sequence[str] = ("SO3",),
    plain_cnn: bool = True,
    train_orientation: str = "canonical",
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> list[TetrisRun]:
    """Train and test every model (``"SO3"``, ``"O3"`` steerable nets; the plain CNN) for every seed:
    ``steps`` steps on the 8 volumes (``4 scale + 2 pad`` voxels a side) in one orientation, then test on
    ``test_sets`` sets of 8 rotated shapes. Returns one :class:`TetrisRun` per model and seed.

    ``train_orientation``: ``"canonical"`` (default) trains on the axis-aligned volumes; ``"random"`` (as in
    the paper's own script) trains seed ``s`` on :func:`training_set` ``(s)``, each shape under one random
    rotation, resampled like the test volumes. Every model of a seed trains on the same volumes. Here a
    small, short run:

    >>> runs = run_protocol(seeds=(0,), steps=3, test_sets=1, scale=2, pad=2, plain_cnn=False, log=lambda line: None)
    >>> [(run.model, run.seed, len(run.losses), len(run.rotation_accuracy)) for run in runs]
    [('steerable SO3', 0, 3, 1)]
    >>> runs[0].grid_deviation < 1e-5
    True
    """
    if train_orientation not in ("random", "canonical"):
        raise ValueError(f"train_orientation: expected 'random' or 'canonical', got {train_orientation!r}")
    progress = progress_bar()
    rotated = make_test_sets(test_sets, scale=scale, pad=pad, progress=progress)
    improper = make_test_sets(test_sets, scale=scale, pad=pad, improper=True, progress=progress) if "O3" in groups else []
    training = {  # per seed, shared by every model of that seed
        seed: training_set(seed, scale=scale, pad=pad) if train_orientation == "random" else tetris_volumes(scale, pad)
        for seed in seeds
    }
    builders: dict[str, Callable[[], torch.nn.Module]] = {}
    for group in groups:
        builders[f"steerable {group}"] = functools.partial(TetrisNet, parity=group == "O3")
    if plain_cnn:
        builders["plain CNN"] = PlainTetrisCNN
    runs = []
    for name, build in builders.items():
        for seed in seeds:
            volumes, labels = (t.to(device) for t in training[seed])
            torch.manual_seed(seed)
            model = build().to(device)
            start = time.perf_counter()
            losses, perfect = train_full_batch(model, volumes, labels, steps, progress=progress, description=f"{name} seed {seed}")
            run = TetrisRun(name, seed, sum(p.numel() for p in model.parameters()), losses, perfect, time.perf_counter() - start)
            run.train_accuracy = evaluate(model, [(volumes, labels.cpu())], device)[0]
            run.rotation_accuracy = evaluate(model, rotated, device)
            if isinstance(model, TetrisNet):
                if model.parity:
                    run.reflection_accuracy = evaluate(model, improper, device)
                run.grid_accuracy, run.grid_deviation = grid_check(model, volumes, labels, model.parity)
            log(
                f"{name:>14} seed {seed}: loss {losses[-1]:.3f}, 100% train at step {perfect}, "
                f"rotations {100 * statistics.fmean(run.rotation_accuracy):.2f}%"
                + (f", rotations+reflections {100 * statistics.fmean(run.reflection_accuracy):.2f}%" if run.reflection_accuracy else "")
                + f" ({run.train_seconds:.0f} s)"
            )
            runs.append(run)
    return runs


def format_table(runs: Sequence[TetrisRun]) -> str:
    """A Markdown table: one row per model, accuracies as mean +- std over seeds (in %).

    >>> runs = [TetrisRun("steerable SO3", seed, 3000, [2.0, 0.1], 40 + seed, 2.0, 1.0, [1.0, 0.875], [], 1.0, 2e-7)
    ...         for seed in (0, 1)]
    >>> runs += [TetrisRun("plain CNN", seed, 3500, [2.0, 0.05], 30, 1.0, 1.0, [0.25 + 0.125 * seed, 0.25]) for seed in (0, 1)]
    >>> print(format_table(runs))
    | model | params | seeds | steps to 100% train | train s/seed | grid symmetries | max logit dev. (grid) | rotations: mean acc. (%) | lowest seed (%) | rotation+reflection (%) |
    |---|---|---|---|---|---|---|---|---|---|
    | steerable SO3 | 3,000 | 2 | 41 (worst seed) | 2 | 100% | 2.0e-07 | 93.75 +- 0.00 | 93.75 | - |
    | plain CNN | 3,500 | 2 | 30 (worst seed) | 1 | - | - | 28.12 +- 4.42 | 25.00 | - |
    """
    header = (
        "| model | params | seeds | steps to 100% train | train s/seed | grid symmetries | max logit dev. (grid) "
        "| rotations: mean acc. (%) | lowest seed (%) | rotation+reflection (%) |"
    )
    rows = [header, "|" + "---|" * (header.count("|") - 1)]
    for name in dict.fromkeys(r.model for r in runs):
        group = [r for r in runs if r.model == name]
        per_seed = [statistics.fmean(r.rotation_accuracy) for r in group]
        reflections = [statistics.fmean(r.reflection_accuracy) for r in group if r.reflection_accuracy]
        perfect = [r.steps_to_perfect for r in group]
        grid = [r.grid_accuracy for r in group if not math.isnan(r.grid_accuracy)]
        rows.append(
            f"| {name} | {group[0].parameters:,} | {len(group)} "
            f"| {'never' if None in perfect else max(perfect)} (worst seed) "
            f"| {statistics.fmean(r.train_seconds for r in group):.0f} "
            f"| {f'{100 * min(grid):.0f}%' if grid else '-'} "
            f"| {f'{max(r.grid_deviation for r in group):.1e}' if grid else '-'} "
            f"| {percent_mean_std(per_seed)} | {100 * min(per_seed):.2f} | {percent_mean_std(reflections)} |"
        )
    return "\n".join(rows)


def plot_runs(runs: Sequence[TetrisRun], path: str) -> None:
    """Training loss per step and rotated-test accuracy per seed, one colour per model (matplotlib); a PNG
    (or any format matplotlib infers from ``path``).

    >>> import tempfile
    >>> from pathlib import Path
    >>> runs = [TetrisRun("steerable SO3", seed, 3000, [2.0, 0.1], 40 + seed, 2.0, 1.0, [1.0, 0.875], [], 1.0, 2e-7)
    ...         for seed in (0, 1)]
    >>> runs += [TetrisRun("plain CNN", seed, 3500, [2.0, 0.05], 30, 1.0, 1.0, [0.25 + 0.125 * seed, 0.25]) for seed in (0, 1)]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     plot_runs(runs, Path(folder) / "tetris.png")
    ...     (Path(folder) / "tetris.png").stat().st_size > 10_000
    True
    """
    from ..plot import save_figure, subplots, training_curves

    names = list(dict.fromkeys(r.model for r in runs))
    figure, ((left, right),) = subplots(1, 2, figsize=(11, 4))
    training_curves({name: [r.losses for r in runs if r.model == name] for name in names}, ax=left,
                    ylabel="cross-entropy (training volumes)", title="training (line: mean over seeds; band: min-max)")
    for i, name in enumerate(names):
        accs = [100 * statistics.fmean(r.rotation_accuracy) for r in runs if r.model == name]
        right.bar(i, statistics.fmean(accs), color=f"C{i}", alpha=0.4)
        right.scatter([i] * len(accs), accs, color=f"C{i}", zorder=3)
    right.axhline(12.5, color="grey", linestyle=":", label="chance")
    right.set(xticks=range(len(names)), xticklabels=names, ylim=(0, 101), ylabel="accuracy under random rotations (%)",
              title="test: random continuous rotations (dots: seeds)")
    right.legend(loc="lower right")
    save_figure(figure, path)
