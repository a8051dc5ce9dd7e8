"""A real-MRI result: segmenting the MNI152 template, held out along the anterior-posterior axis.

Protocol (all at 2 mm, see :mod:`steerable3d.data.mni152`):

* training data: the posterior part of the brain (``y < TRAIN_Y`` reduced voxels); a pool of ``n`` random
  32^3 patches centred on brain voxels and lying wholly in it, no rotation augmentation;
* test data: a 48^3 cube in the anterior part, scored inside the central sphere of radius ``RADIUS``
  voxels (24 mm), which lies wholly in the held-out part (``y >= 64``) whatever the rotation;
* test conditions: the cube as is; 6 of the 24 grid rotations of the cube (every fourth; exact array
  rotations of image and labels); random rotations about the cube's centre, made at 1 mm from the T1 and the probability maps
  (cubic spline), then reduced and labelled exactly as the training data;
* models: :class:`~steerable3d.models.EquivariantUNet` (O(3), 16/32/64 channels, 17.2k parameters),
  MONAI's ``UNet`` of a similar size (6/12/24 channels, one residual unit, instance norm, 20.4k
  parameters), trained the same way (Adam, lr 3e-3, Dice + cross-entropy, batch 2, ``steps`` steps drawn
  from the pool), and a per-voxel intensity classifier (each of 64 intensity bins gets its most frequent
  training label);
* prediction: sliding windows of the training patch size (see :func:`network_predictor`);
* score: Dice of the foreground classes inside the sphere, averaged over the classes.

Input intensities are divided by the mean T1 of the training region's brain voxels (the background stays
0). Every model sees the same patches in the same order.

The public API: the geometry (:data:`CORNER`, :data:`SIZE`, :data:`RADIUS`, :data:`TRAIN_Y`),
:func:`make_split` and its :class:`Split` (the data), :func:`build_models` (the networks), :func:`run` (the
whole protocol) and its :class:`Result` records, :func:`format_tables`, :func:`save_results`,
:func:`load_results` and :func:`plot_learning_curves`. The steps of :func:`run` (``patch_pool``,
``train_model``, ``network_predictor``, ``intensity_predictor``, ``evaluate``, ``sphere_dice``) stay
importable. ``steerable3d mni152`` (:mod:`steerable3d.cli`) runs it from the command line.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from ..data.mni152 import TASKS, MNI152, load_mni152, make_labels
from ..inference import sliding_window
from ..metrics import dice
from ..models import EquivariantUNet
from ..symmetry import grid_symmetries, random_rotations, transform_field
from ._results import load_records, percent_mean_std, save_records
from ._training import stop_if_diverged

__all__ = [
    "CORNER", "SIZE", "RADIUS", "TRAIN_Y", "Split", "make_split", "build_models", "Result", "run", "format_tables",
    "save_results", "load_results", "plot_learning_curves",
]

CORNER = (40, 52, 19)  # the test cube's first reduced voxel; its centre is 2 CORNER + 47.5 at 1 mm
SIZE = 48  # test cube edge (reduced voxels)
RADIUS = 12  # scoring sphere radius (reduced voxels): y from 64 to 88
TRAIN_Y = 60  # training patches lie wholly in y < TRAIN_Y
PATCH = 32
SPACING = 2.0  # mm


@dataclass
class Split:
    """What :func:`make_split` gives for a task: the training region ``image [1, X, TRAIN_Y, Z]`` (float32,
    T1 divided by ``scale``) and ``labels [X, TRAIN_Y, Z]`` (int64 class indices, 0 the background), the
    patch corners ``brain [n, 3]`` (voxel indices of the 32^3 patches centred on brain voxels), the test
    cubes per condition (``image [1, S, S, S]``, ``labels [S, S, S]`` with ``S = SIZE``), the scoring
    ``sphere [S, S, S]`` (bool) and ``scale``, the mean T1 of the training brain. Voxels of 2 mm.

    >>> split = make_split("tissue", rotations=1)
    >>> split.image.shape, split.labels.shape, split.brain.shape[1]
    (torch.Size([1, 98, 60, 94]), torch.Size([98, 60, 94]), 3)
    >>> {condition: len(cubes) for condition, cubes in split.tests.items()}
    {'unrotated': 1, 'grid rotations': 6, 'arbitrary rotations': 1}
    >>> image, labels = split.tests["unrotated"][0]
    >>> image.shape, labels.shape, split.sphere.shape
    (torch.Size([1, 48, 48, 48]), torch.Size([48, 48, 48]), torch.Size([48, 48, 48]))
    """

    task: str
    image: torch.Tensor
    labels: torch.Tensor
    brain: torch.Tensor  # corners of the candidate patches (centred on brain voxels) [n, 3]
    tests: dict[str, list[tuple[torch.Tensor, torch.Tensor]]]  # condition -> [(image [1, S, S, S], labels [S, S, S])]
    sphere: torch.Tensor  # [S, S, S] bool
    scale: float


def _sphere() -> torch.Tensor:
    offsets = torch.arange(SIZE, dtype=torch.float64) - (SIZE - 1) / 2
    x, y, z = torch.meshgrid(offsets, offsets, offsets, indexing="ij")
    return (x**2 + y**2 + z**2) <= RADIUS**2


def make_split(task: str, rotations: int = 4, seed: int = 0, template: MNI152 | None = None, progress: Callable | None = None) -> Split:
    """Training data and test cubes for ``task`` (``"tissue"`` or ``"context"``): the posterior training
    region, the test cube unrotated, under 6 grid rotations and under ``rotations`` random rotations (seeded
    by ``seed``). ``template`` defaults to :func:`~steerable3d.data.mni152.load_mni152`'s.

    >>> split = make_split("context", rotations=1)
    >>> sorted(split.labels.unique().tolist())  # other, cortical grey matter, deep grey matter
    [0, 1, 2]
    >>> int(split.sphere.sum()), SIZE, RADIUS  # scoring voxels in the 24 mm sphere of the 48^3 cube
    (7208, 48, 12)
    >>> brain = split.image[0][split.labels > 0]
    >>> bool(abs(brain.mean() - 1) < 0.2)  # intensities in units of the training brain's mean T1
    True
    """
    template = template or load_mni152()
    reduced = template.reduced()
    train = (slice(None), slice(0, TRAIN_Y), slice(None))
    brain = (reduced.gm + reduced.wm) > 0.5
    scale = float(reduced.t1[train][brain[train]].mean())
    labels = make_labels(reduced.gm, reduced.wm, task, SPACING)
    image = torch.from_numpy(reduced.t1[train] / scale).float()[None]

    half = PATCH // 2
    centres = np.argwhere(brain[train])
    inside = np.all((centres >= half) & (centres <= np.array(image.shape[1:]) - half), axis=1)
    centre_1mm = 2 * np.asarray(CORNER) + SIZE - 0.5

    def cube(rotation: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        block = template.rotated_block(centre_1mm, rotation, SIZE)
        return torch.from_numpy(block.t1 / scale).float()[None], torch.from_numpy(make_labels(block.gm, block.wm, task, SPACING))

    unrotated = cube(np.eye(3))
    tests = {"unrotated": [unrotated]}
    tests["grid rotations"] = [
        (transform_field(unrotated[0][None], "0e", g.float())[0], transform_field(unrotated[1][None, None].double(), "0e", g)[0, 0].round().long())
        for g in grid_symmetries(parity=False)[::4]
    ]
    rotated = random_rotations(rotations, seed=seed).numpy()
    tests["arbitrary rotations"] = [cube(r) for r in (progress(rotated, desc="rotated copies", leave=False) if progress else rotated)]
    return Split(task, image, torch.from_numpy(labels[train]), torch.from_numpy(centres[inside] - half), tests, _sphere(), scale)


def build_models(classes: int = 3) -> dict[str, Callable[[], torch.nn.Module]]:
    """The two networks, by name (constructors, so each run starts from its own seed), for ``classes``
    classes including the background: maps ``[B, 1, X, Y, Z]`` to logits ``[B, classes, X, Y, Z]``.

    >>> {name: sum(p.numel() for p in build().parameters()) for name, build in build_models(3).items()}
    {'EquivariantUNet': 18948, 'MONAI UNet': 20403}
    """
    from monai.networks.nets import UNet

    return {
        # residual=True: an un-normalized path in every block, as MONAI's residual units, keeps the intensity
        "EquivariantUNet": lambda: EquivariantUNet(3, 1, classes, (16, 32, 64), (2, 2), parity=True, spacing=SPACING, residual=True),
        "MONAI UNet": lambda: UNet(3, 1, classes, (6, 12, 24), (2, 2), num_res_units=1, norm="instance"),
    }


def patch_pool(split: Split, n: int, seed: int) -> list[tuple[int, int, int]]:
    """``n`` patch corners drawn (with a fixed seed) among the brain-centred patches of the training region."""
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(split.brain), (n,), generator=generator)
    return [tuple(int(v) for v in split.brain[i]) for i in picks]


def train_model(model: torch.nn.Module, split: Split, pool: Sequence[tuple[int, int, int]], steps: int, *, batch_size: int = 2,
                lr: float = 3e-3, seed: int = 0, progress: Callable | None = None, description: str = "train") -> tuple[list[float], float]:
    """Adam + MONAI Dice/cross-entropy on patches drawn uniformly from ``pool``. Returns (losses, seconds). A
    loss that is not finite raises ``FloatingPointError`` before its step, so the model keeps the weights before it."""
    from monai.losses import DiceCELoss

    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    losses, start = [], time.perf_counter()
    model.train()
    bar = progress(range(steps), desc=description, leave=False) if progress else range(steps)
    for step in bar:
        picks = torch.randint(len(pool), (batch_size,), generator=generator).tolist()
        corners = [pool[i] for i in picks]
        x = torch.stack([split.image[:, a : a + PATCH, b : b + PATCH, c : c + PATCH] for a, b, c in corners])
        y = torch.stack([split.labels[a : a + PATCH, b : b + PATCH, c : c + PATCH] for a, b, c in corners])
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y[:, None])
        losses.append(float(loss.detach()))
        stop_if_diverged(losses[-1], description, step + 1, steps)
        loss.backward()
        optimizer.step()
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    model.eval()
    return losses, time.perf_counter() - start


def sphere_dice(prediction: torch.Tensor, labels: torch.Tensor, sphere: torch.Tensor, classes: int = 3) -> list[float]:
    """Dice of each foreground class over the voxels of ``sphere`` (label maps ``[S, S, S]``)."""
    return dice(prediction, labels, classes, mask=sphere)


@torch.no_grad()
def evaluate(predict: Callable[[torch.Tensor], torch.Tensor], split: Split) -> dict[str, list[float]]:
    """Mean foreground Dice in the sphere for every test cube, per condition; ``predict`` maps an image
    ``[1, S, S, S]`` to a label map ``[S, S, S]``."""
    return {
        name: [float(np.nanmean(sphere_dice(predict(image), labels, split.sphere))) for image, labels in cubes]
        for name, cubes in split.tests.items()
    }


def network_predictor(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """Label map of a trained network: sliding windows of the training patch size (32^3, overlap 0.5, so
    instance-norm statistics come from boxes as large as in training; corners 0 and 16 on the 48^3 cube,
    a mirror-symmetric patch grid), in float64: in float32 a rounding-level difference flips the argmax of
    the odd voxel whose two best logits tie to 1e-6, which would hide exactness."""
    model = model.double().eval()
    return lambda image: sliding_window(model, image[None].double(), PATCH, overlap=0.5, batch_size=8).argmax(1)[0]


def intensity_predictor(split: Split, bins: int = 64) -> Callable[[torch.Tensor], torch.Tensor]:
    """Per-voxel baseline: each intensity bin (over the training range) predicts its most frequent label."""
    values, labels = split.image[0].flatten(), split.labels.flatten()
    edges = torch.linspace(float(values.min()), float(values.max()), bins + 1)[1:-1]
    counts = torch.zeros(bins, int(labels.max()) + 1)
    counts.index_put_((torch.bucketize(values, edges), labels), torch.ones(len(values)), accumulate=True)
    table = counts.argmax(1)
    return lambda image: table[torch.bucketize(image[0].contiguous(), edges)]  # rotated test cubes are strided views


@dataclass
class Result:
    """One row of :func:`run`: a model trained on a pool of ``patches`` patches (0 for the per-voxel
    baseline, trained on all voxels), its ``parameters`` (count), ``train_seconds``, ``final_loss`` (Dice +
    cross-entropy of the last 20 steps; NaN for the baseline), ``dice``: per test condition, the mean
    foreground Dice in the sphere of every test cube (a fraction in [0, 1]), and the protocol's ``seed``
    (patch pool, initialization, batch order and random test rotations).

    >>> r = Result("tissue", "EquivariantUNet", 64, 17203, 120.0, 0.4,
    ...            {"unrotated": [0.9], "grid rotations": [0.9] * 6, "arbitrary rotations": [0.88, 0.86]})
    >>> r.model, min(r.dice["arbitrary rotations"])
    ('EquivariantUNet', 0.86)
    """

    task: str
    model: str
    patches: int
    parameters: int
    train_seconds: float
    final_loss: float
    dice: dict[str, list[float]] = field(default_factory=dict)
    seed: int = 0


def run(tasks: Sequence[str] = ("tissue", "context"), patches: Sequence[int] = (16, 64, 256), steps: int = 500, rotations: int = 4,
        seeds: Sequence[int] = (0,), progress: Callable | None = None, log: Callable[[str], None] = print,
        models: Callable[[int], dict[str, Callable[[], torch.nn.Module]]] | None = None) -> list[Result]:
    """The whole protocol, once per seed (each seed draws its own patch pools, initializations, batch order
    and random test rotations); returns one :class:`Result` per seed, task, model and pool size (and the
    baseline). ``models`` maps the number of classes to the networks' constructors (default :func:`build_models`, the
    protocol's; smaller ones make a quick run). An equivariant network scores the same Dice under the grid
    rotations as unrotated, as the per-voxel baseline does:

    >>> import numpy as np
    >>> from steerable3d.models import EquivariantUNet
    >>> def small(classes):
    ...     return {"small U-Net": lambda: EquivariantUNet(3, 1, classes, (12,), (), irreps=["4x0e + 1x1o"], parity=True,
    ...                                                    spacing=2.0, kernel_size=3, convolutions=1)}
    >>> results = run(tasks=("tissue",), patches=(2,), steps=2, rotations=1, log=lambda line: None, models=small)
    >>> [(r.model, r.patches) for r in results]
    [('per-voxel intensity', 0), ('small U-Net', 2)]
    >>> [np.allclose(r.dice["grid rotations"], r.dice["unrotated"][0], rtol=0, atol=1e-12) for r in results]
    [True, True]
    """
    template = load_mni152()
    results = []
    for task in tasks:
        for seed in seeds:
            start = time.perf_counter()
            split = make_split(task, rotations, seed, template, progress)
            log(f"{task}, seed {seed}: training region {tuple(split.image.shape[1:])}, {len(split.brain)} patch centres; "
                f"test cubes made in {time.perf_counter() - start:.0f} s")
            results.append(Result(task, "per-voxel intensity", 0, 0, 0.0, math.nan, evaluate(intensity_predictor(split), split), seed))
            for n in patches:
                pool = patch_pool(split, n, seed)
                for name, build in (models or build_models)(len(TASKS[task])).items():
                    torch.manual_seed(seed)
                    model = build()
                    losses, seconds = train_model(model, split, pool, steps, seed=seed, progress=progress,
                                                  description=f"{task} {name} n={n} seed {seed}")
                    result = Result(task, name, n, sum(p.numel() for p in model.parameters()), seconds, float(np.mean(losses[-20:])),
                                    evaluate(network_predictor(model), split), seed)
                    results.append(result)
                    log(f"{task} {name} n={n} seed {seed}: loss {result.final_loss:.3f}, {seconds:.0f} s, Dice " +
                        ", ".join(f"{k} {100 * np.mean(v):.2f}" for k, v in result.dice.items()))
    return results


def _by_row(results: Sequence[Result]) -> dict[tuple[str, str, int], list[Result]]:
    """The results of each (task, model, pool size), one per seed, in the order they came."""
    rows: dict[tuple[str, str, int], list[Result]] = {}
    for r in results:
        rows.setdefault((r.task, r.model, r.patches), []).append(r)
    return rows


def _seed_means(runs: Sequence[Result], condition: str) -> list[float]:
    """Per seed, the mean Dice (a fraction) over the test cubes of ``condition``."""
    return [float(np.mean(r.dice[condition])) for r in runs]


def format_tables(results: Sequence[Result]) -> str:
    """Markdown: per task, one row per model and pool size; Dice in %: the mean +- standard deviation over
    seeds of each seed's mean over the test cubes, and the worst cube of any seed.

    >>> results = [Result("tissue", "per-voxel intensity", 0, 0, 0.0, math.nan,
    ...                   {"unrotated": [0.8], "grid rotations": [0.8] * 6, "arbitrary rotations": [0.79, 0.77]}),
    ...            Result("tissue", "EquivariantUNet", 64, 17203, 120.0, 0.4,
    ...                   {"unrotated": [0.9], "grid rotations": [0.9] * 6, "arbitrary rotations": [0.88, 0.86]}),
    ...            Result("tissue", "EquivariantUNet", 64, 17203, 124.0, 0.4,
    ...                   {"unrotated": [0.92], "grid rotations": [0.92] * 6, "arbitrary rotations": [0.9, 0.9]}, seed=1)]
    >>> print(format_tables(results))
    **tissue** (grey matter, white matter; mean foreground Dice in the sphere, %)
    <BLANKLINE>
    | model | params | training patches | seeds | train s | unrotated | grid rotations: mean / worst | arbitrary rotations: mean / worst |
    |---|---|---|---|---|---|---|---|
    | per-voxel intensity | 0 | all voxels | 1 | 0 | 80.00 +- 0.00 | 80.00 +- 0.00 / 80.00 | 78.00 +- 0.00 / 77.00 |
    | EquivariantUNet | 17,203 | 64 | 2 | 122 | 91.00 +- 1.41 | 91.00 +- 1.41 / 90.00 | 88.50 +- 2.12 / 86.00 |
    <BLANKLINE>
    """

    out = []
    rows = _by_row(results)
    for task in dict.fromkeys(r.task for r in results):
        out += [f"**{task}** ({', '.join(TASKS[task][1:])}; mean foreground Dice in the sphere, %)", "",
                "| model | params | training patches | seeds | train s | unrotated | grid rotations: mean / worst | "
                "arbitrary rotations: mean / worst |",
                "|---|---|---|---|---|---|---|---|"]
        for (row_task, model, patches), runs in rows.items():
            if row_task != task:
                continue
            worst = {k: 100 * min(min(r.dice[k]) for r in runs) for k in ("grid rotations", "arbitrary rotations")}
            out.append(
                f"| {model} | {runs[0].parameters:,} | {patches or 'all voxels'} | {len(runs)} | "
                f"{np.mean([r.train_seconds for r in runs]):.0f} | {percent_mean_std(_seed_means(runs, 'unrotated'))} | "
                f"{percent_mean_std(_seed_means(runs, 'grid rotations'))} / {worst['grid rotations']:.2f} | "
                f"{percent_mean_std(_seed_means(runs, 'arbitrary rotations'))} / {worst['arbitrary rotations']:.2f} |"
            )
        out.append("")
    return "\n".join(out)


def save_results(results: Sequence[Result], path) -> None:
    """Every score as JSON (a list of :class:`Result` fields), written atomically; :func:`load_results` reads it back.

    >>> import tempfile
    >>> from pathlib import Path
    >>> results = [Result("context", "EquivariantUNet", 16, 17203, 100.0, 0.5,
    ...                   {"unrotated": [0.7], "grid rotations": [0.7] * 6, "arbitrary rotations": [0.65]})]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     save_results(results, Path(folder) / "mni152.json")
    ...     load_results(Path(folder) / "mni152.json") == results
    True
    """
    save_records(results, path)


def load_results(path) -> list[Result]:
    """The :class:`Result` records :func:`save_results` wrote to ``path`` (JSON; the baseline's NaN
    ``final_loss`` comes back as NaN).

    >>> import tempfile
    >>> from pathlib import Path
    >>> results = [Result("tissue", "per-voxel intensity", 0, 0, 0.0, math.nan,
    ...                   {"unrotated": [0.8], "grid rotations": [0.8] * 6, "arbitrary rotations": [0.79, 0.77]}),
    ...            Result("tissue", "EquivariantUNet", 64, 17203, 120.0, 0.4,
    ...                   {"unrotated": [0.9], "grid rotations": [0.9] * 6, "arbitrary rotations": [0.88, 0.86]}),
    ...            Result("tissue", "EquivariantUNet", 256, 17203, 121.0, 0.3,
    ...                   {"unrotated": [0.92], "grid rotations": [0.92] * 6, "arbitrary rotations": [0.9, 0.9]})]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     save_results(results, Path(folder) / "mni152.json")
    ...     loaded = load_results(Path(folder) / "mni152.json")
    >>> format_tables(loaded) == format_tables(results), math.isnan(loaded[0].final_loss)
    (True, True)
    """
    return load_records(Result, path)


def plot_learning_curves(results: Sequence[Result], path) -> None:
    """Dice against the number of training patches, per task: one colour per model, solid unrotated,
    dashed under arbitrary rotations (mean over seeds; a band from the lowest to the highest seed where there
    are several); the per-voxel baseline as horizontal lines (matplotlib); a PNG (or any format matplotlib
    infers from ``path``).

    >>> import tempfile
    >>> from pathlib import Path
    >>> results = [Result("tissue", "per-voxel intensity", 0, 0, 0.0, math.nan,
    ...                   {"unrotated": [0.8], "grid rotations": [0.8] * 6, "arbitrary rotations": [0.79, 0.77]}),
    ...            Result("tissue", "EquivariantUNet", 64, 17203, 120.0, 0.4,
    ...                   {"unrotated": [0.9], "grid rotations": [0.9] * 6, "arbitrary rotations": [0.88, 0.86]}),
    ...            Result("tissue", "EquivariantUNet", 256, 17203, 121.0, 0.3,
    ...                   {"unrotated": [0.92], "grid rotations": [0.92] * 6, "arbitrary rotations": [0.9, 0.9]})]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     plot_learning_curves(results, Path(folder) / "curves.png")
    ...     (Path(folder) / "curves.png").stat().st_size > 10_000
    True
    """
    from ..plot import save_figure, subplots

    tasks = list(dict.fromkeys(r.task for r in results))
    figure, axes = subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4))
    all_rows = _by_row(results)
    for ax, task in zip(axes[0], tasks):
        rows = {key: runs for key, runs in all_rows.items() if key[0] == task}
        for i, name in enumerate(dict.fromkeys(model for _, model, _ in rows)):
            group = sorted(((patches, runs) for (_, model, patches), runs in rows.items() if model == name), key=lambda item: item[0])
            for condition, style in (("unrotated", "-"), ("arbitrary rotations", "--")):
                values = [100 * np.array(_seed_means(runs, condition)) for _, runs in group]
                label = f"{name}, {condition}"
                if group[0][0] == 0:
                    ax.axhline(values[0].mean(), color=f"C{i}", linestyle=style, alpha=0.6, label=label)
                    continue
                pools = [patches for patches, _ in group]
                ax.plot(pools, [v.mean() for v in values], style, marker="o", color=f"C{i}", label=label)
                if max(len(v) for v in values) > 1:  # the spread over seeds
                    ax.fill_between(pools, [v.min() for v in values], [v.max() for v in values], color=f"C{i}", alpha=0.12)
        ax.set(xscale="log", xlabel="training patches (32^3)", ylabel="mean foreground Dice in the sphere (%)",
               title=f"MNI152, {task}: {', '.join(TASKS[task][1:])}")
        ticks = sorted({patches for _, _, patches in rows if patches})
        ax.set_xticks(ticks, [str(p) for p in ticks])  # the pool sizes themselves, not powers of ten
        ax.minorticks_off()
        ax.legend(fontsize=7)
    save_figure(figure, path)
