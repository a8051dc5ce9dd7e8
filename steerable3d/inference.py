"""Sliding-window inference: run a model patch by patch on a volume of any size and blend the patches.

Only one batch of patches is on the model's device at a time; the volume and the stitched output can stay
on the CPU, so device memory is bounded by the patch size whatever the volume size.

Symmetry: the patch corners along each axis are chosen as a set that is symmetric about the volume centre
(``start -> N - P - start``), and the blending window is symmetric too. With cubic volumes and patches
(equal sizes on all axes), an equivariant model therefore gives an equivariant stitched output: the grid
symmetries hold through the stitching, to float rounding.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence, Union

import torch

__all__ = ["patch_starts", "blend_window", "pad_to", "sliding_window"]

Size = Union[int, Sequence[int]]


def patch_starts(size: int, patch: int, overlap: float) -> list[int]:
    """Start indices of the patches along one axis of ``size`` voxels: the first at 0, the last at
    ``size - patch``, consecutive patches overlapping by at least ``overlap`` (a fraction of ``patch``), and
    the set symmetric (``s`` in it iff ``size - patch - s`` is).

    >>> patch_starts(32, 16, 0.5), patch_starts(40, 16, 0.5), patch_starts(16, 16, 0.5)
    ([0, 8, 16], [0, 8, 16, 24], [0])
    """
    if patch >= size:
        return [0]
    step = max(1, math.floor(patch * (1 - overlap)))
    count = math.ceil((size - patch) / step) + 1
    span = size - patch
    # rounding the first half up (and mirroring it) keeps every gap, the middle one too, within the step
    first_half = [math.ceil(k * span / (count - 1)) for k in range((count + 1) // 2)]
    return sorted(set(first_half) | {span - s for s in first_half})


def blend_window(patch_size: Sequence[int], mode: str = "gaussian", sigma_scale: float = 0.125, dtype=torch.float32) -> torch.Tensor:
    """Weights ``[X, Y, Z]`` for blending overlapping patches: ``"constant"`` (all ones) or ``"gaussian"``
    (centred on the patch centre, std ``sigma_scale * patch`` per axis; symmetric under the axis flips).
    Weights are at least 1e-3 of the peak, so every voxel of a patch counts.

    >>> w = blend_window((4, 4, 4))
    >>> bool((w == w.flip(0)).all()), float(w.max()) == 1.0
    (True, True)
    """
    if mode == "constant":
        return torch.ones(tuple(patch_size), dtype=dtype)
    if mode != "gaussian":
        raise ValueError(f"mode: expected 'gaussian' or 'constant', got {mode!r}")
    axes = []
    for n in patch_size:
        offsets = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
        axes.append(torch.exp(-0.5 * (offsets / max(sigma_scale * n, 1e-6)) ** 2))
    window = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    window = window / window.max()
    return window.clamp_min(1e-3).to(dtype)


def pad_to(x: torch.Tensor, shape: Sequence[int]) -> tuple[torch.Tensor, tuple[slice, slice, slice]]:
    """Zero-pad the spatial axes of ``[B, C, X, Y, Z]`` up to ``shape`` (axes already as large stay),
    half before and the rest (one more voxel for odd amounts) after; returns the padded tensor and the
    slices that crop it back.

    >>> padded, crop = pad_to(torch.ones(1, 1, 3, 4, 6), (6, 4, 5))
    >>> padded.shape, crop
    (torch.Size([1, 1, 6, 4, 6]), (slice(1, 4, None), slice(0, 4, None), slice(0, 6, None)))
    """
    extra = [max(m - n, 0) for n, m in zip(x.shape[2:], shape)]
    crop = tuple(slice(e // 2, e // 2 + n) for e, n in zip(extra, x.shape[2:]))
    if any(extra):
        x = torch.nn.functional.pad(x, [v for e in reversed(extra) for v in (e // 2, e - e // 2)])
    return x, crop


def _triple(value: Size, name: str) -> tuple[int, int, int]:
    values = list(value) if isinstance(value, (list, tuple, torch.Size)) else [value] * 3
    if len(values) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        raise ValueError(f"{name}: expected a positive int or three positive ints, got {value!r}")
    return tuple(values)


@torch.no_grad()
def sliding_window(
    model: Callable[[torch.Tensor], torch.Tensor],
    volume: torch.Tensor,
    patch_size: Size,
    *,
    overlap: float = 0.5,
    batch_size: int = 4,
    mode: str = "gaussian",
    sigma_scale: float = 0.125,
    device: Union[str, torch.device, None] = None,
    output_device: Union[str, torch.device, None] = "cpu",
    progress: Callable | None = None,
) -> torch.Tensor:
    """Apply ``model`` to ``volume`` patch by patch and blend the overlapping outputs.

    Args:
        model: maps ``[n, C_in, *patch_size]`` to ``[n, C_out, *patch_size]`` (same spatial size).
        volume: ``[B, C_in, X, Y, Z]`` on any device (the CPU for volumes that do not fit the device).
        patch_size: patch shape; an axis shorter than the patch is padded with zeros symmetrically (by
            ``(P - N) // 2`` before and the rest after) and cropped back.
        overlap: fraction of the patch shared by neighbouring patches, in ``[0, 1)``.
        batch_size: patches per model call.
        mode: blending window, ``"gaussian"`` or ``"constant"`` (see :func:`blend_window`).
        sigma_scale: the Gaussian's std as a fraction of the patch size.
        device: where the model runs (default: the device of its first parameter, else the volume's).
        output_device: where the stitched output lives (default the CPU; ``None``: the volume's device).
        progress: optional ``tqdm``-like wrapper for the loop over patch batches.

    Returns:
        ``[B, C_out, X, Y, Z]`` on ``output_device``, in the model's output dtype.

    Example:
        >>> model = torch.nn.Conv3d(1, 2, 3, padding=1)
        >>> sliding_window(model, torch.randn(1, 1, 20, 20, 20), 8).shape
        torch.Size([1, 2, 20, 20, 20])
    """
    if not isinstance(volume, torch.Tensor) or volume.dim() != 5:
        shape = tuple(volume.shape) if isinstance(volume, torch.Tensor) else type(volume).__name__
        raise ValueError(f"volume: expected a tensor [B, C, X, Y, Z], got {shape}")
    patch = _triple(patch_size, "patch_size")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap: expected a fraction in [0, 1), got {overlap!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    if device is None:
        first = next(iter(model.parameters()), None) if isinstance(model, torch.nn.Module) else None
        device = first.device if first is not None else volume.device
    output_device = volume.device if output_device is None else torch.device(output_device)

    volume, crop = pad_to(volume, patch)
    padded = tuple(volume.shape[2:])
    starts = [patch_starts(n, p, overlap) for n, p in zip(padded, patch)]
    corners = [(b, x, y, z) for b in range(volume.shape[0]) for x in starts[0] for y in starts[1] for z in starts[2]]
    window = blend_window(patch, mode, sigma_scale).to(output_device)

    output = weight = None
    batches = range(0, len(corners), batch_size)
    for first in progress(batches, desc="patches", leave=False) if progress else batches:
        chunk = corners[first : first + batch_size]
        patches = torch.stack([volume[b, :, x : x + patch[0], y : y + patch[1], z : z + patch[2]] for b, x, y, z in chunk])
        predicted = model(patches.to(device))
        if predicted.dim() != 5 or tuple(predicted.shape[2:]) != patch or predicted.shape[0] != len(chunk):
            raise ValueError(
                f"model: expected an output [{len(chunk)}, C, {', '.join(map(str, patch))}] for patches of that size, "
                f"got {tuple(predicted.shape)}"
            )
        predicted = predicted.to(output_device)
        if output is None:
            output = torch.zeros(volume.shape[0], predicted.shape[1], *padded, dtype=predicted.dtype, device=output_device)
            weight = torch.zeros(volume.shape[0], 1, *padded, dtype=predicted.dtype, device=output_device)
            window = window.to(predicted.dtype)
        for (b, x, y, z), values in zip(chunk, predicted):
            region = (b, slice(None), slice(x, x + patch[0]), slice(y, y + patch[1]), slice(z, z + patch[2]))
            output[region] += values * window
            weight[region] += window
    output = output / weight
    return output[(slice(None), slice(None)) + crop]
