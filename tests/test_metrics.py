import math

import pytest
import torch

from steerable3d.metrics import cross_correlation, cross_spectrum, dice, nmae, power_spectrum, transfer_function


def test_nmae_is_the_integral_of_the_absolute_error_over_that_of_the_target():
    target = torch.rand(2, 8, 8, 8) + 0.1
    prediction = target * 1.1
    assert torch.allclose(nmae(prediction, target), torch.tensor(0.1), atol=1e-6)
    assert float(nmae(target, target)) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        nmae(target, target[0])
    with pytest.raises(ValueError, match="identically zero"):
        nmae(target, torch.zeros_like(target))


def test_plane_wave_puts_all_its_power_in_its_shell():
    n, box, m, amplitude = 16, 40.0, 3, 2.5
    x = torch.arange(n, dtype=torch.float64) * box / n
    field = amplitude * torch.cos(2 * math.pi * m * x / box)[:, None, None].expand(n, n, n)
    k, p = power_spectrum(field, box)
    k_f = 2 * math.pi / box
    assert (m - 0.5) * k_f <= float(k[m - 1]) < (m + 0.5) * k_f  # the mean |k| of the shell's modes
    others = torch.cat([p[: m - 1], p[m:]])
    assert float(others.abs().max()) < 1e-10 * float(p[m - 1])
    # Parseval: the shell holds V <f^2> = V A^2 / 2 over its modes, shared out as P times the mode count
    freq = torch.fft.fftfreq(n, d=1.0 / n)
    modes = int((torch.round(torch.sqrt(freq[:, None, None] ** 2 + freq[None, :, None] ** 2 + freq[None, None, :] ** 2)) == m).sum())
    assert math.isclose(float(p[m - 1]) * modes, box**3 * amplitude**2 / 2, rel_tol=1e-10)


def test_white_noise_has_the_voxel_volume_times_the_variance():
    torch.manual_seed(0)
    n, box, std = 32, 64.0, 0.7  # voxels of 2 units
    k, p = power_spectrum(std * torch.randn(n, n, n, dtype=torch.float64), box)
    expected = std**2 * (box / n) ** 3
    assert k.shape == (n // 2,) and torch.all(k[1:] > k[:-1])
    assert abs(float(p[4:].mean()) / expected - 1) < 0.03  # many modes per shell: a few percent
    assert float((p[4:] / expected - 1).abs().max()) < 0.25


def test_components_of_a_vector_field_are_summed():
    torch.manual_seed(1)
    field = torch.randn(3, 12, 12, 12)
    _, total = power_spectrum(field, 1.0)
    parts = sum(power_spectrum(component, 1.0)[1] for component in field)
    assert torch.allclose(total, parts)


def test_filtered_noise_is_correlated_with_its_source_and_has_the_filters_transfer():
    torch.manual_seed(2)
    n, box, sigma = 32, 32.0, 1.5
    white = torch.randn(n, n, n, dtype=torch.float64)
    freq = torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64)
    shell = torch.round(torch.sqrt(freq[:, None, None] ** 2 + freq[None, :, None] ** 2 + freq[None, None, :] ** 2))
    gain = torch.exp(-((shell * 2 * math.pi / box) ** 2) * sigma**2 / 2)  # constant on each shell
    smooth = torch.fft.ifftn(torch.fft.fftn(white) * gain).real
    k, r = cross_correlation(smooth, white, box)
    assert torch.allclose(r, torch.ones_like(r), atol=1e-10)
    _, t = transfer_function(smooth, white, box)
    centres = torch.arange(1, n // 2 + 1, dtype=torch.float64) * 2 * math.pi / box
    assert torch.allclose(t, torch.exp(-(centres**2) * sigma**2 / 2), rtol=1e-10)
    _, r_independent = cross_correlation(torch.randn(n, n, n, dtype=torch.float64), white, box)
    assert float(r_independent[4:].abs().max()) < 0.2
    assert torch.allclose(cross_spectrum(white, white, box)[1], power_spectrum(white, box)[1])


def test_spectra_need_a_cube():
    with pytest.raises(ValueError, match=r"\[\.\.\., N, N, N\]"):
        power_spectrum(torch.zeros(8, 8, 4), 1.0)
    with pytest.raises(ValueError, match="positive length"):
        power_spectrum(torch.zeros(8, 8, 8), 0.0)


def test_dice_per_foreground_class_with_mask_and_empty_classes():
    prediction = torch.tensor([0, 1, 1, 2, 2, 0])
    target = torch.tensor([0, 1, 2, 2, 0, 0])
    assert dice(prediction, target, 3) == [2 * 1 / 3, 2 * 1 / 4]
    mask = torch.tensor([True, True, True, False, False, False])
    assert dice(prediction, target, 3, mask=mask) == [2 * 1 / 3, 0.0]  # class 2 only predicted inside the mask
    empty = dice(torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long), 2)
    assert math.isnan(empty[0])
    with pytest.raises(ValueError, match="one shape"):
        dice(prediction, target[:3], 3)
