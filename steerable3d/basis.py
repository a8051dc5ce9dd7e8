r"""Continuous steerable kernel basis and its sampling on the kernel lattice.

A steerable kernel maps a field of type ``irreps_in`` to one of type ``irreps_out``. Each basis function
is a *path*: an input irrep ``i``, an output irrep ``o``, a filter order ``l_f`` and a radial shell ``s``:

.. math::

    K^{(o, i, l_f, s)}_{m_o m_i}(\mathbf r) = c \; \phi_s(|\mathbf r|)
        \sum_{m_f} C^{l_i l_f l_o}_{m_i m_f m_o} \, Y^{l_f}_{m_f}(\hat{\mathbf r}),

with ``C`` e3nn's Clebsch-Gordan (Wigner 3j) coefficients and ``Y`` e3nn's real spherical harmonics
(component normalization). ``l_f`` runs over ``|l_i - l_o| .. l_i + l_o``; with ``parity=True`` (O(3)) only
orders with ``p_i p_o == (-1)^l_f`` are kept, with ``parity=False`` (SO(3)) all of them.

**Shells** (physical units, fixed at construction from the spacing given then; ``h = min(spacing)``, kernel
radius ``R = (kernel_size // 2) h``):

* shell 0 is a point mass at the centre, order 0 only: the self-connection. It is the identity at the
  centre tap at any spacing and has no discretization error at all.
* shells ``s = 1 .. R/h`` are Gaussians ``exp(-(r - s h)^2 / (2 (0.6 h)^2))`` at radius ``s h``, times a
  window that is 1 up to ``R`` and falls smoothly (``cos^2``) to 0 at ``R + h``, so that no profile is cut
  by the faces of the kernel cube (the nearest lattice point outside the cube lies at ``R + h``).
* the harmonic order on shell ``s`` is capped at ``floor(4 s / 3)``: 1, 2, 4, 5 on shells 1, 2, 3, 4, so
  the angular wavelength ``2 pi s h / l_f`` is at least 4.7 voxels. A 5^3 kernel carries every
  ``l_f <= 2``, a 7^3 kernel every ``l_f <= 4``.

**Sampling with matched moments.** A continuous filter sampled at the lattice points acts on smooth fields
through its moments ``sum_p K(p) p^a``. Plain point sampling gets them wrong in a way that is not
rotation invariant: for ``l_f >= 2`` the cube splits the irrep (l = 2 into E_g + T_2g) and the two parts
receive different second moments, a leading-order error of several percent. Each sampled basis function is
therefore corrected by the smallest windowed polynomial (weight = the window above) that makes its moments
of total order ``<= 4`` (``<= 2`` for 3^3 kernels) equal the continuous filter's, computed exactly
(Gauss-Legendre on the sphere, fine radial quadrature). The correction is a linear function of
equivariant data, so grid symmetry stays exact; the continuous-rotation error drops by 6-9x against
e3nn's voxel convolution (``docs/benchmarks.md``).

**Normalization.** Samples are the continuous function times the voxel volume (a quadrature of the
convolution integral), so after a change of spacing the same weights sample the same continuous filter.
Each path carries a constant ``c`` fixed at construction so that its sampled kernel has squared Frobenius
norm ``2 l_o + 1``: a weight ``w`` then gives a unit-variance white input an output variance ``w^2`` per
output component.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from e3nn import o3

from ._validation import Spacing, as_irreps, as_spacing

__all__ = ["Shell", "Path", "KernelBasis", "default_shells", "order_cap", "lattice_taps"]

SHELL_WIDTH = 0.6  # Gaussian shell width in voxels of the smallest spacing


@dataclass(frozen=True)
class Shell:
    """A radial shell: Gaussian of standard deviation ``width`` at ``radius`` (physical lengths, the unit of
    the spacing), carrying the harmonic orders ``l_f <= lmax``.

    ``width == 0`` is the point mass at the centre (the self-connection).

    >>> b = KernelBasis("0e", "0e", radius=1.0, spacing=0.5)   # shells every 0.5, width 0.6 voxels
    >>> b.shells
    (Shell(radius=0.0, width=0.0, lmax=0), Shell(radius=0.5, width=0.3, lmax=1),
     Shell(radius=1.0, width=0.3, lmax=2))
    """

    radius: float
    width: float
    lmax: int


@dataclass(frozen=True)
class Path:
    """One basis function: output irrep index ``i_out``, input irrep index ``i_in``, filter order ``l``, shell
    index ``shell`` (into the ``shells`` of :class:`KernelBasis`).

    A scalar reaches a vector only through ``l = 1`` filters, which the centre (order 0 only) cannot carry:

    >>> KernelBasis("0e", "1o", radius=1.0).pair_paths[(0, 0)]
    [Path(i_out=0, i_in=0, l=1, shell=1)]
    """

    i_out: int
    i_in: int
    l: int
    shell: int


def order_cap(shell_index: int) -> int:
    """Largest harmonic order on shell ``s`` (radius ``s`` voxels): ``floor(4 s / 3)``, 0 at the centre.

    The angular wavelength ``2 pi s / l_f`` on shell ``s`` then stays above 4.7 voxels:

    >>> [order_cap(s) for s in range(5)], min(2 * math.pi * s / order_cap(s) for s in range(1, 100)) > 4.7
    ([0, 1, 2, 4, 5], True)
    """
    return (4 * shell_index) // 3


def default_shells(radius: float, unit: float, width: float = SHELL_WIDTH) -> tuple[Shell, ...]:
    """The point mass plus shells at ``unit, 2 unit, ..., radius`` of width ``width * unit``, each with the
    order cap of :func:`order_cap`. ``radius`` and ``unit`` (the smallest voxel size) are physical lengths
    in one unit; ``width`` is in units of ``unit``.

    >>> [(s.radius, s.lmax) for s in default_shells(radius=1.5, unit=0.5)]   # e.g. mm
    [(0.0, 0), (0.5, 1), (1.0, 2), (1.5, 4)]
    """
    count = int(math.floor(radius / unit + 1e-9))
    return (Shell(0.0, 0.0, 0),) + tuple(Shell(s * unit, width * unit, order_cap(s)) for s in range(1, count + 1))


def lattice_taps(radius: float, spacing: Spacing) -> tuple[int, int, int]:
    """Kernel taps per axis: every lattice point within ``radius`` of the centre along that axis.
    ``radius`` and ``spacing`` (one voxel size or three) are physical lengths in one unit.

    >>> lattice_taps(2.0, 1.0), lattice_taps(2.0, (0.5, 1.0, 2.0))   # finer axes get more taps
    ((5, 5, 5), (9, 5, 3))
    """
    return tuple(2 * int(math.floor(radius / h + 1e-9)) + 1 for h in as_spacing(spacing))


def _lattice(radius: float, spacing: tuple[float, float, float]) -> torch.Tensor:
    """Physical positions ``[X, Y, Z, 3]`` of the kernel taps, float64, centred on the middle tap."""
    axes = [(torch.arange(n, dtype=torch.float64) - (n - 1) / 2) * h for n, h in zip(lattice_taps(radius, spacing), spacing)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)


def _window(r: torch.Tensor, inner: float, outer: float) -> torch.Tensor:
    """1 up to ``inner``, a cos^2 ramp down to 0 at ``outer``, 0 beyond."""
    if outer <= inner:
        return (r <= inner).to(r.dtype)
    t = ((r - inner) / (outer - inner)).clamp(0, 1)
    return torch.cos(0.5 * math.pi * t) ** 2


def _monomial_exponents(order: int) -> torch.Tensor:
    """All exponents ``(a, b, c)`` with ``a + b + c <= order``, ``[n_monomials, 3]`` float64."""
    exps = [(a, b, n - a - b) for n in range(order + 1) for a in range(n, -1, -1) for b in range(n - a, -1, -1)]
    return torch.tensor(exps, dtype=torch.float64)


def _monomials(points: torch.Tensor, exps: torch.Tensor) -> torch.Tensor:
    return torch.prod(points[:, None, :] ** exps[None], dim=-1)


def _sphere_quadrature(degree: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Points ``[n, 3]`` and weights ``[n]`` integrating polynomials of degree ``<= degree`` on S^2 exactly."""
    z, wz = np.polynomial.legendre.leggauss(degree // 2 + 1)
    n_phi = degree + 1
    phi = 2 * np.pi * np.arange(n_phi) / n_phi
    zz, pp = np.meshgrid(z, phi, indexing="ij")
    s = np.sqrt(1 - zz**2)
    pts = np.stack([s * np.cos(pp), s * np.sin(pp), zz], -1).reshape(-1, 3)
    weights = np.repeat(wz, n_phi) * (2 * np.pi / n_phi)
    return torch.from_numpy(pts), torch.from_numpy(weights)


class KernelBasis:
    """The continuous basis of steerable kernels ``irreps_in -> irreps_out`` and its sampling on a lattice.

    Args:
        irreps_in, irreps_out: e3nn irreps (strings or ``Irreps``).
        radius: kernel radius in physical units.
        spacing: voxel size at construction (physical, one number or three): fixes the shells and the
            normalization, which do not change when the basis is later sampled at another spacing.
        parity: O(3) selection rule if True, SO(3) (every order) if False.
        width: Gaussian shell width in voxels of ``min(spacing)``.
        max_order: optional global cap on the filter order ``l_f``.
        moment_order: highest total order of matched moments (default 4, or 2 for kernels of radius below
            two voxels); ``-1`` samples the continuous functions plainly.

    Attributes:
        pair_paths: for each pair ``(i_out, i_in)`` in row-major order, its paths (possibly none).
        shells: the radial shells.

    >>> b = KernelBasis("0e + 1o", "0e + 1o", radius=2.0, spacing=1.0)
    >>> [tuple(k.shape) for k in b.sample(1.0)][:2]
    [(3, 1, 1, 5, 5, 5), (2, 1, 3, 5, 5, 5)]
    """

    def __init__(
        self,
        irreps_in,
        irreps_out,
        radius: float,
        spacing: Spacing = 1.0,
        *,
        parity: bool = True,
        width: float = SHELL_WIDTH,
        max_order: int | None = None,
        moment_order: int | None = None,
    ) -> None:
        self.irreps_in = as_irreps(irreps_in, "irreps_in")
        self.irreps_out = as_irreps(irreps_out, "irreps_out")
        spacing = as_spacing(spacing)
        if not (isinstance(radius, (int, float)) and radius >= 0 and math.isfinite(radius)):
            raise ValueError(f"radius: expected a non-negative physical length, got {radius!r}")
        if not (isinstance(width, (int, float)) and width > 0):
            raise ValueError(f"width: expected a positive shell width in voxels, got {width!r}")
        unit = min(spacing)
        self.radius = float(radius)
        self.parity = bool(parity)
        self.shells = default_shells(self.radius, unit, width)
        self.window = (self.radius, self.radius + unit)
        if moment_order is None:
            moment_order = 4 if self.radius >= 2 * unit - 1e-9 else 2
        self.moment_order = int(moment_order)
        self.unit = unit
        self.pair_paths: dict[tuple[int, int], list[Path]] = {}
        for i_out, (_, ir_out) in enumerate(self.irreps_out):
            for i_in, (_, ir_in) in enumerate(self.irreps_in):
                self.pair_paths[(i_out, i_in)] = [
                    Path(i_out, i_in, l, s)
                    for l in range(abs(ir_in.l - ir_out.l), ir_in.l + ir_out.l + 1)
                    if (max_order is None or l <= max_order) and (not self.parity or ir_in.p * ir_out.p == (-1) ** l)
                    for s, shell in enumerate(self.shells)
                    if l <= shell.lmax
                ]
        self._targets = self._continuous_moments()
        raw = self._sample_unnormalized(spacing)
        self.scales = [
            math.sqrt(self.irreps_out[i_out].ir.dim) / block.flatten(1).norm(dim=1)
            for (i_out, _), block in zip(self.pair_paths, raw)
        ]
        self._at_construction = (spacing, self._normalize(raw))

    @property
    def paths(self) -> list[Path]:
        return [p for paths in self.pair_paths.values() for p in paths]

    def reachable(self) -> list[bool]:
        """For every output irrep: whether some path reaches it."""
        return [
            any(self.pair_paths[(i_out, i_in)] for i_in in range(len(self.irreps_in)))
            for i_out in range(len(self.irreps_out))
        ]

    def taps(self, spacing: Spacing) -> tuple[int, int, int]:
        """Kernel taps per axis at ``spacing``."""
        return lattice_taps(self.radius, spacing)

    def sample(self, spacing: Spacing) -> list[torch.Tensor]:
        """The normalized basis sampled at ``spacing``, float64, one tensor per ``(i_out, i_in)`` pair.

        Returns:
            list over ``pair_paths`` of ``[n_paths, 2 l_out + 1, 2 l_in + 1, X, Y, Z]``.
        """
        spacing = as_spacing(spacing)
        if spacing == self._at_construction[0]:
            return [b.clone() for b in self._at_construction[1]]
        return self._normalize(self._sample_unnormalized(spacing))

    def _normalize(self, raw: list[torch.Tensor]) -> list[torch.Tensor]:
        return [b * s.view(-1, 1, 1, 1, 1, 1) for b, s in zip(raw, self.scales)]

    # -- internals -------------------------------------------------------------------------------------

    def _profile(self, shell: Shell, r: torch.Tensor) -> torch.Tensor:
        return torch.exp(-0.5 * ((r - shell.radius) / shell.width) ** 2) * _window(r, *self.window)

    def _continuous_moments(self) -> dict[tuple[int, int], torch.Tensor]:
        """``(shell, l) -> [2l+1, n_monomials]``: integral of ``phi_s(r) Y_lm(r^) (r/unit)^a`` over R^3."""
        if self.moment_order < 0 or not self.paths:
            return {}
        exps = _monomial_exponents(self.moment_order)
        degree = exps.sum(1).long()
        rr = torch.linspace(0, self.window[1], 4001, dtype=torch.float64)
        lmax = max(p.l for p in self.paths)
        pts, wts = _sphere_quadrature(lmax + self.moment_order)
        mono = _monomials(pts, exps)
        angular = {
            l: torch.einsum("p,pm,pa->ma", wts, o3.spherical_harmonics(l, pts, True, "component"), mono)
            for l in range(lmax + 1)
        }
        targets = {}
        for s, shell in enumerate(self.shells):
            if shell.width == 0:
                continue
            g = self._profile(shell, rr)
            radial = torch.stack(
                [torch.trapezoid(g * rr ** (2 + n), rr) / self.unit**n for n in range(self.moment_order + 1)]
            )
            for l in range(min(shell.lmax, lmax) + 1):
                targets[(s, l)] = angular[l] * radial[degree]
        return targets

    def _sample_unnormalized(self, spacing: tuple[float, float, float]) -> list[torch.Tensor]:
        pos = _lattice(self.radius, spacing)
        r = pos.norm(dim=-1)
        centre = r == 0
        volume = spacing[0] * spacing[1] * spacing[2]
        profiles = [
            centre.to(torch.float64) if shell.width == 0 else self._profile(shell, r) * volume
            for shell in self.shells
        ]
        harmonics = {}
        for l in sorted({p.l for p in self.paths}):
            y = o3.spherical_harmonics(l, pos, normalize=True, normalization="component")
            if l > 0:  # an order-l filter vanishes at the origin like r^l
                y = torch.where(centre[..., None], torch.zeros_like(y), y)
            harmonics[l] = y
        if self._targets:
            exps = _monomial_exponents(self.moment_order)
            mono = _monomials((pos / self.unit).reshape(-1, 3), exps)  # [n_taps, n_monomials]
            weighted = mono * _window(r.reshape(-1), *self.window)[:, None]
            gram_inv = torch.linalg.pinv(mono.T @ weighted, hermitian=True)
        out = []
        for (i_out, i_in), paths in self.pair_paths.items():
            l_out, l_in = self.irreps_out[i_out].ir.l, self.irreps_in[i_in].ir.l
            blocks = []
            for p in paths:
                cg = o3.wigner_3j(l_in, p.l, l_out, dtype=torch.float64)  # [m_in, m_f, m_out]
                block = torch.einsum("ifo,xyzf->oixyz", cg, harmonics[p.l]) * profiles[p.shell]
                if self._targets and self.shells[p.shell].width > 0:
                    # smallest windowed polynomial correction that matches the continuous moments
                    target = torch.einsum("ifo,fa->oia", cg, self._targets[(p.shell, p.l)])
                    flat = block.reshape(*block.shape[:2], -1)
                    correction = (target - flat @ mono) @ gram_inv @ weighted.T
                    block = (flat + correction).reshape(block.shape)
                blocks.append(block)
            shape = (2 * l_out + 1, 2 * l_in + 1, *r.shape)
            out.append(torch.stack(blocks) if blocks else torch.zeros(0, *shape, dtype=torch.float64))
        return out
