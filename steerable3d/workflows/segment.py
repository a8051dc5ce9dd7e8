"""Segmentation of NIfTI volumes with :class:`~steerable3d.models.EquivariantUNet`: train and predict.

Data: a folder of images and a folder of label maps with the same file names (``case1.nii.gz`` in both).
Images are read in RAS orientation (exact flips and permutations), each channel standardized over its
non-zero voxels, and label maps hold class indices ``0 .. classes - 1`` (0 is the background).

Training draws random patches (``patch`` voxels a side, half of them centred on a foreground voxel), runs
Adam on MONAI's Dice + cross-entropy loss and, every ``validate_every`` steps, predicts the validation
volumes whole by :func:`~steerable3d.inference.sliding_window` and scores them with MONAI's Dice metric
(foreground classes, averaged). Checkpoints (``last.pt`` and ``best.pt``) are written atomically and hold
everything needed to resume exactly: model, optimizer, step, the patch sampler's random state, history.

Kernels live in physical units: the model is built for the training images' voxel size and
:func:`predict` sets the model's spacing to each image's own, so a model trained at 1 mm runs on a 0.8 mm
scan with the same weights.

The public API: :class:`SegmentConfig`, :func:`train` and :func:`predict`, and the pieces they are made of:
:func:`find_cases`, :func:`load_case` and its :class:`Case`, :func:`standardize`, :class:`PatchSampler`,
:func:`dice_scores`. ``steerable3d segment train|predict`` (:mod:`steerable3d.cli`) runs them from the
command line.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .. import distributed
from ..checkpoint import load_checkpoint, save_checkpoint
from ..inference import pad_to, sliding_window
from ..io import Volume, from_ras, load_nifti, save_nifti
from ..models import EquivariantUNet
from ._training import stop_if_diverged

__all__ = ["SegmentConfig", "Case", "write_phantom_cases", "find_cases", "load_case", "standardize", "PatchSampler", "train", "predict",
           "dice_scores"]

NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass
class SegmentConfig:
    """Everything that defines a training run (stored in the checkpoint): the network (``classes``
    including the background, ``channels`` per level, ``strides``, ``parity``, ``kernel_size`` taps,
    ``spacing`` the training images' voxel size in mm, ``in_channels``, ``norm``), the patches (``patch``
    voxels a side, ``batch_size``, ``foreground_fraction``), the optimizer (``steps``, ``lr``), validation
    (every ``validate_every`` steps, sliding windows with ``overlap``), ``amp`` and ``seed``.

    >>> config = SegmentConfig(classes=3, channels=(12,), strides=(), patch=8, steps=4, spacing=(1.5, 1.5, 1.5))
    >>> model = config.build_model()
    >>> model.irreps_in, model.irreps_out, model.spacing
    (1x0e, 3x0e, (1.5, 1.5, 1.5))
    >>> model(torch.randn(2, 1, 8, 8, 8)).shape  # logits [B, classes, X, Y, Z]
    torch.Size([2, 3, 8, 8, 8])
    """

    classes: int = 2
    channels: Sequence[int] = (16, 32, 64)
    strides: Sequence[int] = (2, 2)
    parity: bool = True
    kernel_size: int = 5
    patch: int = 32
    batch_size: int = 2
    steps: int = 500
    lr: float = 3e-3
    validate_every: int = 100
    foreground_fraction: float = 0.5
    overlap: float = 0.5
    amp: bool = False
    seed: int = 0
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    in_channels: int = 1
    norm: str | None = "instance"
    residual: bool = False

    def build_model(self) -> EquivariantUNet:
        return EquivariantUNet(
            3, self.in_channels, self.classes, list(self.channels), list(self.strides),
            parity=self.parity, spacing=self.spacing, kernel_size=self.kernel_size, norm=self.norm,
            residual=self.residual,
        )


@dataclass
class Case:
    """One image (standardized, RAS) and optionally its label map: ``image`` ``[C, X, Y, Z]`` float32,
    ``label`` ``[X, Y, Z]`` int64, ``volume`` the RAS :class:`~steerable3d.io.Volume` it came from.
    :func:`load_case` reads one from files; one made in memory:

    >>> from steerable3d.io import Volume
    >>> volume = Volume(100 + torch.rand(1, 8, 8, 8), np.diag([1.5, 1.5, 1.5, 1.0]))
    >>> case = Case("toy", standardize(volume.data), volume, (volume.data[0] > 100.5).long())
    >>> case.image.shape, case.label.shape, case.volume.spacing
    (torch.Size([1, 8, 8, 8]), torch.Size([8, 8, 8]), (1.5, 1.5, 1.5))
    """

    name: str
    image: torch.Tensor
    volume: Volume
    label: torch.Tensor | None = None


def _stem(path: Path) -> str:
    name = path.name
    for suffix in sorted(NIFTI_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def write_phantom_cases(root: str | Path, n: int = 2, size: int = 12, seed: int = 0) -> list[tuple[Path, Path]]:
    """Write ``n`` synthetic cases to try the pipeline on: ``root/images/case{i}.nii.gz`` (float32 intensity
    about 100, a ball of radius 3 voxels 50 brighter, Gaussian noise of 10) and ``root/labels/case{i}.nii.gz``
    (the ball as label 1), ``size^3`` voxels of 1.5 mm in LPS orientation (so that loading reorients them).
    Returns the ``(image, label)`` paths.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     paths = write_phantom_cases(folder, n=3)
    ...     [(image.name, label.parent.name) for image, label in paths][0], load_nifti(paths[0][1]).spacing
    (('case0.nii.gz', 'labels'), (1.5, 1.5, 1.5))
    """
    import nibabel as nib

    root = Path(root)
    rng = np.random.default_rng(seed)
    affine = np.diag([-1.5, -1.5, 1.5, 1.0])  # LPS, 1.5 mm
    grid = np.stack(np.meshgrid(*[np.arange(size)] * 3, indexing="ij"), -1)
    for folder in ("images", "labels"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        ball = (np.linalg.norm(grid - rng.uniform(4, size - 5, 3), axis=-1) < 3).astype(np.uint8)
        image = (100 + 50 * ball + 10 * rng.standard_normal(ball.shape)).astype(np.float32)
        paths.append((root / "images" / f"case{i}.nii.gz", root / "labels" / f"case{i}.nii.gz"))
        nib.save(nib.Nifti1Image(image, affine), paths[-1][0])
        nib.save(nib.Nifti1Image(ball, affine), paths[-1][1])
    return paths


def find_cases(images: str | Path, labels: str | Path | None = None) -> list[tuple[Path, Path | None]]:
    """``(image, label)`` paths matched by file name (``.nii`` or ``.nii.gz``; the label may use the other
    suffix). With ``labels``, every image needs a label map.

    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = write_phantom_cases(Path(folder))
    ...     [(image.name, label.name) for image, label in find_cases(Path(folder) / "images", Path(folder) / "labels")]
    [('case0.nii.gz', 'case0.nii.gz'), ('case1.nii.gz', 'case1.nii.gz')]
    """
    images = Path(images)
    if not images.is_dir():
        raise FileNotFoundError(f"images: {images} is not a directory")
    found = sorted(p for p in images.iterdir() if p.name.endswith(NIFTI_SUFFIXES))
    if not found:
        raise ValueError(f"images: no .nii or .nii.gz files in {images}")
    if labels is None:
        return [(p, None) for p in found]
    labels = Path(labels)
    if not labels.is_dir():
        raise FileNotFoundError(f"labels: {labels} is not a directory")
    by_stem = {_stem(p): p for p in labels.iterdir() if p.name.endswith(NIFTI_SUFFIXES)}
    missing = [p.name for p in found if _stem(p) not in by_stem]
    if missing:
        raise ValueError(f"labels: no label map in {labels} for {', '.join(missing)} (expected the same file names)")
    return [(p, by_stem[_stem(p)]) for p in found]


def standardize(image: torch.Tensor) -> torch.Tensor:
    """Each channel of ``[C, X, Y, Z]`` to zero mean and unit variance over its non-zero voxels (the
    background of a skull-stripped scan stays 0); a constant channel becomes 0.

    >>> image = torch.zeros(2, 4, 4, 4)
    >>> image[0, 1:3, 1:3, 1:3] = torch.arange(1.0, 9.0).view(2, 2, 2)  # a "brain" in a zero background
    >>> image[1] = 7.0  # a constant channel
    >>> out = standardize(image)
    >>> inside = image[0] != 0
    >>> round(float(out[0][inside].mean()), 6), round(float(out[0][inside].std()), 6), bool((out[0][~inside] == 0).all())
    (0.0, 1.0, True)
    >>> bool((out[1] == 0).all())
    True
    """
    out = torch.zeros_like(image)
    for c, channel in enumerate(image):
        mask = channel != 0
        values = channel[mask] if bool(mask.any()) else channel.flatten()
        std = values.std() if values.numel() > 1 else torch.zeros(())
        if float(std) > 0:
            out[c] = torch.where(mask, (channel - values.mean()) / std, torch.zeros(()))
    return out


def load_case(image_path: Path, label_path: Path | None = None, classes: int | None = None) -> Case:
    """Read one image (RAS, standardized) and its label map; the two must share their grid. With
    ``classes``, label values must be below it.

    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = write_phantom_cases(Path(folder))
    ...     case = load_case(Path(folder) / "images" / "case0.nii.gz", Path(folder) / "labels" / "case0.nii.gz", classes=2)
    >>> case.name, case.image.shape, case.label.shape, case.volume.spacing
    ('case0', torch.Size([1, 12, 12, 12]), torch.Size([12, 12, 12]), (1.5, 1.5, 1.5))
    >>> case.volume.orientation, sorted(case.label.unique().tolist())  # LPS on disk, RAS in memory
    (('R', 'A', 'S'), [0, 1])
    """
    volume = load_nifti(image_path, ras=True)
    label = None
    if label_path is not None:
        label_volume = load_nifti(label_path, ras=True, dtype=torch.long)
        if label_volume.shape != volume.shape or not np.allclose(label_volume.affine, volume.affine, atol=1e-3):
            raise ValueError(
                f"{label_path}: the label map's grid ({label_volume.shape}, affine {label_volume.affine.round(3).tolist()}) "
                f"differs from its image's ({volume.shape}, affine {volume.affine.round(3).tolist()})"
            )
        if label_volume.data.shape[0] != 1:
            raise ValueError(f"{label_path}: expected a single-channel label map, got {label_volume.data.shape[0]} channels")
        label = label_volume.data[0]
        low, high = int(label.min()), int(label.max())
        if low < 0 or (classes is not None and high >= classes):
            limit = f"0 .. {classes - 1}" if classes is not None else "non-negative"
            raise ValueError(f"{label_path}: expected class indices {limit}, got values {low} .. {high}")
    return Case(_stem(Path(image_path)), standardize(volume.data), volume, label)


class PatchSampler:
    """Random training patches ``[B, C, P, P, P]`` and labels ``[B, P, P, P]`` from a list of cases.

    A fraction ``foreground_fraction`` of the patches is centred on a random foreground voxel, the rest
    anywhere; volumes smaller than the patch are zero-padded (label 0). Its random state is a
    ``torch.Generator`` whose state goes into checkpoints, so a resumed run draws the same patches.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     cases = [load_case(image, label) for image, label in write_phantom_cases(folder, n=3)]
    >>> images, labels = PatchSampler(cases, patch=8, seed=0).sample(4)
    >>> images.shape, labels.shape
    (torch.Size([4, 1, 8, 8, 8]), torch.Size([4, 8, 8, 8]))

    Two processes (``world_size=2``) draw the halves of the batch that one process draws:

    >>> shares = [PatchSampler(cases, 8, seed=0).sample(2, rank=rank, world_size=2)[0] for rank in (0, 1)]
    >>> bool(torch.equal(torch.cat(shares), images))
    True
    """

    def __init__(self, cases: Sequence[Case], patch: int, foreground_fraction: float = 0.5, seed: int = 0) -> None:
        if not cases or any(c.label is None for c in cases):
            raise ValueError("PatchSampler: expected at least one case, each with a label map")
        self.cases, self.patch, self.foreground_fraction = list(cases), patch, foreground_fraction
        self.generator = torch.Generator().manual_seed(seed)
        self._foreground = [torch.nonzero(c.label > 0) for c in self.cases]

    def _corner(self, case: int) -> list[int]:
        shape = self.cases[case].label.shape
        foreground = self._foreground[case]
        if len(foreground) and float(torch.rand((), generator=self.generator)) < self.foreground_fraction:
            centre = foreground[int(torch.randint(len(foreground), (), generator=self.generator))].tolist()
            return [min(max(c - self.patch // 2, 0), max(n - self.patch, 0)) for c, n in zip(centre, shape)]
        return [int(torch.randint(max(n - self.patch, 0) + 1, (), generator=self.generator)) for n in shape]

    def sample(self, batch_size: int, rank: int = 0, world_size: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch_size`` patches and labels. With ``world_size`` processes the sampler draws the global
        batch of ``batch_size x world_size`` patches (every process draws the same, from the same seed) and
        returns the ``rank``-th share: the processes together see exactly the batch that one process with
        ``batch_size x world_size`` would, and their random states stay equal."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank: expected 0 <= rank < world_size = {world_size}, got {rank}")
        images, labels = [], []
        p = self.patch
        for index in range(batch_size * world_size):
            i = int(torch.randint(len(self.cases), (), generator=self.generator))
            x, y, z = self._corner(i)
            if index // batch_size != rank:
                continue
            image = self.cases[i].image[:, x : x + p, y : y + p, z : z + p]
            label = self.cases[i].label[x : x + p, y : y + p, z : z + p]
            missing = [p - n for n in label.shape]
            if any(missing):  # a volume smaller than the patch: pad at the far end
                pad = [v for m in reversed(missing) for v in (0, m)]
                image, label = torch.nn.functional.pad(image, pad), torch.nn.functional.pad(label, pad)
            images.append(image)
            labels.append(label)
        return torch.stack(images), torch.stack(labels)


def _autocast(device: torch.device, enabled: bool):
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype, enabled=enabled)


@torch.no_grad()
def segment_volume(model: EquivariantUNet, image: torch.Tensor, patch: int, overlap: float, device, amp: bool = False) -> torch.Tensor:
    """Class probabilities ``[classes, X, Y, Z]`` (on the CPU) for a standardized image ``[C, X, Y, Z]``,
    by sliding windows of ``patch`` voxels (rounded up to the model's size multiple)."""
    model.eval()
    multiple = model.size_multiple
    size = tuple(math.ceil(max(patch, 1) / m) * m for m in multiple)
    x, crop = pad_to(image[None], [math.ceil(n / m) * m for n, m in zip(image.shape[1:], multiple)])
    size = tuple(min(s, n) for s, n in zip(size, x.shape[2:]))
    with _autocast(torch.device(device), amp):
        logits = sliding_window(model, x, size, overlap=overlap, device=device, output_device="cpu")
    return torch.softmax(logits.float(), dim=1)[(0, slice(None)) + crop]


def dice_scores(prediction: torch.Tensor, label: torch.Tensor, classes: int) -> list[float]:
    """Dice per foreground class (MONAI's ``DiceMetric``) for label maps ``[X, Y, Z]``; NaN for a class
    absent from both.

    >>> label = torch.tensor([0, 1, 1, 1, 0, 0]).view(1, 1, 6)
    >>> prediction = torch.tensor([0, 1, 1, 0, 0, 1]).view(1, 1, 6)
    >>> [round(d, 4) for d in dice_scores(prediction, label, classes=3)]  # class 2 is in neither
    [0.6667, nan]
    """
    from monai.metrics import DiceMetric
    from monai.networks.utils import one_hot

    metric = DiceMetric(include_background=False, reduction="none", ignore_empty=True)
    values = metric(one_hot(prediction[None, None], classes), one_hot(label[None, None], classes))
    return [float(v) for v in values[0]]


@dataclass
class History:
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    validation: list[tuple[int, float]] = field(default_factory=list)  # (step, mean foreground Dice)


def train(
    config: SegmentConfig,
    train_cases: Sequence[Case],
    out_dir: str | Path,
    *,
    val_cases: Sequence[Case] = (),
    resume: bool = False,
    device: str = "cpu",
    progress: Callable | None = None,
    log: Callable[[str], None] = print,
    stop_after: int | None = None,
) -> tuple[EquivariantUNet, History]:
    """Train (or resume) a U-Net; checkpoints go to ``out_dir/last.pt`` (every ``validate_every`` steps
    and at the end) and ``out_dir/best.pt`` (best validation Dice). ``stop_after`` ends the call after that
    many steps of this run (the checkpoint is written), as an interruption would. Returns the model (eval
    mode) and the :class:`History` of losses and validation Dice (mean over foreground classes). A loss that
    is not finite raises ``FloatingPointError`` before its step, so ``last.pt`` keeps the good weights it
    last saved (with ``amp`` on CUDA the gradient scaler skips such steps instead).

    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     cases = [load_case(image, label) for image, label in write_phantom_cases(folder, n=3)]
    >>> config = SegmentConfig(channels=(12,), strides=(), patch=8, steps=4, validate_every=2, spacing=(1.5, 1.5, 1.5))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     model, history = train(config, cases[:2], folder, val_cases=cases[2:], log=lambda line: None)
    ...     sorted(path.name for path in Path(folder).iterdir())
    ['best.pt', 'last.pt']
    >>> history.steps, [step for step, dice in history.validation]
    ([1, 2, 3, 4], [2, 4])
    >>> all(0 <= dice <= 1 for _, dice in history.validation)
    True
    """
    from monai.losses import DiceCELoss

    ctx = distributed.setup(device)
    device = ctx.device
    if not ctx.is_main:
        progress, log = None, lambda message: None
    out_dir = Path(out_dir)
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    ctx.barrier()
    last = out_dir / "last.pt"
    torch.manual_seed(config.seed)
    model = config.build_model().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    sampler = PatchSampler(train_cases, config.patch, config.foreground_fraction, config.seed)
    history, step, best = History(), 0, -math.inf
    if resume and last.exists():
        state = load_checkpoint(last, map_location=device)
        if state["config"] != dataclasses.asdict(config):
            raise ValueError(f"{last}: written by a run with another configuration; use another --out or the same options")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        sampler.generator.set_state(state["sampler"])
        history, step, best = History(**state["history"]), state["step"], state["best"]
        log(f"resumed from {last} at step {step}")
        if state.get("world_size", 1) != ctx.world_size:
            log(f"note: {last} was written by {state.get('world_size', 1)} process(es), this run has {ctx.world_size}: "
                "the patches drawn from here on differ from the interrupted run's")
    elif resume:
        log(f"no checkpoint at {last}: starting from scratch")
    trained = ctx.wrap(model)  # DistributedDataParallel under torchrun

    saved_step = step if step else None  # the step last.pt holds, for a diverging run's message

    def checkpoint(path: Path) -> None:  # rank 0 writes; the others wait at the barrier after it
        nonlocal saved_step
        if path == last:
            saved_step = step
        if ctx.is_main:
            save_checkpoint(path, {
                "config": dataclasses.asdict(config), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "sampler": sampler.generator.get_state(), "history": dataclasses.asdict(history), "step": step,
                "best": best, "world_size": ctx.world_size,
            })

    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    scaler = torch.amp.GradScaler(device.type, enabled=config.amp and device.type == "cuda")
    steps = range(step, config.steps)
    bar = progress(steps, desc="train", initial=step, total=config.steps) if progress else steps
    done = 0
    for step in bar:
        trained.train()
        x, y = sampler.sample(config.batch_size, ctx.rank, ctx.world_size)
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad(set_to_none=True)
        with _autocast(device, config.amp):
            logits = trained(x)
        loss = loss_fn(logits.float(), y[:, None])
        joined = float(ctx.mean(loss.detach()))  # the loss of the joined batch, the same on every process
        if not scaler.is_enabled():  # the scaler itself skips steps whose gradients overflow in float16
            stop_if_diverged(joined, "train", step + 1, config.steps, last, saved_step)
        scaler.scale(loss).backward()  # DistributedDataParallel averages the gradients over the processes
        scaler.step(optimizer)
        scaler.update()
        history.steps.append(step + 1)
        history.losses.append(joined)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{history.losses[-1]:.3f}", refresh=False)
        step += 1
        done += 1
        if step % config.validate_every == 0 or step == config.steps:
            if val_cases and ctx.is_main:
                scores = [
                    np.nanmean(dice_scores(segment_volume(model, c.image, config.patch, config.overlap, device, config.amp).argmax(0), c.label, config.classes))
                    for c in val_cases
                ]
                dice = float(np.nanmean(scores))
                history.validation.append((step, dice))
                log(f"step {step}: loss {history.losses[-1]:.4f}, validation Dice {dice:.4f}")
                if dice > best:
                    best = dice
                    checkpoint(out_dir / "best.pt")
            checkpoint(last)
            ctx.barrier()  # a resumed process must find the complete checkpoint
        if stop_after is not None and done >= stop_after:
            checkpoint(last)
            ctx.barrier()
            break
    return model, history


def load_model(checkpoint: str | Path, device: str = "cpu") -> tuple[EquivariantUNet, SegmentConfig]:
    """The model and configuration stored in a checkpoint of :func:`train`."""
    state = load_checkpoint(checkpoint, map_location=device)
    try:
        config = SegmentConfig(**state["config"])
    except (KeyError, TypeError) as error:
        raise ValueError(f"{checkpoint}: not a segmentation checkpoint ({error})") from None
    model = config.build_model().to(device)
    model.load_state_dict(state["model"])
    return model.eval(), config


def predict(
    checkpoint: str | Path,
    images: str | Path,
    out_dir: str | Path,
    *,
    overlap: float | None = None,
    device: str = "cpu",
    probabilities: bool = False,
    progress: Callable | None = None,
    log: Callable[[str], None] = print,
) -> list[Path]:
    """Segment every image of a folder; writes ``<name>.nii.gz`` label maps (uint8, the image's own grid,
    affine and orientation) to ``out_dir``, and with ``probabilities`` also ``<name>_prob.nii.gz``
    (``[classes, X, Y, Z]`` float32). Each image's voxel size is given to the model (kernels in mm).
    Returns the paths written.

    >>> import tempfile
    >>> from pathlib import Path
    >>> from steerable3d.io import load_nifti
    >>> config = SegmentConfig(channels=(12,), strides=(), patch=8, steps=2, spacing=(1.5, 1.5, 1.5))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     root = Path(folder)
    ...     _ = write_phantom_cases(root)
    ...     cases = [load_case(image, label) for image, label in find_cases(root / "images", root / "labels")]
    ...     _ = train(config, cases, root / "run", log=lambda line: None)
    ...     written = predict(root / "run" / "last.pt", root / "images", root / "predicted", log=lambda line: None)
    ...     print([path.name for path in written])
    ...     predicted, image = load_nifti(written[0]), load_nifti(root / "images" / "case0.nii.gz")
    ['case0.nii.gz', 'case1.nii.gz']
    >>> predicted.shape == image.shape, bool(np.allclose(predicted.affine, image.affine))  # the image's grid
    (True, True)
    >>> set(predicted.data.unique().tolist()) <= {0, 1}  # class indices
    True
    """
    model, config = load_model(checkpoint, device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    pairs = find_cases(images)
    for image_path, _ in progress(pairs, desc="predict") if progress else pairs:
        start = time.perf_counter()
        case = load_case(image_path)
        if case.image.shape[0] != config.in_channels:
            raise ValueError(f"{image_path}: expected {config.in_channels} channel(s) as in training, got {case.image.shape[0]}")
        model.spacing = case.volume.spacing
        probs = segment_volume(model, case.image, config.patch, config.overlap if overlap is None else overlap, device)
        labels = Volume(probs.argmax(0, keepdim=True).to(torch.uint8), case.volume.affine)
        target = out_dir / f"{case.name}.nii.gz"
        save_nifti(target, from_ras(labels, like=image_path), like=image_path)
        written.append(target)
        if probabilities:
            prob_target = out_dir / f"{case.name}_prob.nii.gz"
            save_nifti(prob_target, from_ras(Volume(probs, case.volume.affine), like=image_path), like=image_path)
            written.append(prob_target)
        log(f"{image_path.name}: {tuple(case.image.shape[1:])} at {tuple(round(s, 3) for s in case.volume.spacing)} mm "
            f"-> {target} ({time.perf_counter() - start:.1f} s)")
    return written
