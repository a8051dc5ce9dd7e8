"""Electron densities from the superposition of atomic densities: a held-out test on real DFT densities.

Protocol (atomic units; see :mod:`steerable3d.data.density`):

* molecules: the 73 closed-shell H/C/N/O/F molecules of ASE's G2 collection; a fixed random split (seed
  ``seed``) holds ``test`` of them out, the others form the training pool;
* grid: ``size^3`` voxels of ``spacing`` Bohr centred on the molecule (default 24^3 at 0.7 Bohr, a
  16.8 Bohr box: at least 3 Bohr of vacuum around every atom);
* input: the per-element superposition of free-atom densities (5 ``0e`` channels, voxel averages);
  target: the PBE/6-31G density (voxel averages, integrating to the electron count to 0.1%);
* models (:class:`DensityModel`): ``prediction = superposition * exp(gain * net(asinh(channels / 0.1)))``,
  where ``net`` is an O(3)-equivariant :class:`~steerable3d.models.EquivariantUNet` (16/32/64 channels) or a
  plain MONAI ``UNet`` of a similar size (6/12/24 channels, one residual unit), both with batch norm (in
  eval mode a fixed local operator, whatever the molecule's size), trained the same way (Adam, cosine
  learning rate from ``lr``, batch 2, loss = the NMAE of each molecule), on the first ``n`` molecules of
  the shuffled pool for every ``n`` of the learning curve;
* test conditions: the held-out molecules as ASE gives them, and each rotated by a random rotation about
  its centre (a new DFT density of the rotated molecule);
* score: NMAE ``sum |pred - target| / sum |target|`` per molecule, averaged over the held-out molecules;
  the superposition itself is the baseline.

Inputs and targets are computed once and cached (``cache=``): about 4 minutes of PySCF on 2 cores.

The public API: :class:`DensitySet`, :func:`make_set`, :func:`split_names` and :func:`load_or_make_sets`
(the data), :class:`DensityModel` and :func:`build_models` (the networks), :func:`train_model`,
:func:`evaluate` and :func:`grid_error` (the steps of one run), :func:`run` (the whole protocol) and its
:class:`Result` records, :func:`format_table`, :func:`save_results`, :func:`load_results` and
:func:`plot_results`. ``steerable3d density`` (:mod:`steerable3d.cli`) runs it from the command line.
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

from .._files import atomic_path
from ..data.atoms import atomic_superposition, centred_grid
from ..data.density import ELEMENTS, dft_density, g2_molecules
from ..models import EquivariantUNet
from ..symmetry import random_rotations
from ..testing import equivariance_error
from ._results import load_records, model_label, save_records
from ._training import check_average, checkpoint_path, train_steps

__all__ = [
    "DensitySet", "make_set", "load_or_make_sets", "split_names", "DensityModel", "build_models", "train_model",
    "evaluate", "grid_error", "Result", "run", "format_table", "save_results", "load_results", "plot_results",
]

SCALE = 0.1  # electrons / Bohr^3: inputs are compressed by asinh(x / SCALE), the network's output times it


@dataclass
class DensitySet:
    """Molecules on a common grid: ``inputs [M, len(ELEMENTS), N, N, N]`` (per-element superposition of
    atomic densities), ``targets [M, 1, N, N, N]`` (DFT), both float32 voxel averages in electrons /
    Bohr^3; ``rotations [M, 3, 3]`` applied to each molecule about its centre; ``electrons [M]``; ``spacing``
    the voxel size in Bohr; ``shifts [M, 3]`` the moves in Bohr applied after the rotations (zeros when not
    given). :func:`make_set` computes one; a toy one (not a molecule):

    >>> x = torch.linspace(-3, 3, 8)
    >>> blob = torch.exp(-(x[:, None, None] ** 2 + x[None, :, None] ** 2 + x[None, None, :] ** 2))
    >>> inputs = torch.rand(4, 5, 1, 1, 1, generator=torch.Generator().manual_seed(0)) * blob  # [4, 5, 8, 8, 8]
    >>> data = DensitySet(["a", "b", "c", "d"], inputs, 1.25 * inputs.sum(1, keepdim=True), torch.eye(3).expand(4, 3, 3),
    ...                   torch.tensor([2, 2, 2, 2]), 1.0)
    >>> len(data), data.superposition().shape, data.shifts.shape
    (4, torch.Size([4, 1, 8, 8, 8]), torch.Size([4, 3]))
    >>> bool(torch.allclose(data.targets, 1.25 * data.superposition()))
    True
    """

    names: list[str]
    inputs: torch.Tensor
    targets: torch.Tensor
    rotations: torch.Tensor
    electrons: torch.Tensor
    spacing: float
    shifts: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.shifts is None:
            self.shifts = torch.zeros(len(self.names), 3, dtype=torch.float64)

    def __len__(self) -> int:
        return len(self.names)

    def superposition(self) -> torch.Tensor:
        """The baseline prediction ``[M, 1, N, N, N]``: the sum of the element channels."""
        return self.inputs.sum(1, keepdim=True)


def make_set(names: Sequence[str], size: int, spacing: float, rotations: torch.Tensor | None = None, *,
             shifts: torch.Tensor | None = None, basis: str = "6-31g", xc: str = "pbe", progress: Callable | None = None,
             description: str = "DFT") -> DensitySet:
    """DFT targets and superposition inputs of the G2 molecules ``names`` (optionally each rotated by
    ``rotations [M, 3, 3]`` about its centre, then moved by ``shifts [M, 3]`` Bohr) on the centred grid
    ``size^3`` x ``spacing`` Bohr (PySCF and ASE; a second or so for a small molecule on a small grid).

    >>> data = make_set(["H2"], 8, 1.5)
    >>> data.names, data.inputs.shape, data.targets.shape, data.electrons.tolist()
    (['H2'], torch.Size([1, 5, 8, 8, 8]), torch.Size([1, 1, 8, 8, 8]), [2])
    >>> voxel = 1.5**3  # Bohr^3: voxel averages times the voxel volume integrate to the electrons
    >>> abs(float(data.targets.sum()) * voxel - 2) < 0.01, abs(float(data.superposition().sum()) * voxel - 2) < 0.05
    (True, True)

    A shift of one whole voxel along x moves both fields by one voxel (their values away from the border are
    the same, one voxel over):

    >>> moved = make_set(["H2"], 8, 1.5, shifts=torch.tensor([[1.5, 0.0, 0.0]]))
    >>> bool(torch.allclose(moved.targets[..., 1:, :, :], data.targets[..., :-1, :, :], atol=1e-6))
    True
    >>> bool(torch.allclose(moved.inputs[..., 1:, :, :], data.inputs[..., :-1, :, :], atol=1e-6))
    True
    """
    molecules = g2_molecules()
    rotations = torch.eye(3, dtype=torch.float64).expand(len(names), 3, 3) if rotations is None else rotations.to(torch.float64)
    shifts = torch.zeros(len(names), 3, dtype=torch.float64) if shifts is None else torch.as_tensor(shifts, dtype=torch.float64)
    if rotations.shape != (len(names), 3, 3) or shifts.shape != (len(names), 3):
        raise ValueError(f"rotations and shifts: expected [{len(names)}, 3, 3] and [{len(names)}, 3] for {len(names)} molecules, "
                         f"got {tuple(rotations.shape)} and {tuple(shifts.shape)}")
    origin, axes = centred_grid(size, spacing)
    inputs, targets, electrons = [], [], []
    for name, rotation, shift in zip(progress(names, desc=description, leave=False) if progress else names, rotations, shifts):
        numbers, positions = molecules[name]
        positions = positions @ rotation.T + shift
        targets.append(dft_density(numbers, positions, size, spacing, basis=basis, xc=xc)[None])
        inputs.append(atomic_superposition(numbers, positions, ELEMENTS, origin, axes, (size,) * 3, basis=basis))
        electrons.append(int(numbers.sum()))
    return DensitySet(list(names), torch.stack(inputs).float(), torch.stack(targets).float(), rotations.clone(),
                      torch.tensor(electrons), spacing, shifts.clone())


def split_names(test: int = 16, seed: int = 0) -> tuple[list[str], list[str]]:
    """``(pool, held_out)``: the G2 molecule names shuffled with ``seed``; the last ``test`` are held out.

    >>> pool, held_out = split_names(test=16, seed=0)
    >>> len(pool), len(held_out), set(pool).isdisjoint(held_out)
    (57, 16, True)
    >>> split_names(test=16, seed=0) == (pool, held_out)
    True
    """
    names = list(g2_molecules())
    if not 1 <= test < len(names):
        raise ValueError(f"test: expected 1 to {len(names) - 1} held-out molecules, got {test!r}")
    order = torch.randperm(len(names), generator=torch.Generator().manual_seed(seed)).tolist()
    shuffled = [names[i] for i in order]
    return shuffled[:-test], shuffled[-test:]


def load_or_make_sets(size: int = 24, spacing: float = 0.7, test: int = 16, seed: int = 0, cache: str | Path | None = None,
                      progress: Callable | None = None, log: Callable[[str], None] = print, pool: int | None = None,
                      copies: int = 0) -> dict[str, DensitySet]:
    """The three sets of the protocol, ``{"train": pool, "test": held out, "rotated": held out rotated}``,
    read from ``cache`` when it holds the same settings, else computed (and written there atomically).
    ``pool`` keeps only the first molecules of the training pool (quick runs). With ``copies`` K > 0 a
    fourth set, ``"copies"``, holds K more training samples per pool molecule (molecule-major: molecule
    ``i``'s copies are ``K i`` to ``K i + K - 1``): each a new DFT density of the molecule turned by a
    random rotation about its centre and moved by a random shift within one voxel, so that the net sees
    the molecule's atoms at other places and angles relative to the grid than the grid's symmetries give.
    A quick example: the seed 26 holds out H2 and puts NH3 first in the pool (three small DFT runs).

    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     cache = Path(folder) / "sets.pt"
    ...     sets = load_or_make_sets(8, 1.5, test=1, seed=26, cache=cache, pool=1, log=lambda line: None)
    ...     again = load_or_make_sets(8, 1.5, test=1, seed=26, cache=cache, pool=1)
    density sets read from .../sets.pt
    >>> {name: data.names for name, data in sets.items()}
    {'train': ['NH3'], 'test': ['H2'], 'rotated': ['H2']}
    >>> bool(torch.equal(again["rotated"].targets, sets["rotated"].targets)), sets["test"].inputs.shape
    (True, torch.Size([1, 5, 8, 8, 8]))
    """
    if pool is not None and (isinstance(pool, bool) or not isinstance(pool, int) or pool < 1):
        raise ValueError(f"pool: expected None or a positive number of training molecules, got {pool!r}")
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 0:
        raise ValueError(f"copies: expected a count of rotated and shifted copies per training molecule (0 or more), got {copies!r}")
    settings = {"size": size, "spacing": spacing, "test": test, "seed": seed, "basis": "6-31g", "xc": "pbe", "pool": pool}
    if copies:  # absent when 0, so that caches written before copies existed stay valid
        settings["copies"] = copies
    if cache is not None and Path(cache).exists():
        stored = torch.load(cache, weights_only=False)
        if stored.get("settings") == settings:
            log(f"density sets read from {cache}")
            sets = {k: DensitySet(**v) for k, v in stored["sets"].items()}
            if copies and "shifts" not in stored["sets"]["copies"]:  # a cache written before sets kept their shifts
                sets["copies"].shifts = _copy_shifts(len(sets["copies"]), spacing, seed)
            return sets
        log(f"{cache} holds other settings ({stored.get('settings')}); recomputing")
    names, held_out = split_names(test, seed)
    names = names[:pool]
    start = time.perf_counter()
    sets = {
        "train": make_set(names, size, spacing, progress=progress, description="DFT, training pool"),
        "test": make_set(held_out, size, spacing, progress=progress, description="DFT, held out"),
        "rotated": make_set(held_out, size, spacing, random_rotations(len(held_out), seed=seed + 1), progress=progress,
                            description="DFT, held out rotated"),
    }
    if copies:
        sets["copies"] = make_set([name for name in names for _ in range(copies)], size, spacing,
                                  random_rotations(copies * len(names), seed=seed + 2),
                                  shifts=_copy_shifts(copies * len(names), spacing, seed), progress=progress,
                                  description="DFT, rotated and shifted training copies")
    log(f"{sum(len(data) for data in sets.values())} DFT densities in {time.perf_counter() - start:.0f} s")
    if cache is not None:
        with atomic_path(cache) as temporary:
            torch.save({"settings": settings, "sets": {k: dataclasses.asdict(v) for k, v in sets.items()}}, temporary)
    return sets


def _copy_shifts(count: int, spacing: float, seed: int) -> torch.Tensor:
    """The moves ``[count, 3]`` (Bohr, uniform within one voxel) of the training copies drawn with ``seed``."""
    generator = torch.Generator().manual_seed(seed + 2)
    return (torch.rand(count, 3, generator=generator, dtype=torch.float64) - 0.5) * spacing


class DensityModel(torch.nn.Module):
    """``prediction = superposition * exp(gain * net(asinh(inputs / SCALE)))``: a correction factor to the
    superposition of atomic densities. ``[B, E, X, Y, Z] -> [B, 1, X, Y, Z]`` (electrons / Bohr^3).

    ``asinh`` compresses the four decades between core and valence densities; a factor keeps the density
    positive and the vacuum empty, and spans the orders of magnitude by which free-atom tails differ from
    molecular ones. The scalar ``gain`` starts at 0, so training starts from the superposition. Every
    step acts voxel by voxel on scalar channels, so the model is as equivariant as ``net``.

    >>> from steerable3d.models import EquivariantUNet
    >>> model = DensityModel(EquivariantUNet(3, 5, 1, (12,), (), parity=True))
    >>> inputs = torch.rand(2, 5, 8, 8, 8)
    >>> model(inputs).shape, bool(torch.allclose(model(inputs), inputs.sum(1, keepdim=True)))  # gain 0: the superposition
    (torch.Size([2, 1, 8, 8, 8]), True)

    With ``conserve_charge``, each prediction is then scaled to hold the electrons of its input (the sum of
    the superposition over the grid, which holds the molecule's count to about 0.03%): the network decides
    where the electrons go, not how many there are. The grid sum is invariant under the grid's symmetries,
    so the scale keeps the model as equivariant as ``net``; with ``gain`` 0 it is exactly 1.

    >>> model = DensityModel(EquivariantUNet(3, 5, 1, (12,), (), parity=True), conserve_charge=True)
    >>> with torch.no_grad():
    ...     _ = model.gain.fill_(1.0)  # as after training: the network moves the density
    ...     prediction = model(inputs)
    >>> torch.allclose(prediction.sum(dim=(1, 2, 3, 4)), inputs.sum(dim=(1, 2, 3, 4)), rtol=1e-5)
    True
    """

    def __init__(self, net: torch.nn.Module, elements: int = len(ELEMENTS), conserve_charge: bool = False) -> None:
        super().__init__()
        if not isinstance(conserve_charge, bool):
            raise TypeError(f"conserve_charge: expected True or False, got {conserve_charge!r}")
        self.net = net
        self.gain = torch.nn.Parameter(torch.zeros(()))
        self.conserve_charge = conserve_charge
        self.irreps_in = f"{elements}x0e"
        self.irreps_out = "1x0e"

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        guess = inputs.sum(1, keepdim=True)
        prediction = guess * torch.exp(self.gain * self.net(torch.asinh(inputs / SCALE)))
        if not self.conserve_charge:
            return prediction
        grid = (2, 3, 4)
        electrons, predicted = guess.sum(grid, keepdim=True), prediction.sum(grid, keepdim=True)
        # an empty input predicts an empty density: 0 / 0 there is left at scale 1
        return prediction * torch.where(predicted > 0, electrons / predicted.clamp_min(torch.finfo(predicted.dtype).tiny), 1.0)

    def extra_repr(self) -> str:
        return f"conserve_charge={self.conserve_charge}"


def build_models(spacing: float = 0.7, conserve_charge: bool = False) -> dict[str, Callable[[], DensityModel]]:
    """The two networks, by name (constructors, so each run starts from its own seed): :class:`DensityModel`
    around an :class:`~steerable3d.models.EquivariantUNet` with kernels for voxels of ``spacing`` Bohr, and
    around a MONAI ``UNet``; both scale their predictions to the input's electrons with ``conserve_charge``.

    >>> constructors = build_models(spacing=1.5)
    >>> list(constructors)
    ['EquivariantUNet', 'MONAI UNet']
    >>> model = constructors["MONAI UNet"]().eval()
    >>> model(torch.rand(1, 5, 8, 8, 8)).shape
    torch.Size([1, 1, 8, 8, 8])
    """
    from monai.networks.nets import UNet

    elements = len(ELEMENTS)
    return {
        "EquivariantUNet": lambda: DensityModel(
            EquivariantUNet(3, elements, 1, (16, 32, 64), (2, 2), parity=True, spacing=spacing, norm="batch"),
            conserve_charge=conserve_charge),
        "MONAI UNet": lambda: DensityModel(UNet(3, elements, 1, (6, 12, 24), (2, 2), num_res_units=1, norm="batch"),
                                           conserve_charge=conserve_charge),
    }


def _batch_nmae(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-molecule NMAE ``[B]`` of ``[B, 1, X, Y, Z]`` fields."""
    return (prediction - target).abs().flatten(1).sum(1) / target.abs().flatten(1).sum(1)


def train_model(model: DensityModel, data: DensitySet, count: int, steps: int, *, batch_size: int = 2, lr: float = 3e-3,
                seed: int = 0, progress: Callable | None = None, description: str = "train",
                copies: DensitySet | None = None, **checkpointing) -> tuple[list[float], float]:
    """Adam with a cosine learning rate on the first ``count`` molecules of ``data``, loss the mean
    per-molecule NMAE of a random batch. ``copies`` (the ``"copies"`` set of :func:`load_or_make_sets`, K
    per molecule of ``data``, molecule-major) adds the K copies of each of those molecules to the samples
    batches are drawn from. ``checkpointing`` (``checkpoint``, ``checkpoint_every``,
    ``config``, ``stop_after``, ``average``) goes to ``steerable3d.workflows._training.train_steps``, which
    keeps the run in a file and resumes it exactly, and with ``average`` (a decay such as 0.999) ends with a
    moving average of the weights of the second half of the steps.
    Leaves ``model`` in eval mode. Returns (losses, one per step, and seconds). Here
    on a toy set whose target is 1.25 times the superposition:

    >>> from steerable3d.models import EquivariantUNet
    >>> x = torch.linspace(-3, 3, 8)
    >>> blob = torch.exp(-(x[:, None, None] ** 2 + x[None, :, None] ** 2 + x[None, None, :] ** 2))
    >>> inputs = torch.rand(4, 5, 1, 1, 1, generator=torch.Generator().manual_seed(0)) * blob  # [4, 5, 8, 8, 8]
    >>> data = DensitySet(["a", "b", "c", "d"], inputs, 1.25 * inputs.sum(1, keepdim=True), torch.eye(3).expand(4, 3, 3),
    ...                   torch.tensor([2, 2, 2, 2]), 1.0)
    >>> _ = torch.manual_seed(0)
    >>> model = DensityModel(EquivariantUNet(3, 5, 1, (12,), (), parity=True))
    >>> losses, seconds = train_model(model, data, count=4, steps=20)
    >>> len(losses), round(losses[0], 4), sum(losses[-5:]) < sum(losses[:5])  # it starts at the superposition's NMAE
    (20, 0.2, True)
    """
    inputs, targets = data.inputs[:count], data.targets[:count]
    if copies is not None:
        per_molecule = len(copies) // len(data)
        if per_molecule < 1 or len(copies) != per_molecule * len(data) or copies.names[::per_molecule] != data.names:
            raise ValueError(f"copies: expected K >= 1 copies of each of the {len(data)} molecules of data, molecule-major, "
                             f"got {len(copies)} samples named {copies.names[:4]}...")
        inputs = torch.cat([inputs, copies.inputs[: count * per_molecule]])
        targets = torch.cat([targets, copies.targets[: count * per_molecule]])

    def batch_loss(generator: torch.Generator) -> torch.Tensor:
        picks = torch.randint(len(inputs), (batch_size,), generator=generator)
        return _batch_nmae(model(inputs[picks]), targets[picks]).mean()

    return train_steps(model, batch_loss, steps, lr=lr, seed=seed, progress=progress, description=description, metric="nmae",
                       **checkpointing)


@torch.no_grad()
def evaluate(predict: Callable[[torch.Tensor], torch.Tensor], data: DensitySet, batch_size: int = 4) -> list[float]:
    """Per-molecule NMAE of ``predict`` (inputs ``[B, E, ...]`` -> densities ``[B, 1, ...]``) on ``data``:
    ``sum |prediction - target| / sum |target|``, a fraction (0 is exact). Here the superposition baseline on
    a toy set whose target is 1.25 times it:

    >>> x = torch.linspace(-3, 3, 8)
    >>> blob = torch.exp(-(x[:, None, None] ** 2 + x[None, :, None] ** 2 + x[None, None, :] ** 2))
    >>> inputs = torch.rand(4, 5, 1, 1, 1, generator=torch.Generator().manual_seed(0)) * blob  # [4, 5, 8, 8, 8]
    >>> data = DensitySet(["a", "b", "c", "d"], inputs, 1.25 * inputs.sum(1, keepdim=True), torch.eye(3).expand(4, 3, 3),
    ...                   torch.tensor([2, 2, 2, 2]), 1.0)
    >>> [round(nmae, 6) for nmae in evaluate(lambda inputs: inputs.sum(1, keepdim=True), data)]
    [0.2, 0.2, 0.2, 0.2]
    """
    scores = []
    for start in range(0, len(data), batch_size):
        chunk = slice(start, start + batch_size)
        scores += _batch_nmae(predict(data.inputs[chunk]), data.targets[chunk]).tolist()
    return scores


def grid_error(model: torch.nn.Module, inputs: torch.Tensor, parity: bool = True) -> float:
    """Largest ``max |f(g x) - g f(x)| / max |g f(x)|`` over the grid symmetries ``g`` (48 with ``parity``,
    else 24), for inputs ``[B, E, X, Y, Z]`` (:func:`~steerable3d.testing.equivariance_error`, in eval
    mode); float rounding (about 1e-7) for an equivariant model.

    >>> from steerable3d.models import EquivariantUNet
    >>> _ = torch.manual_seed(0)
    >>> model = DensityModel(EquivariantUNet(3, 5, 1, (12,), (), parity=True))
    >>> with torch.no_grad():
    ...     _ = model.gain.fill_(1.0)  # as after training: the network's correction counts
    >>> grid_error(model, torch.rand(2, 5, 8, 8, 8)) < 1e-5
    True
    """
    model.eval()
    return max(equivariance_error(model, inputs, f"{inputs.shape[1]}x0e", "1x0e", parity=parity).values())


@dataclass
class Result:
    """One row of :func:`run`: a network trained on ``molecules`` molecules (0 for the superposition
    baseline), its ``parameters`` (count), ``train_seconds``, ``final_loss`` (training NMAE of the last 20
    steps, a fraction), ``nmae`` per test condition (one fraction per held-out molecule), ``grid_error``
    (relative, see :func:`grid_error`; NaN for the baseline), ``copies`` (rotated and shifted training
    copies per molecule, see :func:`load_or_make_sets`), ``train_seed`` (the seed of the network's initial
    weights and batches; None for the baseline, which trains nothing), ``average`` (the decay of the
    moving average of the weights the network ends with; None for the last step's weights) and
    ``conserve_charge`` (whether the network scaled its predictions to the input's electrons, see
    :class:`DensityModel`; False for the baseline and for records written before the option existed).

    >>> r = Result("EquivariantUNet", 16, 17000, 60.0, 0.03, {"held out": [0.05, 0.07], "held out, rotated": [0.05, 0.07]}, 1e-7)
    >>> r.model, round(sum(r.nmae["held out"]) / len(r.nmae["held out"]), 6)
    ('EquivariantUNet', 0.06)
    """

    model: str
    molecules: int
    parameters: int
    train_seconds: float
    final_loss: float
    nmae: dict[str, list[float]] = field(default_factory=dict)
    grid_error: float = math.nan
    copies: int = 0
    train_seed: int | None = None
    average: float | None = None
    conserve_charge: bool = False


def run(sizes: Sequence[int] = (4, 16, 57), steps: int = 2000, size: int = 24, spacing: float = 0.7, test: int = 16,
        seed: int = 0, cache: str | Path | None = None, progress: Callable | None = None,
        log: Callable[[str], None] = print, trained: dict | None = None, pool: int | None = None,
        models: Callable[[float], dict[str, Callable[[], torch.nn.Module]]] | None = None, copies: int = 0,
        checkpoints: str | Path | None = None, train_seed: int | None = None, average: float | None = None,
        conserve_charge: bool = False) -> list[Result]:
    """The whole protocol: the baseline and, for every training-set size of ``sizes``, both networks
    (``steps`` training steps; grids of ``size^3`` voxels of ``spacing`` Bohr; the sets of
    :func:`load_or_make_sets`). With a dict ``trained``, it receives ``"sets"`` and, per network name, the
    model trained on the most molecules (for :func:`plot_results`). ``models`` maps the spacing to the
    networks' constructors (default :func:`build_models`, the protocol's; smaller ones make a quick run).
    ``copies`` K > 0 trains every network also on K rotated and shifted copies of each of its molecules.
    With a folder ``checkpoints``, every training run keeps a checkpoint there (``{network}-n{size}.pt``,
    every 100 steps) and a rerun with the same options resumes it, or only evaluates a finished one.
    ``train_seed`` (default ``seed``) seeds the networks' initial weights and their batches alone: the split,
    the rotations and the copies stay those of ``seed``, so that runs with several training seeds measure
    the spread of training on the same data. With ``average`` (a decay such as 0.999), every network ends
    with a moving average of its weights and batch-norm statistics over the second half of its steps.
    ``conserve_charge`` builds the protocol's networks with the scale to the input's electrons
    (:class:`DensityModel`); networks from ``models`` carry their own setting, which their records report.
    Returns the baseline's :class:`Result`, then one per training-set size and network.

    >>> from steerable3d.models import EquivariantUNet
    >>> def small(spacing):
    ...     return {"small U-Net": lambda: DensityModel(EquivariantUNet(3, 5, 1, (12,), (), parity=True, spacing=spacing))}
    >>> results = run(sizes=(1,), steps=2, size=8, spacing=1.5, test=1, seed=26, pool=1, log=lambda line: None, models=small)
    >>> [(r.model, r.molecules) for r in results]
    [('superposition of atoms', 0), ('small U-Net', 1)]
    >>> sorted(results[1].nmae), results[1].grid_error < 1e-5
    (['held out', 'held out, rotated'], True)
    """
    check_average(average)  # before the DFT densities, which can take minutes
    if conserve_charge and models is not None:
        raise ValueError("conserve_charge: it builds the protocol's own networks; with models, build each "
                         "DensityModel(..., conserve_charge=True) there instead")
    constructors = models(spacing) if models is not None else build_models(spacing, conserve_charge)
    sets = load_or_make_sets(size, spacing, test, seed, cache, progress, log, pool, copies)
    if trained is not None:
        trained["sets"] = sets
    training = sets["train"]
    if max(sizes) > len(training) or min(sizes) < 1:
        raise ValueError(f"sizes: expected training-set sizes from 1 to {len(training)} (the pool), got {list(sizes)}")
    conditions = {"held out": sets["test"], "held out, rotated": sets["rotated"]}
    results = [Result("superposition of atoms", 0, 0, 0.0, math.nan,
                      {k: evaluate(lambda x: x.sum(1, keepdim=True), v) for k, v in conditions.items()})]
    log(f"superposition baseline: NMAE {100 * np.mean(results[0].nmae['held out']):.2f}%")
    train_seed = seed if train_seed is None else train_seed
    for n in sizes:
        for name, build in constructors.items():
            torch.manual_seed(train_seed)
            model = build()
            charge = getattr(model, "conserve_charge", False)
            config = {"network": name, "molecules": n, "size": size, "spacing": spacing, "test": test, "pool": pool, "copies": copies}
            if charge:  # absent otherwise, so that checkpoints written before the option existed still resume
                config["conserve_charge"] = True
            losses, seconds = train_model(model, training, n, steps, seed=train_seed, progress=progress, description=f"{name} n={n}",
                                          copies=sets.get("copies"), checkpoint=checkpoint_path(checkpoints, name, f"n{n}"),
                                          config=config, average=average)
            result = Result(name, n, sum(p.numel() for p in model.parameters()), seconds, float(np.mean(losses[-20:])),
                            {k: evaluate(model, v) for k, v in conditions.items()},
                            grid_error(model, sets["test"].inputs[:2]), copies, train_seed, average, charge)
            results.append(result)
            if trained is not None and n == max(sizes):
                trained[name] = model
            log(f"{name} n={n}: train NMAE {100 * result.final_loss:.2f}%, {seconds:.0f} s, held-out NMAE " +
                ", ".join(f"{k} {100 * np.mean(v):.2f}%" for k, v in result.nmae.items()) + f", grid error {result.grid_error:.1e}")
    return results


def format_table(results: Sequence[Result]) -> str:
    """Markdown table: held-out NMAE (mean +- std over molecules, %) per model and training-set size.

    >>> nmae = {"held out": [0.1, 0.12], "held out, rotated": [0.1, 0.12]}
    >>> results = [Result("superposition of atoms", 0, 0, 0.0, math.nan, nmae),
    ...            Result("EquivariantUNet", 4, 17000, 60.0, 0.05, {"held out": [0.05, 0.07], "held out, rotated": [0.05, 0.07]}, 1e-7),
    ...            Result("MONAI UNet", 4, 20000, 40.0, 0.04, {"held out": [0.06, 0.08], "held out, rotated": [0.09, 0.11]}, 0.2),
    ...            Result("EquivariantUNet", 4, 17000, 61.0, 0.04, {"held out": [0.04, 0.06], "held out, rotated": [0.05, 0.05]}, 2e-7, 3, 0, 0.999),
    ...            Result("EquivariantUNet", 4, 17000, 62.0, 0.04, {"held out": [0.03, 0.05], "held out, rotated": [0.04, 0.04]}, 3e-7,
    ...                   conserve_charge=True)]
    >>> print(format_table(results))
    | model | training molecules | parameters | NMAE held out (%) | NMAE held out, rotated (%) | grid-symmetry error | training time |
    |---|---|---|---|---|---|---|
    | superposition of atoms |  |  | 11.00 +- 1.00 | 11.00 +- 1.00 |  |  |
    | EquivariantUNet | 4 | 17000 | 6.00 +- 1.00 | 6.00 +- 1.00 | 1.0e-07 | 60 s |
    | MONAI UNet | 4 | 20000 | 7.00 +- 1.00 | 10.00 +- 1.00 | 2.0e-01 | 40 s |
    | EquivariantUNet, weights averaged (0.999) | 4 (+ 3 copies each) | 17000 | 5.00 +- 1.00 | 5.00 +- 0.00 | 2.0e-07 | 61 s |
    | EquivariantUNet, charge conserved | 4 | 17000 | 4.00 +- 1.00 | 4.00 +- 0.00 | 3.0e-07 | 62 s |
    """
    conditions = list(results[0].nmae)
    lines = ["| model | training molecules | parameters | " + " | ".join(f"NMAE {c} (%)" for c in conditions) +
             " | grid-symmetry error | training time |", "|---" * (5 + len(conditions)) + "|"]
    for r in results:
        cells = [f"{100 * np.mean(r.nmae[c]):.2f} +- {100 * np.std(r.nmae[c]):.2f}" for c in conditions]
        error = "" if math.isnan(r.grid_error) else f"{r.grid_error:.1e}"
        seconds = f"{r.train_seconds:.0f} s" if r.train_seconds else ""
        molecules = f"{r.molecules} (+ {r.copies} copies each)" if r.copies else f"{r.molecules or ''}"
        label = model_label(r.model, r.average) + (", charge conserved" if r.conserve_charge else "")
        lines.append(f"| {label} | {molecules} | {r.parameters or ''} | " + " | ".join(cells)
                     + f" | {error} | {seconds} |")
    return "\n".join(lines)


def save_results(results: Sequence[Result], path) -> None:
    """Every score as JSON (a list of :class:`Result` fields), written atomically; :func:`load_results` reads it back.

    >>> import tempfile
    >>> from pathlib import Path
    >>> results = [Result("EquivariantUNet", 4, 17000, 60.0, 0.05, {"held out": [0.05], "held out, rotated": [0.06]}, 1e-7)]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     save_results(results, Path(folder) / "density.json")
    ...     load_results(Path(folder) / "density.json") == results
    True
    """
    save_records(results, path)


def load_results(path) -> list[Result]:
    """The :class:`Result` records :func:`save_results` wrote to ``path`` (JSON; the baseline's NaN
    ``final_loss`` and ``grid_error`` come back as NaN).

    >>> import tempfile
    >>> from pathlib import Path
    >>> nmae = {"held out": [0.1, 0.12], "held out, rotated": [0.1, 0.12]}
    >>> results = [Result("superposition of atoms", 0, 0, 0.0, math.nan, nmae),
    ...            Result("EquivariantUNet", 4, 17000, 60.0, 0.05, {"held out": [0.05, 0.07], "held out, rotated": [0.05, 0.07]}, 1e-7),
    ...            Result("MONAI UNet", 4, 20000, 40.0, 0.04, {"held out": [0.06, 0.08], "held out, rotated": [0.09, 0.11]}, 0.2)]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     save_results(results, Path(folder) / "density.json")
    ...     loaded = load_results(Path(folder) / "density.json")
    >>> format_table(loaded) == format_table(results), math.isnan(loaded[0].grid_error)
    (True, True)
    """
    return load_records(Result, path)


def plot_results(results: Sequence[Result], path, example: tuple[DensitySet, DensityModel] | None = None) -> None:
    """Learning curves (held-out NMAE against training molecules; solid unrotated, dashed rotated; the
    baseline as a grey line) and, with ``example = (set, model)``, the central slice of the first
    molecule's target, superposition, prediction and error; a PNG (or any format matplotlib infers from
    ``path``).

    >>> import tempfile
    >>> from pathlib import Path
    >>> nmae = {"held out": [0.1, 0.12], "held out, rotated": [0.1, 0.12]}
    >>> results = [Result("superposition of atoms", 0, 0, 0.0, math.nan, nmae),
    ...            Result("EquivariantUNet", 4, 17000, 60.0, 0.05, {"held out": [0.05, 0.07], "held out, rotated": [0.05, 0.07]}, 1e-7),
    ...            Result("MONAI UNet", 4, 20000, 40.0, 0.04, {"held out": [0.06, 0.08], "held out, rotated": [0.09, 0.11]}, 0.2)]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     plot_results(results, Path(folder) / "density.png")
    ...     (Path(folder) / "density.png").stat().st_size > 10_000
    True
    """
    from ..plot import field_slice, save_figure, subplots

    panels = 5 if example else 1
    figure, axes = subplots(1, panels, figsize=(4 * panels, 3.6))
    curve = axes[0, 0]
    baseline = [r for r in results if not r.molecules]
    for r in baseline:
        curve.axhline(100 * np.mean(r.nmae["held out"]), color="grey", lw=1, label=r.model)
    for colour, model in zip(("C0", "C3"), sorted({r.model for r in results if r.molecules})):
        points = sorted((r for r in results if r.model == model), key=lambda r: r.molecules)
        n = [r.molecules for r in points]
        for style, condition in (("-o", "held out"), ("--s", "held out, rotated")):
            curve.plot(n, [100 * np.mean(r.nmae[condition]) for r in points], style, color=colour, label=f"{model}, {condition}")
    curve.set(xscale="log", yscale="log", xlabel="training molecules", ylabel="held-out NMAE (%)")
    sizes = sorted({r.molecules for r in results if r.molecules})
    curve.set_xticks(sizes, [str(n) for n in sizes], minor=False)
    curve.set_xticks([], minor=True)
    curve.legend(fontsize=7)
    if example:
        data, model = example
        with torch.no_grad():
            prediction = model(data.inputs[:1])[0]
        target, guess = data.targets[0], data.superposition()[0]
        # densities span four decades: shown as asinh(rho / SCALE), the network's own input transform
        images = [(torch.asinh(target / SCALE), "DFT density, asinh"), (torch.asinh(guess / SCALE), "superposition, asinh"),
                  (torch.asinh(prediction / SCALE), "prediction, asinh"), (prediction - target, "prediction - DFT (e/Bohr^3)")]
        for ax, (image, title) in zip(axes[0, 1:], images):
            field_slice(image, "0e", vector=None, spacing=data.spacing, ax=ax, title=f"{data.names[0]}: {title}")
    save_figure(figure, path)
