"""Cosmology field emulators on periodic boxes: the Zel'dovich displacement and the evolved density.

Protocol (see :mod:`steerable3d.data.cosmology`):

* fields: periodic Gaussian random fields on ``size^3`` voxels of a box of side ``box_size`` (Mpc/h), power
  spectrum ``P(k) = amplitude * k^index`` (default ``30 k^-2`` on 24^3 voxels of 4 Mpc/h: rms density contrast
  about 1.2, rms displacement about 0.7 voxel); every
  training step draws fresh fields, the test set is ``test`` fields of another seed;
* tasks: ``"displacement"``: the linear density contrast (``0e``) to the Zel'dovich displacement ``psi``
  (``1o``, in voxels), a linear but non-local map (``psi(k) = i k delta(k) / k^2``); ``"density"``: to the
  density contrast of particles moved by ``psi`` (cloud-in-cell), non-linear;
* models (:class:`FieldModel`): a box-sized linear convolution (``N - 1`` taps, circular, by FFT) plus
  ``gain`` times a U-Net. Ours: a steerable convolution (``0e`` to the target's irreps) and an
  O(3)-equivariant :class:`~steerable3d.models.EquivariantUNet` with circular padding (16/32/64 channels,
  strides 2 and 2, 5 taps, batch norm: in eval mode a fixed operator, which keeps the amplitude that
  instance norm would divide out). The plain CNN: the same graph in plain layers
  (:func:`~steerable3d.models.plain_counterpart`: ``nn.Conv3d`` of the same widths and taps, circular).
  Both trained the same way (Adam, cosine learning rate from ``lr``, batch 2, mean squared error);
* painted density models (``paint=True``, ``--paint``): for the density task, both networks predict a
  displacement (``1o``, in voxels) that a :class:`~steerable3d.data.cosmology.CICPaint` layer (cloud-in-cell,
  no parameters, exactly equivariant) turns into the density; still trained on the density alone (no
  displacement supervision). The plain graph keeps the same layer;
* scores per ``k`` shell over the test fields: transfer function ``T(k) = sqrt(P_pred / P_true)`` and
  cross-correlation ``r(k)``, reported with the targets below half the Nyquist frequency; errors under the
  48 grid symmetries (about the centre of the periodic box).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from e3nn import o3

from ..data.cosmology import CICPaint, cic_density, gaussian_random_field, zeldovich_displacement
from ..metrics import cross_correlation, transfer_function
from ..models import EquivariantUNet, plain_counterpart
from ..nn import SteerableConv3d
from ..testing import equivariance_error
from ._results import load_records, save_records
from ._training import train_steps

__all__ = [
    "TASKS", "FieldTask", "FieldModel", "build_models", "train_model", "evaluate", "grid_error", "Result", "run", "format_table",
    "save_results", "load_results", "plot_results",
]

TASKS = {"displacement": "1x1o", "density": "1x0e"}


@dataclass
class FieldTask:
    """Draws ``(delta [B, 1, N, N, N], target [B, C, N, N, N])`` float32 pairs for ``task``: the target is
    the Zel'dovich displacement in voxels (``C = 3``) or the cloud-in-cell density contrast (``C = 1``)."""

    task: str = "displacement"
    size: int = 24
    box_size: float = 96.0
    amplitude: float = 30.0
    index: float = -2.0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task: expected one of {list(TASKS)}, got {self.task!r}")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 8 or self.size % 4:
            raise ValueError(f"size: expected a multiple of 4 (the U-Net's strides), at least 8, got {self.size!r}")

    @property
    def irreps_out(self) -> str:
        return TASKS[self.task]

    def power(self, k: torch.Tensor) -> torch.Tensor:
        return self.amplitude * k**self.index

    def sample(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        delta = gaussian_random_field(self.size, self.box_size, self.power, batch=batch, generator=generator)
        psi = zeldovich_displacement(delta, self.box_size)
        target = psi * (self.size / self.box_size) if self.task == "displacement" else cic_density(psi, self.box_size)[:, None]
        return delta[:, None].float(), target.float()


class FieldModel(torch.nn.Module):
    """``prediction = linear(delta) + gain * net(delta)``: a box-sized linear convolution (the long-range,
    linear part of the map) plus a U-Net (the local and non-linear part). The linear weights start at 0 (a
    box-sized kernel at the usual scale would start far off) and the scalar ``gain`` too, so training
    starts from a zero prediction. Both parts are equivariant for a steerable model;
    :func:`~steerable3d.models.plain_counterpart` turns both into plain layers.

    With ``paint`` (a layer such as :class:`~steerable3d.data.cosmology.CICPaint`), the prediction is
    ``paint(linear(delta) + gain * net(delta))``: the sum is then a displacement in voxels, and
    ``irreps_out`` is the paint layer's. ``plain_counterpart`` keeps the paint layer as it is."""

    def __init__(self, linear: torch.nn.Module, net: torch.nn.Module, paint: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.linear, self.net, self.paint = linear, net, paint
        with torch.no_grad():
            for parameter in linear.parameters():
                parameter.zero_()
        self.gain = torch.nn.Parameter(torch.zeros(()))
        self.irreps_in, self.irreps_out = net.irreps_in, (net.irreps_out if paint is None else paint.irreps_out)

    def forward(self, delta: torch.Tensor) -> torch.Tensor:
        prediction = self.linear(delta) + self.gain * self.net(delta)
        return prediction if self.paint is None else self.paint(prediction)


PAINTED = " + CIC paint"  # suffix of the painted models' names


def build_models(task: FieldTask, paint: bool = False) -> dict[str, Callable[[], torch.nn.Module]]:
    """The two networks, by name (constructors, so each run starts from its own seed). With ``paint``
    (density task only), both predict a displacement in voxels and end in a :class:`CICPaint` layer; their
    names end in ``" + CIC paint"``."""
    if paint and task.task != "density":
        raise ValueError(f"paint: only for the density task (a displacement painted into a density), got task {task.task!r}")
    predicted = "1x1o" if paint else task.irreps_out
    channels = o3.Irreps(predicted).dim

    def equivariant() -> FieldModel:
        # N - 1 taps on a periodic box of N voxels: the widest odd kernel, by FFT
        linear = SteerableConv3d("1x0e", predicted, task.size - 1, padding_mode="circular", backend="fft")
        net = EquivariantUNet(3, 1, channels, (16, 32, 64), (2, 2), parity=True, padding_mode="circular", norm="batch",
                              irreps_out=predicted)
        return FieldModel(linear, net, CICPaint() if paint else None)

    def plain() -> torch.nn.Module:
        return plain_counterpart(equivariant(), torch.zeros(1, 1, task.size, task.size, task.size))

    suffix = PAINTED if paint else ""
    return {"EquivariantUNet" + suffix: equivariant, "plain CNN (same graph)" + suffix: plain}


def train_model(model: torch.nn.Module, task: FieldTask, steps: int, *, batch_size: int = 2, lr: float = 2e-3, seed: int = 0,
                progress: Callable | None = None, description: str = "train",
                boxes: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[list[float], float]:
    """Adam with a cosine learning rate, mean squared error on fresh fields every step, or on batches
    drawn from a fixed training set ``boxes = (delta, target)`` (as simulations are). Returns (losses, seconds)."""
    def batch_loss(generator: torch.Generator) -> torch.Tensor:
        if boxes is None:
            delta, target = task.sample(batch_size, generator)
        else:
            picks = torch.randint(len(boxes[0]), (batch_size,), generator=generator)
            delta, target = boxes[0][picks], boxes[1][picks]
        return torch.nn.functional.mse_loss(model(delta), target)

    return train_steps(model, batch_loss, steps, lr=lr, seed=seed, progress=progress, description=description, metric="mse")


@torch.no_grad()
def evaluate(model: torch.nn.Module, task: FieldTask, test: tuple[torch.Tensor, torch.Tensor]) -> dict[str, list[float]]:
    """Per ``k`` shell over the test fields: ``k`` (h/Mpc), ``T`` and ``r`` (spectra summed over fields and
    components), and the relative squared error of the fields."""
    model.eval()
    delta, target = test
    prediction = torch.cat([model(delta[i : i + 2]) for i in range(0, len(delta), 2)])
    k, transfer = transfer_function(prediction, target, task.box_size)
    _, r = cross_correlation(prediction, target, task.box_size)
    error = float(((prediction - target) ** 2).sum() / (target**2).sum())
    return {"k": k.tolist(), "T": transfer.tolist(), "r": r.tolist(), "relative_squared_error": [error]}


def grid_error(model: torch.nn.Module, task: FieldTask, delta: torch.Tensor) -> float:
    """Largest ``max |f(g x) - g f(x)| / max |g f(x)|`` over the 48 grid symmetries ``g`` about the box
    centre (:func:`~steerable3d.testing.equivariance_error`, in eval mode)."""
    model.eval()
    return max(equivariance_error(model, delta, "1x0e", task.irreps_out).values())


@dataclass
class Result:
    task: str
    model: str
    parameters: int
    train_seconds: float
    final_loss: float
    scores: dict[str, list[float]] = field(default_factory=dict)
    grid_error: float = math.nan


def low_k(result: Result, task: FieldTask) -> np.ndarray:
    """Mask of the shells below half the Nyquist frequency (``k < pi N / (2 L)``)."""
    return np.asarray(result.scores["k"]) < math.pi * task.size / (2 * task.box_size)


def run(tasks: Sequence[str] = ("displacement", "density"), steps: int = 600, size: int = 24, box_size: float = 96.0,
        test: int = 8, seed: int = 0, progress: Callable | None = None, log: Callable[[str], None] = print,
        trained: dict | None = None, train_boxes: int | None = None, paint: bool = False) -> list[Result]:
    """The whole protocol: both networks on every task, on fresh fields every step or, with
    ``train_boxes``, on a fixed training set of that many boxes. With ``paint``, the density models are
    the painted ones (:func:`build_models`; the displacement task is unchanged). With a dict ``trained``,
    it receives ``(task name, model name) -> (FieldTask, model)`` (for :func:`plot_results`)."""
    results = []
    for name in tasks:
        task = FieldTask(name, size, box_size)
        test_fields = task.sample(test, torch.Generator().manual_seed(10_000 + seed))
        boxes = None if train_boxes is None else task.sample(train_boxes, torch.Generator().manual_seed(20_000 + seed))
        for model_name, build in build_models(task, paint=paint and name == "density").items():
            torch.manual_seed(seed)
            model = build()
            losses, seconds = train_model(model, task, steps, seed=seed, progress=progress, description=f"{name}: {model_name}",
                                          boxes=boxes)
            result = Result(name, model_name, sum(p.numel() for p in model.parameters()), seconds, float(np.mean(losses[-20:])),
                            evaluate(model, task, test_fields), grid_error(model, task, test_fields[0][:2]))
            results.append(result)
            if trained is not None:
                trained[name, model_name] = (task, model)
            mask = low_k(result, task)
            log(f"{name} {model_name}: {seconds:.0f} s; below half Nyquist max |T - 1| "
                f"{np.abs(np.asarray(result.scores['T'])[mask] - 1).max():.4f}, min r {np.min(np.asarray(result.scores['r'])[mask]):.4f}, "
                f"mean r {np.mean(np.asarray(result.scores['r'])[mask]):.4f}; grid error {result.grid_error:.1e}")
    return results


def format_table(results: Sequence[Result], size: int = 24, box_size: float = 96.0) -> str:
    """Markdown: one table per task, one row per ``k`` shell with ``T`` and ``r`` of every model, then a
    summary below half the Nyquist frequency."""
    out = []
    for name in dict.fromkeys(r.task for r in results):
        rows = [r for r in results if r.task == name]
        task = FieldTask(name, size, box_size)
        header = "| k (h/Mpc) | " + " | ".join(f"T {r.model} | r {r.model}" for r in rows) + " |"
        lines = [f"**{name}**", "", header, "|---" * (1 + 2 * len(rows)) + "|"]
        for i, k in enumerate(rows[0].scores["k"]):
            marker = "" if low_k(rows[0], task)[i] else " (above half Nyquist)"
            lines.append(f"| {k:.3f}{marker} | " + " | ".join(f"{r.scores['T'][i]:.4f} | {r.scores['r'][i]:.4f}" for r in rows) + " |")
        lines += ["", "| model | parameters | training | max abs(T - 1), k < k_Nyq/2 | min r | mean r | relative squared error | grid-symmetry error |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            mask = low_k(r, task)
            t, c = np.asarray(r.scores["T"])[mask], np.asarray(r.scores["r"])[mask]
            lines.append(f"| {r.model} | {r.parameters} | {r.train_seconds:.0f} s | {np.abs(t - 1).max():.4f} | {c.min():.4f} | "
                         f"{c.mean():.4f} | {r.scores['relative_squared_error'][0]:.4f} | {r.grid_error:.1e} |")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def save_results(results: Sequence[Result], path) -> None:
    """Every score as JSON (a list of :class:`Result` fields), written atomically; :func:`load_results` reads it back."""
    save_records(results, path)


def load_results(path) -> list[Result]:
    return load_records(Result, path)


def plot_results(results: Sequence[Result], path, size: int = 24, box_size: float = 96.0,
                 example: tuple[FieldTask, torch.nn.Module] | None = None) -> None:
    """``T(k)`` and ``r(k)`` per task (one colour per model, half Nyquist dotted) and, with
    ``example = (task, model)``, a slice of one test field's input, target and prediction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r.task for r in results))
    columns = 2 + (3 if example else 0)
    figure, axes = plt.subplots(len(tasks), columns, figsize=(3.8 * columns, 3.4 * len(tasks)), squeeze=False)
    half_nyquist = math.pi * size / (2 * box_size)
    for row, name in zip(axes, tasks):
        for colour, r in zip(("C0", "C3", "C2"), [r for r in results if r.task == name]):
            row[0].plot(r.scores["k"], r.scores["T"], "-o", ms=3, color=colour, label=r.model)
            row[1].plot(r.scores["k"], r.scores["r"], "-o", ms=3, color=colour, label=r.model)
        for ax, label in ((row[0], "T(k)"), (row[1], "r(k)")):
            ax.axvline(half_nyquist, color="grey", ls=":", lw=1)
            ax.set(xlabel="k (h/Mpc)", ylabel=label, title=f"{name}: {label} (half Nyquist dotted)")
        for ax in row[2:]:
            ax.set_axis_off()  # filled below for the example's task only
        row[0].axhline(1, color="grey", lw=0.8)
        row[0].legend(fontsize=7)
    if example:
        task, model = example
        delta, target = task.sample(1, torch.Generator().manual_seed(12_345))
        with torch.no_grad():
            prediction = model.eval()(delta)
        row = axes[tasks.index(task.task)]
        middle = task.size // 2
        for ax, (image, title) in zip(row[2:], ((delta[0, 0], "input density contrast"), (target[0, 0], f"target ({task.task}, x)"),
                                                (prediction[0, 0], "prediction"))):
            shown = ax.imshow(image[:, :, middle].T.numpy(), origin="lower", cmap="RdBu_r")
            ax.set_title(title, fontsize=9)
            ax.set_axis_off()
            figure.colorbar(shown, ax=ax, fraction=0.046)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
