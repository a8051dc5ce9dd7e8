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

The public API: :class:`FieldTask` (the data), :class:`FieldModel` and :func:`build_models` (the networks),
:func:`train_model`, :func:`evaluate` and :func:`grid_error` (the steps of one run), :func:`run` (the whole
protocol) and its :class:`Result` records, :func:`format_table`, :func:`save_results`, :func:`load_results`
and :func:`plot_results`. ``steerable3d cosmology`` (:mod:`steerable3d.cli`) runs it from the command line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from e3nn import o3

from ..data.cosmology import CICPaint, cic_density, gaussian_random_field, zeldovich_displacement
from ..metrics import cross_correlation, transfer_function
from ..models import EquivariantUNet, plain_counterpart
from ..nn import SteerableConv3d
from ..testing import equivariance_error
from ._results import load_records, model_label, save_records
from ._training import check_average, checkpoint_path, train_steps

__all__ = [
    "TASKS", "FieldTask", "FieldModel", "build_models", "train_model", "evaluate", "grid_error", "Result", "run", "format_table",
    "save_results", "load_results", "plot_results",
]

TASKS = {"displacement": "1x1o", "density": "1x0e"}


@dataclass
class FieldTask:
    """Draws ``(delta [B, 1, N, N, N], target [B, C, N, N, N])`` float32 pairs for ``task``: the input is the
    linear density contrast (dimensionless), the target the Zel'dovich displacement in voxels (``C = 3``,
    ``1x1o``) or the cloud-in-cell density contrast of the moved particles (``C = 1``, ``1x0e``). ``size``
    is ``N`` (voxels a side, a multiple of 4), ``box_size`` the box side in Mpc/h, and the power spectrum
    is ``amplitude * k^index`` (``k`` in h/Mpc).

    >>> task = FieldTask("displacement", size=8, box_size=32.0)
    >>> delta, psi = task.sample(2, torch.Generator().manual_seed(0))
    >>> delta.shape, psi.shape, task.irreps_out
    (torch.Size([2, 1, 8, 8, 8]), torch.Size([2, 3, 8, 8, 8]), '1x1o')
    >>> again, _ = task.sample(2, torch.Generator().manual_seed(0))
    >>> bool(torch.equal(delta, again))  # the generator's seed fixes the fields
    True
    >>> _, rho = FieldTask("density", 8, 32.0).sample(1, torch.Generator().manual_seed(0))
    >>> rho.shape, bool(rho.min() >= -1)  # a density contrast: 1 + rho >= 0
    (torch.Size([1, 1, 8, 8, 8]), True)
    """

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
    :func:`~steerable3d.models.plain_counterpart` turns both into plain layers. Maps ``delta [B, 1, N, N, N]``
    to ``[B, C, N, N, N]`` (``C`` the dimension of ``irreps_out``).

    With ``paint`` (a layer such as :class:`~steerable3d.data.cosmology.CICPaint`), the prediction is
    ``paint(linear(delta) + gain * net(delta))``: the sum is then a displacement in voxels, and
    ``irreps_out`` is the paint layer's. ``plain_counterpart`` keeps the paint layer as it is.

    >>> from steerable3d.models import EquivariantUNet
    >>> from steerable3d.nn import SteerableConv3d
    >>> linear = SteerableConv3d("1x0e", "1x1o", 7, padding_mode="circular", backend="fft")
    >>> net = EquivariantUNet(3, 1, 3, (12,), (), parity=True, padding_mode="circular", irreps_out="1x1o")
    >>> model = FieldModel(linear, net)
    >>> model.irreps_in, model.irreps_out
    (1x0e, 1x1o)
    >>> prediction = model(torch.randn(2, 1, 8, 8, 8))
    >>> prediction.shape, bool(prediction.abs().max() == 0)  # training starts from a zero prediction
    (torch.Size([2, 3, 8, 8, 8]), True)
    """

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
    """The two networks, by name (constructors, so each run starts from its own seed): the
    :class:`FieldModel` of a box-sized steerable convolution and an
    :class:`~steerable3d.models.EquivariantUNet` (16/32/64 channels), and its plain counterpart. With
    ``paint`` (density task only), both predict a displacement in voxels and end in a :class:`CICPaint`
    layer; their names end in ``" + CIC paint"``.

    >>> constructors = build_models(FieldTask("displacement", 8, 32.0))
    >>> list(constructors)
    ['EquivariantUNet', 'plain CNN (same graph)']
    >>> list(build_models(FieldTask("density", 8, 32.0), paint=True))
    ['EquivariantUNet + CIC paint', 'plain CNN (same graph) + CIC paint']
    """
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
        model = plain_counterpart(equivariant(), torch.zeros(1, 1, task.size, task.size, task.size))
        with torch.no_grad():  # the plain linear layer is new: it starts at 0 like ours (FieldModel)
            for parameter in model.linear.parameters():
                parameter.zero_()
        return model

    suffix = PAINTED if paint else ""
    return {"EquivariantUNet" + suffix: equivariant, "plain CNN (same graph)" + suffix: plain}


def train_model(model: torch.nn.Module, task: FieldTask, steps: int, *, batch_size: int = 2, lr: float = 2e-3, seed: int = 0,
                progress: Callable | None = None, description: str = "train",
                boxes: tuple[torch.Tensor, torch.Tensor] | None = None, **checkpointing) -> tuple[list[float], float]:
    """Adam with a cosine learning rate, mean squared error on fresh fields every step, or on batches
    drawn from a fixed training set ``boxes = (delta [M, 1, N, N, N], target [M, C, N, N, N])`` (as
    simulations are). ``checkpointing`` (``checkpoint``, ``checkpoint_every``,
    ``config``, ``stop_after``, ``average``) goes to ``steerable3d.workflows._training.train_steps``, which
    keeps the run in a file and resumes it exactly, and with ``average`` (a decay such as 0.999) ends with a
    moving average of the weights of the second half of the steps.
    Leaves ``model`` in eval mode. Returns (losses, one per step, and seconds).

    >>> from steerable3d.models import EquivariantUNet
    >>> from steerable3d.nn import SteerableConv3d
    >>> task = FieldTask("displacement", 8, 32.0)
    >>> _ = torch.manual_seed(0)
    >>> model = FieldModel(SteerableConv3d("1x0e", "1x1o", 7, padding_mode="circular", backend="fft"),
    ...                    EquivariantUNet(3, 1, 3, (12,), (), parity=True, padding_mode="circular", irreps_out="1x1o"))
    >>> losses, seconds = train_model(model, task, 20, lr=1e-2)
    >>> len(losses), sum(losses[-5:]) < sum(losses[:5])
    (20, True)
    """
    def batch_loss(generator: torch.Generator) -> torch.Tensor:
        if boxes is None:
            delta, target = task.sample(batch_size, generator)
        else:
            picks = torch.randint(len(boxes[0]), (batch_size,), generator=generator)
            delta, target = boxes[0][picks], boxes[1][picks]
        return torch.nn.functional.mse_loss(model(delta), target)

    return train_steps(model, batch_loss, steps, lr=lr, seed=seed, progress=progress, description=description, metric="mse",
                       **checkpointing)


@torch.no_grad()
def evaluate(model: torch.nn.Module, task: FieldTask, test: tuple[torch.Tensor, torch.Tensor]) -> dict[str, list[float]]:
    """Per ``k`` shell over the test fields: ``k`` (h/Mpc), ``T`` and ``r`` (spectra summed over fields and
    components), and the relative squared error of the fields. ``test = (delta [M, 1, N, N, N], target
    [M, C, N, N, N])``, as :meth:`FieldTask.sample` draws them.

    >>> from steerable3d.models import EquivariantUNet
    >>> from steerable3d.nn import SteerableConv3d
    >>> task = FieldTask("displacement", 8, 32.0)
    >>> _ = torch.manual_seed(0)
    >>> model = FieldModel(SteerableConv3d("1x0e", "1x1o", 7, padding_mode="circular", backend="fft"),
    ...                    EquivariantUNet(3, 1, 3, (12,), (), parity=True, padding_mode="circular", irreps_out="1x1o"))
    >>> _ = train_model(model, task, 10, lr=1e-2)
    >>> scores = evaluate(model, task, task.sample(2, torch.Generator().manual_seed(1)))
    >>> sorted(scores), len(scores["k"]) == len(scores["T"]) == len(scores["r"])
    (['T', 'k', 'r', 'relative_squared_error'], True)
    >>> all(-1 <= r <= 1 for r in scores["r"]), all(t >= 0 for t in scores["T"])
    (True, True)
    """
    model.eval()
    delta, target = test
    prediction = torch.cat([model(delta[i : i + 2]) for i in range(0, len(delta), 2)])
    k, transfer = transfer_function(prediction, target, task.box_size)
    _, r = cross_correlation(prediction, target, task.box_size)
    error = float(((prediction - target) ** 2).sum() / (target**2).sum())
    return {"k": k.tolist(), "T": transfer.tolist(), "r": r.tolist(), "relative_squared_error": [error]}


def grid_error(model: torch.nn.Module, task: FieldTask, delta: torch.Tensor) -> float:
    """Largest ``max |f(g x) - g f(x)| / max |g f(x)|`` over the 48 grid symmetries ``g`` about the box
    centre (:func:`~steerable3d.testing.equivariance_error`, in eval mode), for inputs ``delta [B, 1, N, N,
    N]``: float rounding (about 1e-7) for an equivariant model.

    >>> from steerable3d.models import EquivariantUNet
    >>> from steerable3d.nn import SteerableConv3d
    >>> task = FieldTask("displacement", 8, 32.0)
    >>> _ = torch.manual_seed(0)
    >>> model = FieldModel(SteerableConv3d("1x0e", "1x1o", 7, padding_mode="circular", backend="fft"),
    ...                    EquivariantUNet(3, 1, 3, (12,), (), parity=True, padding_mode="circular", irreps_out="1x1o"))
    >>> with torch.no_grad():
    ...     _ = model.gain.fill_(1.0)  # as after training: the U-Net's part counts
    >>> delta = task.sample(1, torch.Generator().manual_seed(1))[0]
    >>> grid_error(model, task, delta) < 1e-5
    True
    >>> from steerable3d.models import plain_counterpart
    >>> grid_error(plain_counterpart(model, delta), task, delta) > 1e-2  # the same graph in plain layers
    True
    """
    model.eval()
    return max(equivariance_error(model, delta, "1x0e", task.irreps_out).values())


@dataclass
class Result:
    """One trained network's scores (one per task and model in :func:`run`): ``parameters`` (count),
    ``train_seconds``, ``final_loss`` (mean squared error of the last 20 steps, in the target's units
    squared), ``scores`` as :func:`evaluate` gives them (``k`` in h/Mpc), ``grid_error`` (relative, see
    :func:`grid_error`) and ``average`` (the decay of the moving average of the weights the network ends
    with; None for the last step's weights).

    >>> r = Result("displacement", "EquivariantUNet", 1234, 5.0, 0.01,
    ...            {"k": [0.1, 0.2], "T": [0.98, 0.9], "r": [0.999, 0.95], "relative_squared_error": [0.02]}, 2e-7)
    >>> r.model, r.scores["r"][0], r.grid_error
    ('EquivariantUNet', 0.999, 2e-07)
    """

    task: str
    model: str
    parameters: int
    train_seconds: float
    final_loss: float
    scores: dict[str, list[float]] = field(default_factory=dict)
    grid_error: float = math.nan
    average: float | None = None


def low_k(result: Result, task: FieldTask) -> np.ndarray:
    """Mask of the shells below half the Nyquist frequency (``k < pi N / (2 L)``)."""
    return np.asarray(result.scores["k"]) < math.pi * task.size / (2 * task.box_size)


def run(tasks: Sequence[str] = ("displacement", "density"), steps: int = 600, size: int = 24, box_size: float = 96.0,
        test: int = 8, seed: int = 0, progress: Callable | None = None, log: Callable[[str], None] = print,
        trained: dict | None = None, train_boxes: int | None = None, paint: bool = False,
        models: Callable[[FieldTask], dict[str, Callable[[], torch.nn.Module]]] | None = None,
        checkpoints: str | Path | None = None, average: float | None = None) -> list[Result]:
    """The whole protocol: both networks on every task (``size^3`` voxels, boxes of ``box_size`` Mpc/h,
    ``steps`` training steps, ``test`` test fields), on fresh fields every step or, with ``train_boxes``,
    on a fixed training set of that many boxes. With ``paint``, the density models are the painted ones
    (:func:`build_models`; the displacement task is unchanged). With a dict ``trained``, it receives ``(task name, model
    name) -> (FieldTask, model)`` (for :func:`plot_results`). ``models`` maps a :class:`FieldTask` to the
    networks' constructors (default :func:`build_models`, the protocol's; smaller ones make a quick run).
    With a folder ``checkpoints``, every training run keeps a checkpoint there (``{task}-{network}.pt``,
    every 100 steps) and a rerun with the same options resumes it, or only evaluates a finished one.
    With ``average`` (a decay such as 0.999), every network ends with a moving average of its weights over
    the second half of its steps.
    Returns one :class:`Result` per task and model.

    >>> from steerable3d.models import EquivariantUNet
    >>> from steerable3d.nn import SteerableConv3d
    >>> def small(task):
    ...     return {"small U-Net": lambda: FieldModel(
    ...         SteerableConv3d("1x0e", task.irreps_out, task.size - 1, padding_mode="circular", backend="fft"),
    ...         EquivariantUNet(3, 1, 3, (12,), (), parity=True, padding_mode="circular", irreps_out=task.irreps_out))}
    >>> results = run(tasks=("displacement",), steps=5, size=8, box_size=32.0, test=2, log=lambda line: None, models=small)
    >>> [(r.task, r.model) for r in results], sorted(results[0].scores)
    ([('displacement', 'small U-Net')], ['T', 'k', 'r', 'relative_squared_error'])
    >>> results[0].grid_error < 1e-5
    True
    """
    check_average(average)
    results = []
    for name in tasks:
        task = FieldTask(name, size, box_size)
        test_fields = task.sample(test, torch.Generator().manual_seed(10_000 + seed))
        boxes = None if train_boxes is None else task.sample(train_boxes, torch.Generator().manual_seed(20_000 + seed))
        constructors = models(task) if models else build_models(task, paint=paint and name == "density")
        for model_name, build in constructors.items():
            torch.manual_seed(seed)
            model = build()
            config = {"task": name, "network": model_name, "size": size, "box_size": box_size, "train_boxes": train_boxes,
                      "paint": paint}
            losses, seconds = train_model(model, task, steps, seed=seed, progress=progress, description=f"{name}: {model_name}",
                                          boxes=boxes, checkpoint=checkpoint_path(checkpoints, name, model_name), config=config,
                                          average=average)
            result = Result(name, model_name, sum(p.numel() for p in model.parameters()), seconds, float(np.mean(losses[-20:])),
                            evaluate(model, task, test_fields), grid_error(model, task, test_fields[0][:2]), average)
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
    summary below half the Nyquist frequency. ``size`` and ``box_size`` (Mpc/h) are the run's.

    >>> results = [Result("displacement", name, 1000, 5.0, 0.01, {"k": [0.1, 0.2, 0.3], "T": [0.99, 0.95, 0.8],
    ...                   "r": [0.999, 0.98, 0.9], "relative_squared_error": [0.05]}, 1e-7)
    ...            for name in ("EquivariantUNet", "plain CNN (same graph)")]
    >>> print(format_table(results, size=8, box_size=32.0))
    **displacement**
    <BLANKLINE>
    | k (h/Mpc) | T EquivariantUNet | r EquivariantUNet | T plain CNN (same graph) | r plain CNN (same graph) |
    |---|---|---|---|---|
    | 0.100 | 0.9900 | 0.9990 | 0.9900 | 0.9990 |
    | 0.200 | 0.9500 | 0.9800 | 0.9500 | 0.9800 |
    | 0.300 | 0.8000 | 0.9000 | 0.8000 | 0.9000 |
    <BLANKLINE>
    | model | parameters | training | max abs(T - 1), k < k_Nyq/2 | min r | mean r | relative squared error | grid-symmetry error |
    |---|---|---|---|---|---|---|---|
    | EquivariantUNet | 1000 | 5 s | 0.2000 | 0.9000 | 0.9597 | 0.0500 | 1.0e-07 |
    | plain CNN (same graph) | 1000 | 5 s | 0.2000 | 0.9000 | 0.9597 | 0.0500 | 1.0e-07 |
    """
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
            lines.append(f"| {model_label(r.model, r.average)} | {r.parameters} | {r.train_seconds:.0f} s | "
                         f"{np.abs(t - 1).max():.4f} | {c.min():.4f} | {c.mean():.4f} | "
                         f"{r.scores['relative_squared_error'][0]:.4f} | {r.grid_error:.1e} |")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def save_results(results: Sequence[Result], path) -> None:
    """Every score as JSON (a list of :class:`Result` fields), written atomically; :func:`load_results` reads it back.

    >>> import tempfile
    >>> from pathlib import Path
    >>> results = [Result("displacement", name, 1000, 5.0, 0.01, {"k": [0.1, 0.2, 0.3], "T": [0.99, 0.95, 0.8],
    ...                   "r": [0.999, 0.98, 0.9], "relative_squared_error": [0.05]}, 1e-7)
    ...            for name in ("EquivariantUNet", "plain CNN (same graph)")]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     save_results(results, Path(folder) / "cosmology.json")
    ...     load_results(Path(folder) / "cosmology.json") == results
    True
    """
    save_records(results, path)


def load_results(path) -> list[Result]:
    """The :class:`Result` records :func:`save_results` wrote to ``path`` (JSON).

    >>> import tempfile
    >>> from pathlib import Path
    >>> results = [Result("density", "EquivariantUNet", 1000, 5.0, 0.01, {"k": [0.1], "T": [0.9], "r": [0.99]}, 1e-7)]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     save_results(results, Path(folder) / "cosmology.json")
    ...     loaded = load_results(Path(folder) / "cosmology.json")
    >>> loaded == results, type(loaded[0]).__name__
    (True, 'Result')
    """
    return load_records(Result, path)


def plot_results(results: Sequence[Result], path, size: int = 24, box_size: float = 96.0,
                 example: tuple[FieldTask, torch.nn.Module] | None = None) -> None:
    """``T(k)`` and ``r(k)`` per task (one colour per model, half Nyquist dotted) and, with
    ``example = (task, model)``, a slice of one test field's input, target and prediction; a PNG (or any
    format matplotlib infers from ``path``). ``size`` and ``box_size`` (Mpc/h) are the run's.

    >>> import tempfile
    >>> from pathlib import Path
    >>> results = [Result("displacement", name, 1000, 5.0, 0.01, {"k": [0.1, 0.2, 0.3], "T": [0.99, 0.95, 0.8],
    ...                   "r": [0.999, 0.98, 0.9], "relative_squared_error": [0.05]}, 1e-7)
    ...            for name in ("EquivariantUNet", "plain CNN (same graph)")]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     plot_results(results, Path(folder) / "cosmology.png", size=8, box_size=32.0)
    ...     (Path(folder) / "cosmology.png").stat().st_size > 10_000
    True
    """
    from ..plot import field_slice, save_figure, subplots

    tasks = list(dict.fromkeys(r.task for r in results))
    columns = 2 + (3 if example else 0)
    figure, axes = subplots(len(tasks), columns, figsize=(3.8 * columns, 3.4 * len(tasks)))
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
        spacing = task.box_size / task.size  # Mpc/h
        field_slice(delta[0], "0e", vector=None, spacing=spacing, ax=row[2], title="input density contrast")
        if task.irreps_out == "1x1o":  # the displacement: arrows (in-plane part) over the input
            for ax, psi, title in ((row[3], target, "target displacement"), (row[4], prediction, "predicted displacement")):
                field_slice(torch.cat([delta[0], psi[0]]), "0e + 1o", spacing=spacing, every=2, ax=ax, title=f"input and {title}")
        else:
            field_slice(target[0], "0e", vector=None, spacing=spacing, ax=row[3], title=f"target ({task.task})")
            field_slice(prediction[0], "0e", vector=None, spacing=spacing, ax=row[4], title="prediction")
    save_figure(figure, path)
