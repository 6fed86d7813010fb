"""The blur-Wiener term: spectral likelihood against dense matrices, L2 limits, kernel learning, plugin."""

from __future__ import annotations

import copy
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


def make_term(epochs=10, shape=(3, 16, 16), latent=4, **over):
    params = copy.deepcopy(bw.PARAMS)
    for dotted, value in over.items():
        group, key = dotted.split("__")
        params[group][key] = value
    return bw.Term(params, sigma2=0.01, epochs=epochs, latent_dim=latent, image_shape=shape, device=CPU)


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


def dense_precision(k, H, W, eps, C, sigma2, normalize_dc):
    """σ⁻²·AᵀA with the Wiener filter A = (1+C)·(BᵀB + C·I)⁻¹·Bᵀ of the blur B of k_ε = ε·k + (1−ε)·δ."""
    delta = np.zeros_like(k)
    delta[k.shape[0] // 2, k.shape[1] // 2] = 1.0
    B = dense_conv_matrix(eps * k + (1 - eps) * delta, H, W)
    A = np.linalg.solve(B.T @ B + C * np.eye(H * W), B.T)
    if normalize_dc:
        A = (1 + C) * A
    return A.T @ A / sigma2


@pytest.mark.parametrize("H,W", [(8, 8), (7, 6), (6, 7)])
@pytest.mark.parametrize("eps,normalize_dc", [(1.0, True), (0.6, True), (1.0, False)])
def test_logdet_and_quadratic_form_match_dense_precision(H, W, eps, normalize_dc):
    C, sigma2, channels = 0.01, 0.05, 2
    k = random_kernels(2, 3)
    x = torch.rand(2, channels, H, W, dtype=torch.float64)
    x_hat = torch.rand(2, channels, H, W, dtype=torch.float64)
    w2 = wiener.weight_power(k, (H, W), eps=eps, C=C, normalize_dc=normalize_dc)
    logdet = wiener.half_logdet(w2, W, channels)
    quad = wiener.quadratic_form(x - x_hat, w2)
    nll, mean_logdet = wiener.wiener_nll(x, x_hat, k, eps=eps, C=C, sigma2=sigma2,
                                         normalize_dc=normalize_dc)
    ref_nll = []
    for i in range(2):
        P = dense_precision(k[i].numpy(), H, W, eps, C, sigma2, normalize_dc)
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

@pytest.mark.parametrize("case", ["eps0", "delta", "delta_eps_half"])
def test_identity_cases_equal_l2_exactly(case):
    torch.manual_seed(0)
    x = torch.rand(4, 3, 16, 16)
    x_hat = torch.rand(4, 3, 16, 16, requires_grad=True)
    if case == "eps0":
        k, eps = random_kernels(4, 7, dtype=torch.float32), 0.0
    else:
        k = torch.zeros(4, 7, 7)
        k[:, 3, 3] = 1.0
        eps = 1.0 if case == "delta" else 0.5
    nll, logdet = wiener.wiener_nll(x, x_hat, k, eps=eps, C=0.01, sigma2=0.01)
    (g,) = torch.autograd.grad(nll, x_hat)
    ref = gaussian_nll(x, x_hat, 0.01)
    (g_ref,) = torch.autograd.grad(ref, x_hat)
    assert torch.equal(nll, ref)
    assert torch.equal(g, g_ref)
    assert logdet.item() == 0.0


def test_term_equals_l2_in_warmup_and_with_eps0():
    torch.manual_seed(0)
    x, x_hat, z = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16), torch.randn(4, 4)
    ref = gaussian_nll(x, x_hat, 0.01)
    warm = make_term(epochs=10)  # start_epoch = 1
    assert torch.equal(warm.loss(x, x_hat, z, 0)[0], ref)
    assert not torch.equal(warm.loss(x, x_hat, z, 1)[0], ref)
    assert torch.equal(make_term(blur__eps=0.0).loss(x, x_hat, z, 5)[0], ref)


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


def test_eps_ramp_and_default_start_epoch():
    assert make_term(epochs=10).start_epoch == 1
    assert make_term(epochs=55).start_epoch == 5
    assert make_term(epochs=1).start_epoch == 1
    term = make_term(epochs=20, blur__start_epoch=4, blur__ramp_epochs=3, blur__eps=0.8)
    assert [term.eps_at(e) for e in range(3, 9)] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 0.8])
    assert make_term(blur__start_epoch=0).eps_at(0) == 1.0


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
    params = copy.deepcopy(bw.PARAMS)
    params["kernel"]["lr"] = 1e-2  # few steps here; the default 1e-4 is for full-length runs
    spec = RunSpec(run_id="toy/blur_per_image/seed0", dataset="toy", dataset_plugin="toy", resolution=16,
                   channels=3, method="blur_per_image", method_plugin="blur_wiener",
                   variant="blur_per_image", seed=0, params=params,
                   model={**DEFAULTS["model"], "base_width": 8, "max_width": 16},
                   train={**DEFAULTS["train"], "epochs": 4, "batch_size": 32, "n_probe": 4},
                   evaluate=DEFAULTS["evaluate"], device="cpu")
    try:
        train.train(spec, tmp_path, tmp_path / "run", tmp_path / "ckpt.pt", threads=1, log=lambda *_: None)
    finally:
        torch.use_deterministic_algorithms(False)  # train() switches it on for the whole process
    probe = np.load(tmp_path / "run" / "probe.npz")
    kernels = probe["kernels"]
    assert kernels.shape == (4, 4, 7, 7)
    np.testing.assert_allclose(kernels.sum((-2, -1)), 1.0, atol=1e-5)
    assert np.abs(kernels[-1] - kernels[0]).sum((-2, -1)).min() > 0.05  # every probe kernel moved
    last = kernels[-1]
    pairwise = np.abs(last[:, None] - last[None]).sum((-2, -1))
    assert pairwise[~np.eye(4, dtype=bool)].min() > 1e-3  # and they differ between images
    assert probe["eps"].tolist() == [0.0, 1.0, 1.0, 1.0]
    assert int(probe["start_epoch"]) == 1
    header = (tmp_path / "run" / "train_log.csv").read_text().splitlines()[0].split(",")
    assert {"recon_nll", "logdet", "kernel_loss", "eps"} <= set(header)


# ---------------------------------------------------------------- plugin contract

@pytest.mark.parametrize("dotted,value", [
    ("kernel.mode", "learned"), ("kernel.size", 4), ("kernel.size", 0), ("kernel.size", 3.0),
    ("kernel.sigma", 0.0), ("kernel.lr", -1e-3), ("kernel.hidden", 0), ("kernel.init", "zeros"),
    ("kernel.detach_in_vae_step", "yes"), ("blur.eps", 1.5), ("blur.eps", -0.1), ("blur.C", 0.0),
    ("blur.start_epoch", -1), ("blur.ramp_epochs", -2), ("blur.normalize_dc", 1),
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
