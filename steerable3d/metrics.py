"""Metrics for fields and segmentations: NMAE, power spectrum, cross-correlation, transfer function, Dice.

Spectra follow the cosmology convention for a field sampled on ``N^3`` voxels of a periodic box of side
``L`` (volume ``V = L^3``): with ``delta_k`` the unnormalized discrete Fourier transform,
``P(k) = V / N^6 |delta_k|^2``, averaged over the modes in spherical shells of width the fundamental
frequency ``k_f = 2 pi / L``. White noise of variance ``s^2`` then has ``P = s^2 V / N^3`` (the voxel volume
times the variance) at every ``k``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["nmae", "power_spectrum", "cross_spectrum", "cross_correlation", "transfer_function", "dice"]


def nmae(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Normalized mean absolute error ``sum |prediction - target| / sum |target|`` over all elements (a
    0-d tensor). For densities on a grid this is ``integral |rho_pred - rho| / integral |rho|``.

    >>> nmae(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 4.0]))
    tensor(0.4000)
    """
    if prediction.shape != target.shape:
        raise ValueError(f"nmae: expected prediction and target of the same shape, got {tuple(prediction.shape)} and {tuple(target.shape)}")
    denominator = target.abs().sum()
    if float(denominator) == 0:
        raise ValueError("nmae: the target is identically zero")
    return (prediction - target).abs().sum() / denominator


def _check_cube(field: torch.Tensor, name: str) -> int:
    if field.dim() < 3 or not field.shape[-1] == field.shape[-2] == field.shape[-3]:
        raise ValueError(f"{name}: expected a field [..., N, N, N] on a cubic grid, got shape {tuple(field.shape)}")
    return field.shape[-1]


def _shells(n: int, box_size: float, device) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Shell index of every FFT mode (``round(|k| / k_f)``), the wavenumber of every mode, and the number of
    shells reported: 1 .. N/2 (the DC mode and the corners beyond Nyquist are left out)."""
    freq = torch.fft.fftfreq(n, d=1.0 / n, device=device, dtype=torch.float64)  # integer wave numbers
    kx, ky, kz = torch.meshgrid(freq, freq, freq, indexing="ij")
    modulus = torch.sqrt(kx**2 + ky**2 + kz**2)
    return torch.round(modulus).long().flatten(), modulus.flatten() * (2 * math.pi / box_size), n // 2


def cross_spectrum(a: torch.Tensor, b: torch.Tensor, box_size: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Shell-averaged cross power spectrum ``(k, P_ab)`` of two fields ``[..., N, N, N]`` of a periodic box of
    side ``box_size``: ``P_ab = V / N^6 Re(A_k conj(B_k))``, summed over the leading dimensions (the
    components of a vector or tensor field). ``k`` is the mean wavenumber of each shell's modes (shells of
    width ``2 pi / box_size`` centred on its multiples, from the fundamental to Nyquist); float64 tensors
    ``[N // 2]``. Units: ``k`` in radians per length unit of ``box_size`` (h/Mpc for a box in Mpc/h), ``P``
    in that length cubed times the fields' units.

    Shell 1 holds 6 modes at ``k_f`` and 12 at ``sqrt(2) k_f``, so its ``k`` is ``(6 + 12 sqrt 2) / 18 k_f``;
    with ``b`` independent of ``a`` (white noise, unit voxels, ``P_aa = 1``), ``P_a,2a+b`` is about 2:

    >>> a, b = torch.randn(2, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> k, p = cross_spectrum(a, 2 * a + b, box_size=16.0)
    >>> k.shape, round(float(k[0]) / (2 * math.pi / 16), 3), round(float(p.mean()))
    (torch.Size([8]), 1.276, 2)
    """
    if a.shape != b.shape:
        raise ValueError(f"cross_spectrum: expected two fields of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    n = _check_cube(a, "field")
    if not box_size > 0:
        raise ValueError(f"box_size: expected a positive length, got {box_size!r}")
    fa = torch.fft.fftn(a.to(torch.float64), dim=(-3, -2, -1)).reshape(-1, n**3)
    fb = fa if b is a else torch.fft.fftn(b.to(torch.float64), dim=(-3, -2, -1)).reshape(-1, n**3)
    power = (fa * fb.conj()).real.sum(0) * (box_size**3 / n**6)
    shell, k, shells = _shells(n, box_size, a.device)
    keep = (shell >= 1) & (shell <= shells)
    counts = torch.zeros(shells + 1, dtype=torch.float64, device=a.device).index_add_(0, shell[keep], torch.ones_like(k[keep]))
    total = torch.zeros_like(counts).index_add_(0, shell[keep], power[keep])
    k_sum = torch.zeros_like(counts).index_add_(0, shell[keep], k[keep])
    return (k_sum / counts)[1:], (total / counts)[1:]


def power_spectrum(field: torch.Tensor, box_size: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Shell-averaged power spectrum ``(k, P)`` of ``field`` ``[..., N, N, N]`` (leading dimensions summed,
    e.g. the three components of a displacement), ``P = V / N^6 |FFT(field)|^2``; see :func:`cross_spectrum`.

    >>> k, p = power_spectrum(torch.randn(3, 32, 32, 32), box_size=32.0)   # white noise, unit voxels
    >>> k.shape, round(float(p.mean()))                                   # 3 components of variance 1
    (torch.Size([16]), 3)
    """
    return cross_spectrum(field, field, box_size)


def cross_correlation(a: torch.Tensor, b: torch.Tensor, box_size: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(k, r)`` with ``r(k) = P_ab / sqrt(P_aa P_bb)`` per shell (1 where ``b`` is ``a`` times a positive
    number, about 0 for independent fields).

    >>> a, b = torch.randn(2, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> k, r = cross_correlation(a, 3 * a, box_size=16.0)
    >>> _, r_noisy = cross_correlation(a, a + b, box_size=16.0)  # independent noise of equal power
    >>> torch.allclose(r, torch.ones_like(r)), round(float(r_noisy.mean()), 1)  # 1 and about 1 / sqrt 2
    (True, 0.7)
    """
    k, p_ab = cross_spectrum(a, b, box_size)
    _, p_aa = power_spectrum(a, box_size)
    _, p_bb = power_spectrum(b, box_size)
    return k, p_ab / torch.sqrt(p_aa * p_bb)


def transfer_function(prediction: torch.Tensor, target: torch.Tensor, box_size: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(k, T)`` with ``T(k) = sqrt(P_prediction / P_target)`` per shell (1 for the right amplitude).

    Half the amplitude gives 0.5 at every ``k``; adding independent noise of the target's power gives about
    ``sqrt 2``, though such a prediction is no better (see :func:`cross_correlation`):

    >>> target, noise = torch.randn(2, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> k, t = transfer_function(0.5 * target, target, box_size=16.0)
    >>> _, t_noisy = transfer_function(target + noise, target, box_size=16.0)
    >>> torch.allclose(t, torch.full_like(t, 0.5)), round(float(t_noisy.mean()), 1)
    (True, 1.4)
    """
    k, p_pred = power_spectrum(prediction, box_size)
    _, p_true = power_spectrum(target, box_size)
    return k, torch.sqrt(p_pred / p_true)


def dice(prediction: torch.Tensor, target: torch.Tensor, classes: int, mask: torch.Tensor | None = None) -> list[float]:
    """Dice ``2 |P & T| / (|P| + |T|)`` of each foreground class ``1 .. classes - 1`` for label maps of equal
    shape, counted inside ``mask`` (boolean, same shape) if given. A class absent from both maps gives NaN;
    absent from one only, 0.

    >>> dice(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), classes=3)
    [0.6666666666666666, 0.6666666666666666]
    """
    if prediction.shape != target.shape or (mask is not None and mask.shape != target.shape):
        shapes = [tuple(t.shape) for t in (prediction, target) + ((mask,) if mask is not None else ())]
        raise ValueError(f"dice: expected label maps (and mask) of one shape, got {shapes}")
    scores = []
    for c in range(1, classes):
        p, t = prediction == c, target == c
        if mask is not None:
            p, t = p & mask, t & mask
        total = int(p.sum()) + int(t.sum())
        scores.append(2 * int((p & t).sum()) / total if total else math.nan)
    return scores
