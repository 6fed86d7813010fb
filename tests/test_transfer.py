"""Transfer function of paired reconstructions: coherent (reproduced) vs added high-band energy,
the fitted equivalent blur, and the paired bootstrap of detail_hf (protocol.md, "Blur diagnostics")."""

import copy

import numpy as np
import pytest
import torch

from blurbench import baselines, plugins, stats
from blurbench.metrics import spectra, transfer as T
from coverage_harness import assert_calibrated

LADDER = (0.5, 1.0, 2.0, 4.0)


def shapes_images(n: int, resolution: int, seed: int = 0) -> torch.Tensor:
    """Test images of the embedded `shapes` dataset, float64 in [0, 1]."""
    module = plugins.load_dataset("shapes")
    params = copy.deepcopy(module.PARAMS)
    params.update(n_train=1, n_test=n, channels=3, seed=seed)
    test = np.stack(list(module.build(params, resolution)["test"].images))
    return torch.from_numpy(test).double() / 255.0


@pytest.fixture(scope="module")
def x32():
    return shapes_images(96, 32)


def harness_hfer(x, y) -> float:
    """HFER exactly as scoring computes it (per-image high-band energies, default window)."""
    return spectra.hfer_from_energies(spectra.high_band_energy(y), spectra.high_band_energy(x))


def circular_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """The ladder's sampled Gaussian applied circularly: a pure product with its DFT."""
    h, w = x.shape[-2:]
    gain = torch.from_numpy(np.outer(T.sampled_gaussian_dft(sigma, h), T.sampled_gaussian_dft(sigma, w)))
    return torch.fft.ifft2(torch.fft.fft2(x.double()) * gain).real


def fourier_shift(x: torch.Tensor, dy, dx) -> torch.Tensor:
    """Each image moved by (dy_i, dx_i) px (sub-pixel allowed) as a phase ramp: circular, no blur."""
    h, w = x.shape[-2:]
    fy, fx = (torch.fft.fftfreq(n, dtype=torch.float64) for n in (h, w))
    dy = torch.as_tensor(dy, dtype=torch.float64).reshape(-1, 1, 1, 1)
    dx = torch.as_tensor(dx, dtype=torch.float64).reshape(-1, 1, 1, 1)
    ramp = torch.exp(-2j * torch.pi * (dy * fy[:, None] + dx * fx[None, :]))
    return torch.fft.ifft2(torch.fft.fft2(x.double()) * ramp).real


def test_identity_gives_detail_one_and_nothing_added(x32):
    split = T.high_band_split(T.cross_spectra(x32, x32))
    assert split.detail_hf == pytest.approx(1.0, abs=1e-12) and split.added_hf == pytest.approx(0.0, abs=1e-12)
    items = T.high_band_items(x32, x32)
    ones = np.ones((1, len(x32)))
    assert T.detail_stat(items)(ones)[0] == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(T.pseudo_values(x32, x32, batch_size=40), [[1.0, 0.0]] * len(x32), atol=1e-10)
    np.testing.assert_allclose(T.transfer_gain(T.cross_spectra(x32, x32)), 1.0, atol=1e-12)


def test_detail_plus_added_is_the_harness_hfer_and_every_route_agrees(x32):
    g = torch.Generator().manual_seed(0)
    y = baselines.gaussian_blur(x32, 0.7).double() + 0.05 * torch.randn(x32.shape, generator=g, dtype=torch.float64)
    split = T.high_band_split(T.cross_spectra(x32, y))
    assert split.detail_hf + split.added_hf == pytest.approx(harness_hfer(x32, y), rel=1e-12)
    assert 0.1 < split.detail_hf < 1 and split.added_hf > 0.05  # both parts present, neither trivial
    items = T.high_band_items(x32, y)
    ones = np.ones((1, len(x32)))
    assert T.detail_stat(items)(ones)[0] == pytest.approx(split.detail_hf, rel=1e-10)
    assert T.added_stat(items)(ones)[0] == pytest.approx(split.added_hf, rel=1e-10)
    pv = T.pseudo_values(x32, y, batch_size=19)  # 96 = 5 × 19 + 1: batched two-pass sums, a last batch of 1
    np.testing.assert_allclose(pv.mean(0), [split.detail_hf, split.added_hf], rtol=1e-10)


def test_circular_blur_adds_nothing_and_keeps_the_detail_its_dft_predicts(x32):
    high = spectra.high_band(32, 32)
    for sigma in (0.5, 1.0):
        cs = T.cross_spectra(x32, circular_blur(x32, sigma), window=None)
        split = T.high_band_split(cs)
        gain2 = np.outer(T.sampled_gaussian_dft(sigma, 32), T.sampled_gaussian_dft(sigma, 32)) ** 2
        predicted = (gain2 * cs.sxx)[:, high].sum() / cs.sxx[:, high].sum()
        assert abs(split.added_hf) < 1e-12 * max(split.detail_hf, 1e-3)
        assert split.detail_hf == pytest.approx(predicted, rel=1e-9)
        np.testing.assert_allclose(T.transfer_gain(cs), np.broadcast_to(np.sqrt(gain2), cs.sxx.shape), atol=1e-9)
        fit = T.fit_gaussian_mtf(cs)
        assert fit.sigma == pytest.approx(sigma, abs=1e-4) and fit.residual < 1e-6 and fit.note == ""


# Reflected borders (the ladder as baselines builds it), shapes at 32², 96 images: added_hf with the
# Hann window ≤ 1e-3 at every rung (measured 4.0e-4, 9.2e-4, 2.1e-5, 1.2e-5 on 256 images); without a
# window the borders' wrap-around jump leaves 1e-2 .. 0.11.
ADDED_BOUND = 2e-3


def test_the_ladder_as_baselines_builds_it_adds_little_and_only_without_the_window_much(x32):
    for sigma in LADDER:
        y = baselines.gaussian_blur(x32, sigma).double()
        windowed = T.high_band_split(T.cross_spectra(x32, y))
        raw = T.high_band_split(T.cross_spectra(x32, y, window=None))
        assert 0 <= windowed.added_hf < ADDED_BOUND, (sigma, windowed)
        assert raw.added_hf > 5e-3 and raw.added_hf > 10 * windowed.added_hf, (sigma, raw)


# Fitted σ of the ladder rows (shapes, 32²): within 5 % for σ ≤ 2 and 15 % at σ = 4, whose kernel
# (33 px) spans the image and whose MTF is narrower than the Hann window's leakage (measured on 128
# images: 0.500, 0.997, 1.93, 3.57; at 64²: 0.500, 1.000, 1.99, 3.86).
SIGMA_TOLERANCE = {0.5: 0.05, 1.0: 0.05, 2.0: 0.05, 4.0: 0.15}


def test_fitted_sigma_recovers_each_ladder_sigma(x32):
    fits = {s: T.fit_gaussian_mtf(T.cross_spectra(x32, baselines.gaussian_blur(x32, s).double())) for s in LADDER}
    for sigma, fit in fits.items():
        assert fit.sigma == pytest.approx(sigma, rel=SIGMA_TOLERANCE[sigma]) and fit.note == "", (sigma, fit)
    assert [fits[s].sigma for s in LADDER] == sorted(fits[s].sigma for s in LADDER)


def test_a_gain_above_one_gets_a_negative_sigma_and_the_flag(x32):
    inverse = 1.0 / np.outer(T.sampled_gaussian_dft(0.5, 32), T.sampled_gaussian_dft(0.5, 32))  # undoes σ = 0.5
    sharpened = torch.fft.ifft2(torch.fft.fft2(x32) * torch.from_numpy(inverse)).real
    cs = T.cross_spectra(x32, sharpened, window=None)
    fit = T.fit_gaussian_mtf(cs)
    assert fit.sigma == pytest.approx(-0.5, abs=1e-3) and fit.note == "sharper than identity"
    assert T.high_band_split(cs).detail_hf > 1.5  # over-sharpening: coherent energy above the data's


def test_independent_noise_keeps_detail_one_and_adds_its_own_energy(x32):
    g = torch.Generator().manual_seed(3)
    noise = 0.08 * torch.randn(x32.shape, generator=g, dtype=torch.float64)
    split = T.high_band_split(T.cross_spectra(x32, x32 + noise))
    noise_ratio = spectra.high_band_energy(noise).sum() / spectra.high_band_energy(x32).sum()
    se = T.pseudo_values(x32, x32 + noise).std(0, ddof=1) / np.sqrt(len(x32))  # sampling error
    assert noise_ratio > 0.3  # the noise is a sizeable part of the high band
    assert split.detail_hf == pytest.approx(1.0, abs=3 * se[0])
    assert split.added_hf == pytest.approx(noise_ratio, abs=3 * se[1])


def test_the_bias_correction_removes_the_plug_in_coherence_bias():
    # Plug-in |S_yx|²/S_xx has E = 1 + noise_ratio / N for Y = X + noise: 1.25 at N = 16, ratio 4.
    rng = np.random.default_rng(4)
    plug, corrected = [], []
    for _ in range(40):
        x = torch.from_numpy(rng.standard_normal((16, 1, 16, 16)))
        cs = T.cross_spectra(x, x + 2 * torch.from_numpy(rng.standard_normal(x.shape)), window=None)
        high = spectra.high_band(16, 16)
        plug.append((np.abs(cs.syx) ** 2 / cs.sxx)[:, high].sum() / cs.sxx[:, high].sum())
        corrected.append(T.high_band_split(cs).detail_hf)
    assert np.mean(plug) == pytest.approx(1.25, abs=0.03)
    assert np.mean(corrected) == pytest.approx(1.0, abs=0.03)


def test_a_shift_differing_per_image_moves_energy_from_coherent_to_added(x32):
    rng = np.random.default_rng(5)
    y = baselines.gaussian_blur(x32, 0.5).double()
    base = T.high_band_split(T.cross_spectra(x32, y))
    misregistered = fourier_shift(y, *rng.uniform(-0.5, 0.5, (2, len(x32))))
    moved = T.high_band_split(T.cross_spectra(x32, misregistered))
    assert moved.detail_hf < 0.8 * base.detail_hf
    assert moved.added_hf - base.added_hf > 0.8 * (base.detail_hf - moved.detail_hf)  # the loss reappears as added


def test_a_common_shift_is_a_phase_without_a_window(x32):
    y = circular_blur(x32, 1.0)
    still = T.cross_spectra(x32, y, window=None)
    moved = T.cross_spectra(x32, y.roll((3, -5), (-2, -1)), window=None)  # circular, so exactly a phase
    assert T.high_band_split(moved).detail_hf == pytest.approx(T.high_band_split(still).detail_hf, rel=1e-9)
    assert T.fit_gaussian_mtf(moved).sigma == pytest.approx(1.0, abs=1e-4)


# With the window, content moved by d px sits under a different part of it: detail_hf and σ change
# by ≤ 2 % for |d| ≤ 1 px per axis at 32² (measured ≤ 1.5 %; 2 px: 4 %, 3 px: 8 %).
def test_a_common_shift_of_a_pixel_changes_neither_detail_nor_sigma_beyond_two_percent():
    big = shapes_images(96, 64, seed=1)
    blurred = baselines.gaussian_blur(big, 1.0).double()
    crop = lambda t, dy, dx: t[..., 16 + dy:48 + dy, 16 + dx:48 + dx]  # whole-pixel shift of content
    x = crop(big, 0, 0)
    still = T.cross_spectra(x, crop(blurred, 0, 0))
    detail, sigma = T.high_band_split(still).detail_hf, T.fit_gaussian_mtf(still).sigma
    for d in ((1, 0), (1, -1)):
        moved = T.cross_spectra(x, crop(blurred, *d))
        assert T.high_band_split(moved).detail_hf == pytest.approx(detail, rel=0.02), d
        assert T.fit_gaussian_mtf(moved).sigma == pytest.approx(sigma, rel=0.02), d
    shifts = np.random.default_rng(6).integers(-1, 2, (len(x), 2))  # the same shifts, differing per image
    per_image = T.cross_spectra(x, torch.stack([crop(blurred[i], *d) for i, d in enumerate(shifts)]))
    assert T.high_band_split(per_image).detail_hf < 0.5 * detail


def _gain_noise_draw(pseudo: bool):
    """draw(rng) for the coverage harness: y = a x + s·noise for method and reference, truth a_m² − a_r².

    A gain that is the same at every pixel commutes with the window and the mean removal, so the
    population detail_hf is exactly a², whatever the images' spectrum."""
    a_m, s_m, a_r, s_r = 0.8, 0.5, 0.7, 0.3

    def draw(rng):
        x = torch.from_numpy(rng.standard_normal((48, 1, 16, 16)))
        ym = a_m * x + s_m * torch.from_numpy(rng.standard_normal(x.shape))
        yr = a_r * x + s_r * torch.from_numpy(rng.standard_normal(x.shape))
        seed = int(rng.integers(1 << 31))
        if pseudo:
            mean = lambda items: lambda counts: counts @ items / counts.sum(1)
            est = stats.paired_set_diff(mean, [T.pseudo_values(x, ym)[:, 0]], [T.pseudo_values(x, yr)[:, 0]],
                                        n_boot=300, seed=seed)
        else:
            est = stats.paired_set_diff(T.detail_stat, [T.high_band_items(x, ym)], [T.high_band_items(x, yr)],
                                        n_boot=300, seed=seed)
        return est.lo, est.hi, a_m ** 2 - a_r ** 2
    return draw


def test_paired_bootstrap_of_detail_covers_a_known_difference():
    assert_calibrated(_gain_noise_draw(pseudo=False), 200, 11, "paired bootstrap of detail_hf (items)")


def test_linearised_bootstrap_of_detail_covers_a_known_difference():
    assert_calibrated(_gain_noise_draw(pseudo=True), 200, 12, "paired bootstrap of detail_hf (pseudo-values)")


def test_curves_and_saved_arrays_need_no_images(x32, tmp_path):
    y = baselines.gaussian_blur(x32, 1.0).double()
    cs = T.cross_spectra(x32, y)
    np.savez(tmp_path / "t.npz", **cs.to_arrays())
    with np.load(tmp_path / "t.npz") as z:
        back = T.CrossSpectra.from_arrays(z)
    assert back.window == cs.window and back.n == cs.n and np.array_equal(back.syx, cs.syx)
    assert T.fit_gaussian_mtf(back) == T.fit_gaussian_mtf(cs)
    curves = T.radial_spectra(back)
    np.testing.assert_allclose(curves["coherent"] + curves["added"], curves["recon"], rtol=1e-9, atol=1e-15)
    freq, data = spectra.radial_average(spectra.mean_power_spectrum(x32))
    np.testing.assert_allclose(curves["data"], data, rtol=1e-9)  # RAPS units
    freq_h, mtf, energy = T.annulus_transfer(back)
    np.testing.assert_array_equal(freq_h, freq)
    assert np.isnan(mtf[0]) and energy[0] < 1e-20 * energy.sum()  # the window's mean removal empties DC
    assert abs(mtf[1] - 1) < 0.05 and mtf[-1] < 0.05  # low frequencies pass, Nyquist is gone at σ = 1


def test_bad_input_is_rejected_with_a_clear_error(x32):
    with pytest.raises(ValueError, match="one shape"):
        T.cross_spectra(x32, x32[:, :1])
    with pytest.raises(ValueError, match="N ≥ 2"):
        T.cross_spectra(x32[:1], x32[:1])
    with pytest.raises(ValueError, match=r"\(N, 4, K\)"):
        T.detail_stat(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="window"):
        T.cross_spectra(x32, x32, window="tukey")
    with pytest.raises(ValueError, match="no high-band energy"):
        flat = torch.full((4, 1, 16, 16), 0.5, dtype=torch.float64)
        T.high_band_split(T.cross_spectra(flat, flat))
    with pytest.raises(ValueError, match="missing"):
        T.CrossSpectra.from_arrays({"n": 3})


def test_identity_fits_sigma_zero_not_sharper():
    """The delta band of the truncated kernel (|σ| < 0.125) ties with σ = 0: identity is σ = 0."""
    x = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    fit = T.fit_gaussian_mtf(T.cross_spectra(x, x.clone()))
    assert fit.sigma == 0.0 and fit.note == ""
