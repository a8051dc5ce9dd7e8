import math

import pytest
import torch

from steerable3d import grid_symmetries, transform_field
from steerable3d.data.cosmology import CICPaint, cic_density, gaussian_random_field, zeldovich_displacement
from steerable3d.metrics import power_spectrum


def test_random_field_has_the_requested_power_spectrum():
    power = lambda k: 40.0 * k**-1.5  # noqa: E731
    fields = gaussian_random_field(32, 100.0, power, batch=16, generator=torch.Generator().manual_seed(0))
    k, measured = power_spectrum(fields, 100.0)
    ratio = measured / 16 / power(k)  # 16 fields summed
    # each shell above the fourth holds >= 200 modes x 16 fields: the mean is within a few percent
    assert torch.all((ratio[4:] - 1).abs() < 0.06), ratio
    assert fields.mean(dim=(1, 2, 3)).abs().max() < 1e-12


def test_random_fields_are_reproducible_and_real():
    a = gaussian_random_field(8, 10.0, lambda k: k**-2, generator=torch.Generator().manual_seed(3))
    b = gaussian_random_field(8, 10.0, lambda k: k**-2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.dtype == torch.float64 and a.shape == (8, 8, 8)


def test_displacement_of_a_plane_wave_is_the_analytic_one():
    n, box = 16, 50.0
    x = torch.arange(n, dtype=torch.float64) * box / n
    k = 2 * math.pi * 3 / box  # third harmonic along y
    delta = torch.cos(k * x)[None, :, None].expand(n, n, n)
    psi = zeldovich_displacement(delta, box)
    # div psi = -delta: psi_y = -sin(k y) / k, the other components vanish
    assert torch.allclose(psi[1], (-torch.sin(k * x) / k)[None, :, None].expand(n, n, n), atol=1e-12)
    assert psi[0].abs().max() < 1e-12 and psi[2].abs().max() < 1e-12


def test_displacement_divergence_is_minus_delta_below_nyquist():
    n, box = 16, 16.0
    delta = gaussian_random_field(n, box, lambda k: torch.exp(-(k**2)), generator=torch.Generator().manual_seed(1))
    psi = zeldovich_displacement(delta, box)
    # spectral divergence, computed independently with the wavenumbers of every mode but the Nyquist planes
    f = torch.fft.fftfreq(n, d=box / n, dtype=torch.float64) * 2 * math.pi
    kx, ky, kz = torch.meshgrid(f, f, f, indexing="ij")
    spectra = torch.fft.fftn(psi, dim=(-3, -2, -1))
    divergence = 1j * (kx * spectra[0] + ky * spectra[1] + kz * spectra[2])
    inner = (torch.fft.fftfreq(n).abs() < 0.5)
    mask = inner[:, None, None] & inner[None, :, None] & inner[None, None, :]
    assert torch.allclose(divergence[mask], -torch.fft.fftn(delta)[mask], atol=1e-9)


def test_cic_conserves_particles_and_wraps_around():
    n, box = 8, 8.0
    psi = torch.randn(2, 3, n, n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 3
    rho = cic_density(psi, box)
    assert rho.shape == (2, n, n, n) and rho.sum(dim=(1, 2, 3)).abs().max() < 1e-10 and rho.min() >= -1
    # a uniform shift by whole voxels (even by more than the box) leaves the density uniform
    shift = torch.zeros(3, n, n, n, dtype=torch.float64)
    shift[0], shift[2] = 3.0, -11.0
    assert cic_density(shift, box).abs().max() < 1e-12
    # a single particle moved to x = -0.25 voxel: three quarters of it stay, a quarter goes to voxel N - 1
    one = torch.zeros(3, n, n, n, dtype=torch.float64)
    one[0, 0, 0, 0] = -0.25
    rho = cic_density(one, box)
    assert rho[0, 0, 0] == pytest.approx(-0.25) and rho[n - 1, 0, 0] == pytest.approx(0.25)


@pytest.mark.parametrize("origin", ["centre", "voxel0"])
def test_pipeline_is_exact_under_the_48_grid_symmetries(origin):
    n, box = 12, 24.0
    delta = gaussian_random_field(n, box, lambda k: 8.0 * k**-2, batch=2, generator=torch.Generator().manual_seed(2))
    psi = zeldovich_displacement(delta, box)
    rho = cic_density(psi, box)
    assert psi.abs().max() * n / box > 1  # displacements of more than a voxel: the deposit is non-linear
    for g in grid_symmetries(True):
        moved = transform_field(delta[:, None], "0e", g, origin=origin)[:, 0]
        psi_g = zeldovich_displacement(moved, box)
        assert torch.allclose(psi_g, transform_field(psi, "1o", g, origin=origin), atol=1e-12)
        assert torch.allclose(cic_density(psi_g, box), transform_field(rho[:, None], "0e", g, origin=origin)[:, 0], atol=1e-12)


@pytest.mark.parametrize("origin", ["centre", "voxel0"])
def test_paint_layer_is_cic_in_voxels_and_exact_under_the_48_grid_symmetries(origin):
    n, box = 12, 24.0
    delta = gaussian_random_field(n, box, lambda k: 8.0 * k**-2, batch=2, generator=torch.Generator().manual_seed(4))
    psi = zeldovich_displacement(delta, box) * (n / box)  # voxels
    paint = CICPaint()
    assert str(paint.irreps_in) == "1x1o" and str(paint.irreps_out) == "1x0e" and not list(paint.parameters())
    rho = paint(psi)
    assert psi.abs().max() > 1 and rho.shape == (2, 1, n, n, n) and rho.dtype == torch.float64
    assert torch.allclose(rho[:, 0], cic_density(zeldovich_displacement(delta, box), box), atol=1e-12)
    for g in grid_symmetries(True):
        moved = paint(transform_field(psi, "1o", g, origin=origin))
        assert torch.allclose(moved, transform_field(rho, "0e", g, origin=origin), atol=1e-12)
    # differentiable: a uniform displacement of a quarter voxel along x leaves the density uniform, but the
    # x gradient of a weighted sum is the difference of neighbouring weights; finite differences elsewhere
    shift = torch.zeros(1, 3, n, n, n, dtype=torch.float64)
    shift[:, 0] = 0.25
    shift.requires_grad_(True)
    weights = torch.randn(1, 1, n, n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    (paint(shift) * weights).sum().backward()
    assert paint(shift).abs().max() < 1e-12
    assert torch.allclose(shift.grad[0, 0], torch.roll(weights[0, 0], -1, 0) - weights[0, 0], atol=1e-12)
    generic = (0.7 * torch.randn(1, 3, 4, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(6))).requires_grad_(True)
    assert torch.autograd.gradcheck(paint, (generic,))


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"delta: expected a field \[..., N, N, N\] on a cubic grid, got shape \(4, 4, 5\)"):
        zeldovich_displacement(torch.zeros(4, 4, 5), 1.0)
    with pytest.raises(ValueError, match=r"displacement: expected a vector field \[..., 3, N, N, N\], got shape \(2, 4, 4, 4\)"):
        cic_density(torch.zeros(2, 4, 4, 4), 1.0)
    with pytest.raises(ValueError, match=r"displacement: expected \[B, 3, N, N, N\] in voxels, got shape \(3, 4, 4, 4\)"):
        CICPaint()(torch.zeros(3, 4, 4, 4))
    with pytest.raises(ValueError, match="box_size: expected a positive length, got -1.0"):
        gaussian_random_field(8, -1.0, lambda k: k)
