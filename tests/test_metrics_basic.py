"""MSE, PSNR and SSIM against scikit-image; RAPS and HFER on images with known spectra."""

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from blurbench.metrics import basic, spectra


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 32, 32, generator=g, dtype=torch.float64)
    y = (x + 0.1 * torch.randn(3, 3, 32, 32, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x, y


def test_mse_and_psnr_match_numpy_and_skimage(pair):
    x, y = pair
    mse = basic.mse_per_image(y, x).numpy()
    psnr = basic.psnr_per_image(y, x).numpy()
    for i in range(3):
        a, b = x[i].numpy(), y[i].numpy()
        assert mse[i] == pytest.approx(np.mean((a - b) ** 2), rel=1e-12)
        assert psnr[i] == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1), rel=1e-10)


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_matches_skimage(channels):
    g = torch.Generator().manual_seed(channels)
    x = torch.rand(2, channels, 40, 36, generator=g, dtype=torch.float64)
    y = (x + 0.2 * torch.rand(2, channels, 40, 36, generator=g, dtype=torch.float64)).clamp(0, 1)
    ours = basic.ssim_per_image(y, x).numpy()
    for i in range(2):
        ref = structural_similarity(x[i].numpy(), y[i].numpy(), channel_axis=0, gaussian_weights=True,
                                    sigma=1.5, use_sample_covariance=False, data_range=1)
        assert ours[i] == pytest.approx(ref, abs=1e-6)


def test_ssim_of_identical_images_is_one(pair):
    x, _ = pair
    assert torch.allclose(basic.ssim_per_image(x, x), torch.ones(3))


def test_hfer_is_one_for_the_data_and_below_one_for_a_blur():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(8, 1, 32, 32, generator=g, dtype=torch.float64)
    blurred = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="circular"),
                                             3, stride=1)
    p_data = spectra.mean_power_spectrum(x)
    assert spectra.hfer(p_data, p_data) == pytest.approx(1.0)
    assert spectra.hfer(spectra.mean_power_spectrum(blurred), p_data) < 0.5
    noisy = x + 0.3 * torch.randn(x.shape, generator=g, dtype=torch.float64)
    assert spectra.hfer(spectra.mean_power_spectrum(noisy), p_data) > 1.0


def test_radial_average_of_white_noise_is_flat_and_parseval_holds():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(64, 1, 32, 32, generator=g, dtype=torch.float64)
    raw = spectra.mean_power_spectrum(x, window=None)
    # ortho FFT: total power equals the pixel energy per image
    assert raw.sum() == pytest.approx(float(x.pow(2).sum() / 64), rel=1e-10)
    # windowed: Parseval for the prepared images, and the window (mean square 1) keeps white noise at 1
    assert spectra.mean_power_spectrum(x).sum() == pytest.approx(float(spectra.prepare(x).pow(2).sum() / 64), rel=1e-10)
    # (the mean's removal touches only bins with |k| ≤ 1 per axis: rings 0 and 1)
    for p, first in ((raw, 1), (spectra.mean_power_spectrum(x), 2)):
        freqs, raps = spectra.radial_average(p)
        assert freqs[0] == 0 and freqs[-1] == pytest.approx(0.5)
        assert np.allclose(raps[first:], 1.0, atol=0.15)


def test_the_window_removes_the_border_jump_from_the_high_band():
    # A smooth ramp has no detail, but its periodic copy jumps at the border: unwindowed, that jump
    # is high-band energy; windowed, (almost) none is left, and a constant leaves exactly none.
    ramp = torch.linspace(0, 1, 32, dtype=torch.float64).expand(2, 1, 32, 32).contiguous()
    raw, windowed = (spectra.high_band_energy(ramp, window=w).mean() for w in (None, "hann"))
    assert windowed < 1e-4 * raw
    assert spectra.high_band_energy(torch.full((2, 3, 16, 16), 0.7), window="hann").max() == 0
    assert spectra.window_2d(16, 16).pow(2).mean() == pytest.approx(1.0, rel=1e-12)
    with pytest.raises(ValueError, match="window"):
        spectra.mean_power_spectrum(ramp, window="tukey")
