"""The blur-Wiener term: spectral likelihood against dense matrices, L2 limits, kernel learning, plugin."""

from __future__ import annotations

import copy
import csv
import io

import numpy as np
import pytest
import torch

from blurbench import plugins, wiener
from blurbench.errors import ConfigError
from blurbench.method_api import gaussian_nll

bw = plugins.load_method("blur_wiener")
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_kernels(n, s, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(2 * torch.randn(n, s * s, generator=g, dtype=dtype), 1).view(n, s, s)


def make_params(**over):
    params = copy.deepcopy(bw.PARAMS)
    for dotted, value in over.items():
        group, key = dotted.split("__")
        params[group][key] = value
    return params


def make_term(steps=10, shape=(3, 16, 16), latent=4, **over):
    return bw.Term(make_params(**over), sigma2=0.01, steps=steps, latent_dim=latent, image_shape=shape,
                   device=CPU)


# ---------------------------------------------------------------- dense reference (no FFT at all)

def dense_conv_matrix(k: np.ndarray, H: int, W: int) -> np.ndarray:
    """Circular convolution by the centred kernel k as an HW×HW matrix, built column by column:
    column p is the response to a unit impulse at pixel p, i.e. k centred on p."""
    s = k.shape[0]
    r = s // 2
    B = np.zeros((H * W, H * W))
    for p in range(H * W):
        col = np.zeros((H, W))
        pi, pj = divmod(p, W)
        for a in range(s):
            for b in range(s):
                col[(pi + a - r) % H, (pj + b - r) % W] += k[a, b]
        B[:, p] = col.ravel()
    return B


def dense_precision(k, H, W, eps, C, sigma2, normalize_dc, normalize_gain=False):
    """σ⁻²·AᵀA with the Wiener filter A = (1+C)·(BᵀB + C·I)⁻¹·Bᵀ of the blur B of k_ε = ε·k + (1−ε)·δ.

    `normalize_gain` divides σ²·P by the mean of its eigenvalues, trace(σ²·P)/(H·W)."""
    delta = np.zeros_like(k)
    delta[k.shape[0] // 2, k.shape[1] // 2] = 1.0
    B = dense_conv_matrix(eps * k + (1 - eps) * delta, H, W)
    A = np.linalg.solve(B.T @ B + C * np.eye(H * W), B.T)
    if normalize_dc:
        A = (1 + C) * A
    P = A.T @ A
    if normalize_gain:
        P = P / (np.trace(P) / (H * W))
    return P / sigma2


@pytest.mark.parametrize("H,W", [(8, 8), (7, 6), (6, 7)])
@pytest.mark.parametrize("eps,normalize_dc,normalize_gain", [
    (1.0, True, False), (0.6, True, False), (1.0, False, False), (1.0, True, True), (0.6, False, True)])
def test_logdet_and_quadratic_form_match_dense_precision(H, W, eps, normalize_dc, normalize_gain):
    C, sigma2, channels = 0.01, 0.05, 2
    k = random_kernels(2, 3)
    x = torch.rand(2, channels, H, W, dtype=torch.float64)
    x_hat = torch.rand(2, channels, H, W, dtype=torch.float64)
    flags = dict(normalize_dc=normalize_dc, normalize_gain=normalize_gain)
    w2 = wiener.weight_power(k, (H, W), eps=eps, C=C, **flags)
    logdet = wiener.half_logdet(w2, W, channels)
    quad = wiener.quadratic_form(x - x_hat, w2)
    nll, mean_logdet, gain = wiener.wiener_nll(x, x_hat, k, eps=eps, C=C, sigma2=sigma2, **flags)
    ref_nll, ref_gain = [], []
    for i in range(2):
        P = dense_precision(k[i].numpy(), H, W, eps, C, sigma2, **flags)
        ref_gain.append(sigma2 * np.trace(P) / (H * W))
        sign, slogdet = np.linalg.slogdet(P)
        assert sign > 0
        # ½·log|Σ| − ½·log|σ²I| per channel = −½·(log|P| + HW·log σ²)
        ref_logdet = -0.5 * channels * (slogdet + H * W * np.log(sigma2))
        e = (x[i] - x_hat[i]).reshape(channels, -1).numpy()
        ref_quad = sigma2 * np.einsum("ci,ij,cj->", e, P, e)
        assert logdet[i].item() == pytest.approx(ref_logdet, rel=1e-9, abs=1e-9)
        assert quad[i].item() == pytest.approx(ref_quad, rel=1e-9)
        ref_nll.append(0.5 * ref_quad / sigma2 + ref_logdet)
    assert nll.item() == pytest.approx(np.mean(ref_nll), rel=1e-9)
    assert mean_logdet.item() == pytest.approx(logdet.mean().item(), rel=1e-12)
    assert gain.item() == pytest.approx(np.mean(ref_gain), rel=1e-9)
    if normalize_gain:
        assert ref_gain == pytest.approx([1.0, 1.0], rel=1e-9)
    else:
        assert min(ref_gain) > 1.2  # the dense mean eigenvalue is a real gain, which the spectral one matches


def test_shared_kernel_equals_per_image_copies():
    k = random_kernels(1, 5)[0]
    x, x_hat = torch.rand(3, 2, 8, 8, dtype=torch.float64), torch.rand(3, 2, 8, 8, dtype=torch.float64)
    shared = wiener.wiener_nll(x, x_hat, k, eps=0.8, C=0.01, sigma2=0.1)
    copies = wiener.wiener_nll(x, x_hat, k.expand(3, 5, 5), eps=0.8, C=0.01, sigma2=0.1)
    torch.testing.assert_close(shared, copies)


def test_blur_matches_dense_matrix_and_scipy():
    from scipy.ndimage import convolve

    H, W = 8, 7
    k = random_kernels(2, 5)
    x = torch.rand(2, 3, H, W, dtype=torch.float64)
    y = wiener.blur(x, k)
    for i in range(2):
        B = dense_conv_matrix(k[i].numpy(), H, W)
        for c in range(3):
            np.testing.assert_allclose(y[i, c].numpy().ravel(), B @ x[i, c].numpy().ravel(), atol=1e-12)
            np.testing.assert_allclose(y[i, c].numpy(), convolve(x[i, c].numpy(), k[i].numpy(), mode="wrap"),
                                       atol=1e-12)


def test_psf2otf_of_symmetric_kernel_is_real():
    """No phase ramp: the centre of the kernel sits at index (0, 0)."""
    K = wiener.psf2otf(wiener.gaussian_kernel(7, 1.3, dtype=torch.float64), (16, 12), onesided=False)
    assert K.imag.abs().max() < 1e-12
    assert K[0, 0].real.item() == pytest.approx(1.0)


def test_fit_error_equals_pixel_domain_residual():
    x, x_hat = torch.rand(4, 3, 8, 6, dtype=torch.float64), torch.rand(4, 3, 8, 6, dtype=torch.float64)
    for k in (random_kernels(4, 3), random_kernels(1, 5)[0]):
        ref = (x_hat - wiener.blur(x, k)).pow(2).flatten(1).sum(1)
        torch.testing.assert_close(wiener.fit_error(x, x_hat, k), ref)


@pytest.mark.parametrize("shared", [False, True])
def test_custom_gradient_matches_finite_differences(shared):
    H, W = 6, 5
    x = torch.rand(2, 2, H, W, dtype=torch.float64)
    x_hat = torch.rand(2, 2, H, W, dtype=torch.float64, requires_grad=True)
    k = (random_kernels(1, 3)[0] if shared else random_kernels(2, 3)).requires_grad_()

    def f(x_hat, k):
        return wiener.quadratic_form(x - x_hat, wiener.weight_power(k, (H, W), eps=0.7, C=0.01))

    assert torch.autograd.gradcheck(f, (x_hat, k))


# ---------------------------------------------------------------- limits and bounds

@pytest.mark.parametrize("normalize_gain", [False, True])
@pytest.mark.parametrize("case", ["eps0", "delta", "delta_eps_half"])
def test_identity_cases_equal_l2_exactly(case, normalize_gain):
    torch.manual_seed(0)
    x = torch.rand(4, 3, 16, 16)
    x_hat = torch.rand(4, 3, 16, 16, requires_grad=True)
    if case == "eps0":
        k, eps = random_kernels(4, 7, dtype=torch.float32), 0.0
    else:
        k = torch.zeros(4, 7, 7)
        k[:, 3, 3] = 1.0
        eps = 1.0 if case == "delta" else 0.5
    nll, logdet, gain = wiener.wiener_nll(x, x_hat, k, eps=eps, C=0.01, sigma2=0.01,
                                          normalize_gain=normalize_gain)
    (g,) = torch.autograd.grad(nll, x_hat)
    ref = gaussian_nll(x, x_hat, 0.01)
    (g_ref,) = torch.autograd.grad(ref, x_hat)
    assert torch.equal(nll, ref)
    assert torch.equal(g, g_ref)
    assert logdet.item() == 0.0
    assert gain.item() == 1.0


@pytest.mark.parametrize("normalize_gain", [False, True])
def test_term_equals_l2_in_warmup_and_with_eps0(normalize_gain):
    torch.manual_seed(0)
    x, z = torch.rand(4, 3, 16, 16), torch.randn(4, 4)
    x_hat = torch.rand(4, 3, 16, 16, requires_grad=True)
    ref = gaussian_nll(x, x_hat, 0.01)
    (g_ref,) = torch.autograd.grad(ref, x_hat)
    warm = make_term(steps=10, blur__normalize_gain=normalize_gain)  # start_step = 1
    eps0 = make_term(blur__eps=0.0, blur__normalize_gain=normalize_gain)
    for term, step in ((warm, 0), (eps0, 5)):
        loss, logs = term.loss(x, x_hat, z, step)
        (g,) = torch.autograd.grad(loss, x_hat)
        assert torch.equal(loss, ref) and torch.equal(g, g_ref)
        assert logs["gain"].item() == 1.0 and logs["logdet"].item() == 0.0
    assert not torch.equal(warm.loss(x, x_hat, z, 1)[0], ref)


def test_wiener_weight_bound_dc_and_hermitian_symmetry():
    C = 0.01
    bound = (1 + C) / (2 * C ** 0.5)
    # |K| sweeps through √C, where the bound is attained
    mag = torch.logspace(-4, 0.5, 2001, dtype=torch.float64)
    K = mag * torch.exp(1j * torch.linspace(0, 6.28, 2001, dtype=torch.float64))
    W = wiener.wiener_weight(K, C)
    assert W.abs().max() <= bound * (1 + 1e-12)
    assert W.abs().max() >= bound * (1 - 1e-3)

    k = random_kernels(8, 5)
    for eps in (1.0, 0.3):
        Wf = wiener.wiener_weight(wiener.regularize(wiener.psf2otf(k, (8, 7), onesided=False), eps), C)
        assert Wf.abs().max() <= bound * (1 + 1e-12)
        torch.testing.assert_close(Wf[:, 0, 0], torch.ones(8, dtype=Wf.dtype))  # DC keeps weight 1
        mirrored = torch.roll(torch.flip(Wf, (-2, -1)), (1, 1), (-2, -1))  # W(−ω)
        torch.testing.assert_close(mirrored, Wf.conj())
        weighted = torch.fft.ifft2(Wf[:, None] * torch.fft.fft2(torch.rand(8, 3, 8, 7, dtype=torch.float64)))
        assert weighted.imag.abs().max() < 1e-12


# ---------------------------------------------------------------- gain (the confound with σ²)

# Mean and max of |W|² over the spectrum for the default 7×7 Gaussian (σ = 1), C = 0.01, by
# (resolution, ε). The spec's max for ε = 1 is 25.5, the bound (1 + C)²/(4C) = 25.5025 attained on
# the ring |K| = √C; at 32² no frequency falls on that ring and the measured max is 25.486.
GAIN_TABLE = {
    (32, 0.25): (1.60, 1.75), (32, 0.5): (3.09, 3.77), (32, 1.0): (8.15, 25.49),
    (64, 0.25): (1.60, 1.75), (64, 0.5): (3.09, 3.77), (64, 1.0): (8.15, 25.5),
    (256, 0.25): (1.60, 1.75), (256, 0.5): (3.09, 3.77), (256, 1.0): (8.15, 25.5),
}


@pytest.mark.parametrize("n,eps", sorted(GAIN_TABLE))
def test_gain_of_the_default_kernel(n, eps):
    k = wiener.gaussian_kernel(7, 1.0)
    mean, peak = GAIN_TABLE[n, eps]
    assert wiener.mean_gain(k, (n, n), eps=eps, C=0.01).item() == pytest.approx(mean, abs=0.01)
    assert wiener.weight_power(k, (n, n), eps=eps, C=0.01).max().item() == pytest.approx(peak, abs=0.01)


@pytest.mark.parametrize("H,W", [(8, 8), (8, 7), (5, 6)])
def test_mean_gain_is_the_mean_over_the_full_spectrum(H, W):
    """The rfft2 half spectrum, weighted by column multiplicity, against a plain mean of fft2's."""
    k = random_kernels(3, 3)
    full = wiener.wiener_weight(wiener.regularize(wiener.psf2otf(k, (H, W), onesided=False), 0.7), 0.01)
    ref = full.abs().pow(2).mean((-2, -1))
    torch.testing.assert_close(wiener.mean_gain(k, (H, W), eps=0.7, C=0.01), ref, rtol=1e-12, atol=0)
    half = wiener.weight_power(k, (H, W), eps=0.7, C=0.01).mean((-2, -1))
    assert (half - ref).abs().min() > 1e-3  # the unweighted half-spectrum mean would be wrong


@pytest.mark.parametrize("width", [16, 15])
def test_normalize_gain_gives_mean_one_and_keeps_the_shape(width):
    k = random_kernels(4, 5, dtype=torch.float32)
    raw = wiener.weight_power(k, (16, width), eps=1.0, C=0.01)
    norm = wiener.weight_power(k, (16, width), eps=1.0, C=0.01, normalize_gain=True)
    means = wiener.spectrum_mean(norm, width)
    assert means.shape == (4,)
    assert (means - 1).abs().max() < 1e-6
    ratio = raw / norm  # one factor per kernel: the spectral shape is unchanged
    torch.testing.assert_close(ratio, ratio[:, :1, :1].expand_as(ratio))
    torch.testing.assert_close(ratio[:, 0, 0], wiener.mean_gain(k, (16, width), eps=1.0, C=0.01))


def test_term_logs_the_gain_of_its_kernels():
    torch.manual_seed(0)
    x, z = torch.rand(4, 3, 16, 16), torch.randn(4, 4)
    x_hat = torch.rand(4, 3, 16, 16, requires_grad=True)
    fixed = make_term(kernel__mode="fixed")
    _, logs = fixed.loss(x, x_hat, z, 3)
    expected = wiener.mean_gain(wiener.gaussian_kernel(7, 1.0), (16, 16), eps=1.0, C=0.01)
    assert logs["gain"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert logs["gain"].item() > 5

    term = make_term(kernel__lr=0.05, blur__eps=0.5)
    for _ in range(5):  # per-image kernels that differ, so the logged gain is a batch mean
        term.after_vae_step(x, wiener.blur(x, wiener.gaussian_kernel(7, 0.7)), z, 0)
    with torch.no_grad():
        per_image = wiener.mean_gain(term.kernel(z), (16, 16), eps=0.5, C=0.01)
    assert per_image.std() > 1e-4
    _, logs = term.loss(x, x_hat, z, 3)
    assert logs["gain"].item() == pytest.approx(per_image.mean().item(), rel=1e-6)

    _, logs = make_term(kernel__mode="fixed", blur__normalize_gain=True).loss(x, x_hat, z, 3)
    assert logs["gain"].item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("mode", ["per_image", "global", "fixed"])
def test_logs_are_detached_scalar_tensors(mode):
    """The loop sums logs on the device: no float() (a host sync) in the per-step path."""
    x, z = torch.rand(4, 3, 16, 16), torch.randn(4, 4)
    x_hat = torch.rand(4, 3, 16, 16, requires_grad=True)
    term = make_term(kernel__mode=mode, kernel__detach_in_vae_step=False)
    for step in (0, 3):  # L2 warm-up, then the blur term
        loss, logs = term.loss(x, x_hat, z.clone().requires_grad_(), step)
        assert loss.requires_grad and set(logs) == {"recon_nll", "logdet", "eps", "gain"}
        logs.update(term.after_vae_step(x, x_hat.detach(), z, step))
        for v in logs.values():
            assert isinstance(v, torch.Tensor) and v.dim() == 0 and not v.requires_grad


def test_initial_gain():
    default = bw.initial_gain(make_params(), 64)
    assert isinstance(default, float)
    assert default == pytest.approx(8.15, abs=0.01)
    assert bw.initial_gain(make_params(blur__eps=0.5), 256) == pytest.approx(3.09, abs=0.01)
    assert bw.initial_gain(make_params(kernel__mode="fixed", kernel__init="delta"), 64) == default
    near_delta = bw.initial_gain(make_params(kernel__init="delta"), 64)  # k₀ of the learned modes
    assert 1.0 < near_delta < 1.1
    assert bw.initial_gain(make_params(kernel__mode="global", kernel__init="delta"), 64) == near_delta
    assert bw.initial_gain(make_params(blur__normalize_gain=True), 64) == 1.0
    with pytest.raises(ConfigError, match=r"kernel\.size"):
        bw.initial_gain(make_params(kernel__size=41), 32)


@pytest.mark.parametrize("mode,init", [("fixed", "gaussian"), ("per_image", "gaussian"), ("global", "delta")])
def test_initial_gain_is_the_gain_the_term_logs_when_it_switches_on(mode, init):
    x, x_hat, z = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16), torch.randn(4, 4)
    params = make_params(kernel__mode=mode, kernel__init=init, blur__eps=0.5)
    term = make_term(kernel__mode=mode, kernel__init=init, blur__eps=0.5)
    _, logs = term.loss(x, x_hat, z, term.start_step)
    assert logs["gain"].item() == pytest.approx(bw.initial_gain(params, 16), rel=1e-5)


def test_validate_for_dataset_refuses_a_kernel_larger_than_the_images():
    params = make_params(kernel__size=41)
    with pytest.raises(ConfigError) as err:
        bw.validate_for_dataset(params, 32, 3)
    assert str(err.value) == "'kernel.size': 41 is larger than the 32×32 images"
    bw.validate_for_dataset(params, 64, 1)
    bw.validate_for_dataset(make_params(), 32, 3)


# ---------------------------------------------------------------- kernel learning

def test_kernel_recovery_global():
    torch.manual_seed(0)
    term = make_term(kernel__mode="global", kernel__size=5, kernel__lr=0.05, kernel__init="delta")
    k_true = wiener.gaussian_kernel(5, 1.2)
    for _ in range(300):
        x = torch.rand(8, 3, 16, 16)
        term.after_vae_step(x, wiener.blur(x, k_true), torch.randn(8, 4), 0)
    assert (term.kernel(None) - k_true).abs().sum() < 0.05


def test_kernel_recovery_per_image():
    """Two kernels chosen by the latent: G_γ must learn the map z -> k, not just one kernel."""
    torch.manual_seed(0)
    term = make_term(kernel__mode="per_image", kernel__size=5, kernel__lr=0.03, kernel__init="delta",
                     kernel__hidden=32)
    k_true = torch.stack([wiener.gaussian_kernel(5, 0.6), wiener.gaussian_kernel(5, 1.2)])
    codes = torch.eye(4)[:2]
    for _ in range(300):
        x = torch.rand(8, 3, 16, 16)
        cls = torch.arange(8) % 2
        term.after_vae_step(x, wiener.blur(x, k_true[cls]), codes[cls], 0)
    with torch.no_grad():
        err = (term.kernel(codes) - k_true).abs().sum((-2, -1))
    assert err.max() < 0.05, err


def test_kernel_step_leaves_fixed_kernel_alone_and_vae_step_leaves_gamma_alone():
    x, z = torch.rand(4, 3, 16, 16), torch.randn(4, 4)
    fixed = make_term(kernel__mode="fixed", kernel__sigma=0.8)
    logs = fixed.after_vae_step(x, wiener.blur(x, wiener.gaussian_kernel(7, 0.8)), z, 3)
    assert logs["kernel_loss"] < 1e-8
    torch.testing.assert_close(fixed.kernel(z), wiener.gaussian_kernel(7, 0.8))

    for detach in (True, False):
        term = make_term(kernel__detach_in_vae_step=detach, kernel__lr=0.01)
        for _ in range(2):  # G_γ starts independent of z (zero last layer): train it a little first
            term.after_vae_step(x, wiener.blur(x, wiener.gaussian_kernel(5, 1.5)), z, 0)
        term.opt.zero_grad(set_to_none=True)
        zz = z.clone().requires_grad_()
        x_hat = torch.rand(4, 3, 16, 16, requires_grad=True)
        term.loss(x, x_hat, zz, 5)[0].backward()
        assert all(p.grad is None for p in term.predictor.parameters())
        assert (zz.grad is not None and zz.grad.abs().sum() > 0) == (not detach)


def test_eps_ramp_and_default_start_step():
    assert make_term(steps=10).start_step == 1
    assert make_term(steps=55).start_step == 5
    assert make_term(steps=1).start_step == 1
    assert make_term(steps=4999).start_step == 499
    term = make_term(steps=20, blur__start_step=4, blur__ramp_steps=3, blur__eps=0.8)
    assert [term.eps_at(t) for t in range(3, 9)] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 0.8])
    assert term.probe_metadata() == {"start_step": 4, "ramp_steps": 3}
    # a probe after `n` steps reports the ε of the last step done, n − 1
    z = torch.randn(2, 4)
    assert [float(term.probe(z, n)["eps"]) for n in (0, 4, 5, 6)] == pytest.approx([0, 0, 0.2, 0.4])
    assert make_term(blur__start_step=0).eps_at(0) == 1.0


def test_training_run_logs_kernels_that_change_and_differ(tmp_path):
    from blurbench import train
    from blurbench.config import DEFAULTS, RunSpec

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:16, :16]

    def blobs(n):
        out = np.zeros((n, 3, 16, 16))
        for img in out:
            for _ in range(4):
                cy, cx, r = rng.uniform(0, 16), rng.uniform(0, 16), rng.uniform(1.5, 5)
                img += rng.uniform(0, 1, (3, 1, 1)) * ((yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2)
        return (np.clip(out, 0, 1) * 255).astype(np.uint8)

    np.save(tmp_path / "train.npy", blobs(96))
    np.save(tmp_path / "test.npy", blobs(8))
    np.save(tmp_path / "monitor.npy", blobs(8))
    params = copy.deepcopy(bw.PARAMS)
    params["kernel"]["lr"] = 1e-2  # few steps here; the default 1e-4 is for full-length runs
    spec = RunSpec(run_id="toy/blur_per_image/seed0", dataset="toy", dataset_plugin="toy", resolution=16,
                   channels=3, method="blur_per_image", method_plugin="blur_wiener",
                   variant="blur_per_image", seed=0, params=params,
                   model={**DEFAULTS["model"], "base_width": 8, "max_width": 16},
                   train={**DEFAULTS["train"], "steps": 12, "log_every": 3, "batch_size": 32, "n_probe": 4})
    try:
        train.train(spec, tmp_path, tmp_path / "run", tmp_path / "ckpt.pt", threads=1, device="cpu",
                    log=lambda *_: None)
    finally:
        torch.use_deterministic_algorithms(False)  # train() switches it on for the whole process
    probe = np.load(tmp_path / "run" / "probe.npz")
    kernels = probe["kernels"]
    assert kernels.shape == (5, 4, 7, 7)
    assert probe["steps"].tolist() == [2, 3, 6, 9, 12]  # every 3 steps and at 1/8 of the budget
    np.testing.assert_allclose(kernels.sum((-2, -1)), 1.0, atol=1e-5)
    assert np.abs(kernels[-1] - kernels[0]).sum((-2, -1)).min() > 0.05  # every probe kernel moved
    last = kernels[-1]
    pairwise = np.abs(last[:, None] - last[None]).sum((-2, -1))
    assert pairwise[~np.eye(4, dtype=bool)].min() > 1e-3  # and they differ between images
    assert probe["eps"].tolist() == [1.0] * 5
    assert int(probe["start_step"]) == 1  # 10% of 12 steps
    with open(tmp_path / "run" / "train_log.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"recon_nll", "logdet", "kernel_loss", "eps", "gain"} <= set(rows[0])
    gains = [float(r["gain"]) for r in rows]
    assert 1 < gains[0] < gains[1]  # the first row (step 2) averages the L2 step 0 (gain 1) with a blur step
    assert gains[-1] > 2


# ---------------------------------------------------------------- plugin contract

@pytest.mark.parametrize("dotted,value", [
    ("kernel.mode", "learned"), ("kernel.size", 4), ("kernel.size", 0), ("kernel.size", 3.0),
    ("kernel.sigma", 0.0), ("kernel.lr", -1e-3), ("kernel.hidden", 0), ("kernel.init", "zeros"),
    ("kernel.detach_in_vae_step", "yes"), ("blur.eps", 1.5), ("blur.eps", -0.1), ("blur.C", 0.0),
    ("blur.start_step", -1), ("blur.start_step", 2.5), ("blur.ramp_steps", -2), ("blur.ramp_steps", None),
    ("blur.normalize_dc", 1), ("blur.normalize_gain", "no"),
])
def test_validate_names_the_key(dotted, value):
    params = copy.deepcopy(bw.PARAMS)
    group, key = dotted.split(".")
    params[group][key] = value
    with pytest.raises(ConfigError, match=dotted.replace(".", r"\.")):
        bw.validate(params)


def test_defaults_validate_and_kernel_larger_than_image_is_refused():
    bw.validate(copy.deepcopy(bw.PARAMS))
    with pytest.raises(ConfigError, match=r"kernel\.size"):
        make_term(shape=(3, 8, 8), kernel__size=9)


@pytest.mark.parametrize("mode", ["per_image", "global", "fixed"])
def test_state_dict_round_trip(mode):
    torch.manual_seed(0)
    x, z = torch.rand(4, 3, 16, 16), torch.randn(4, 4)
    x_hat = wiener.blur(x, wiener.gaussian_kernel(5, 1.5))
    a = make_term(kernel__mode=mode, kernel__lr=0.01)
    for _ in range(3):
        a.after_vae_step(x, x_hat, z, 0)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = make_term(kernel__mode=mode, kernel__lr=0.01)
    b.load_state_dict(torch.load(buf, weights_only=True))
    torch.testing.assert_close(b.kernel(z), a.kernel(z), rtol=0, atol=0)
    a.after_vae_step(x, x_hat, z, 0)  # the optimiser state came along too: the next step agrees
    b.after_vae_step(x, x_hat, z, 0)
    torch.testing.assert_close(b.kernel(z), a.kernel(z), rtol=0, atol=0)
    probe = b.probe(z, 3)
    assert probe["kernels"].shape == (4, 7, 7) and probe["kernels"].dtype == np.float32
    other = "global" if mode != "global" else "fixed"
    with pytest.raises(ValueError, match="kernel.mode"):
        make_term(kernel__mode=other).load_state_dict(a.state_dict())
