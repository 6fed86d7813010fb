"""AffGAN's losses against exact 1-D quantities, and the SR network's training step."""

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from blurbench.sr import losses

# p: a two-component Gaussian mixture; q_θ: N(μ, e^{2ρ}), θ = (μ, ρ), drawn as x = μ + e^ρ ε
P_W, P_MU, P_SD = np.array([0.6, 0.4]), np.array([-1.0, 1.5]), np.array([0.5, 0.8])
THETA = (0.3, np.log(0.7))


def p_pdf(x):
    return sum(w * stats.norm.pdf(x, m, s) for w, m, s in zip(P_W, P_MU, P_SD))


def log_p_torch(x):
    comps = [np.log(w) + torch.distributions.Normal(m, s).log_prob(x) for w, m, s in zip(P_W, P_MU, P_SD)]
    return torch.logsumexp(torch.stack(comps), 0)


def grad_kl_by_quadrature():
    """∇_θ KL[q_θ‖p] = ∫ ∇_θ q_θ(x) · log(q_θ(x)/p(x)) dx (the ∫∇q = 0 term dropped), by quad."""
    mu, rho = THETA
    s = np.exp(rho)

    def integrand(x, j):
        q = stats.norm.pdf(x, mu, s)
        dq = q * (x - mu) / s ** 2 if j == 0 else q * ((x - mu) ** 2 / s ** 2 - 1)
        return dq * (np.log(q) - np.log(p_pdf(x)))

    return np.array([integrate.quad(integrand, mu - 14 * s, mu + 14 * s, args=(j,), epsabs=1e-12,
                                    limit=200)[0] for j in (0, 1)])


def grad_of_generator_loss(loss_fn):
    """∇_θ E_ε[loss(l*(x_θ(ε)))] with the optimal discriminator l* = log p − log q_θ₀ held fixed
    (θ₀ = θ, not differentiated: D is a separate network), E_ε by 120-node Gauss–Hermite."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(120)
    eps = torch.tensor(nodes)
    w = torch.tensor(weights / np.sqrt(2 * np.pi))
    theta = torch.tensor(THETA, dtype=torch.float64, requires_grad=True)
    x = theta[0] + theta[1].exp() * eps
    q0 = torch.distributions.Normal(theta[0].detach(), theta[1].detach().exp())
    logits = log_p_torch(x) - q0.log_prob(x)
    (w * loss_fn(logits, reduction="none")).sum().backward()
    return theta.grad.numpy()


def test_affgan_generator_loss_gradient_is_grad_kl():
    expected = grad_kl_by_quadrature()
    assert np.abs(expected).min() > 0.05  # a non-trivial point, away from the optimum
    np.testing.assert_allclose(grad_of_generator_loss(losses.affgan_generator_loss), expected, atol=1e-3)
    # the check discriminates: −log D (non-saturating) follows a different divergence
    nonsat = grad_of_generator_loss(losses.nonsaturating_generator_loss)
    assert np.abs(nonsat - expected).max() > 1e-2


def test_discriminator_loss_is_minimised_at_the_log_density_ratio():
    """Two discrete distributions given as batches with repeats: the gradient of the loss wrt the
    per-point logits vanishes exactly at l = log p − log q, and not elsewhere."""
    real_counts, fake_counts = torch.tensor([5, 1, 3, 7]), torch.tensor([2, 6, 2, 2])
    real_idx = torch.repeat_interleave(torch.arange(4), real_counts)
    fake_idx = torch.repeat_interleave(torch.arange(4), fake_counts)
    real_p, fake_p = real_counts.double() / real_counts.sum(), fake_counts.double() / fake_counts.sum()
    log_ratio = real_p.log() - fake_p.log()
    for shift, vanishes in [(0.0, True), (0.3, False)]:
        logits = (log_ratio + shift).requires_grad_()
        losses.discriminator_loss(logits[real_idx], logits[fake_idx]).backward()
        assert (logits.grad.abs().max().item() < 1e-12) == vanishes


def test_instance_noise_anneals_linearly_to_zero():
    stds = [losses.instance_noise_std(t, 100, start=0.2) for t in (0, 25, 50, 100, 150)]
    assert stds == pytest.approx([0.2, 0.15, 0.1, 0.0, 0.0])
    x = torch.zeros(10_000, dtype=torch.float64)
    assert losses.add_instance_noise(x, 0.0) is x
    noisy = losses.add_instance_noise(x, 0.2, torch.Generator().manual_seed(0))
    assert noisy.std().item() == pytest.approx(0.2, rel=0.05)


# --- the SR network and its training step ---------------------------------------------------------

from blurbench.errors import ConfigError  # noqa: E402
from blurbench.sr.network import SRNet, SRStep, SRTrainingDiverged, load_method, train_sr  # noqa: E402
from blurbench.sr.operators import make_operator  # noqa: E402


def smooth_images(n, seed=0):
    """Random smooth 16² RGB images in [0, 1]: 4² uniform noise upsampled bilinearly, which a
    network can learn to interpolate better than A⁺y does."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=gen)
    return torch.nn.functional.interpolate(coarse, size=16, mode="bilinear", align_corners=False)


@pytest.mark.parametrize("op_name", ["avgpool", "gaussian"])
def test_aff_mse_outputs_are_consistent_and_mse_trains(op_name):
    op = make_operator(op_name, (16, 16), factor=4)
    x = smooth_images(32)
    model, log = train_sr("aff_mse", x, op, steps=30, batch=8, lr=1e-3, seed=0, width=16, depth=2, log_every=1)
    test = smooth_images(8, seed=1)
    y = op.A(test)
    with torch.no_grad():
        x_hat = model(y)
    assert ((op.A(x_hat) - y).norm() / y.norm()).item() <= 1e-6
    assert all(r["lr_rel"] <= 1e-12 for r in log)  # squared relative error
    model, log = train_sr("mse", x, op, steps=120, batch=8, lr=3e-3, seed=0, width=16, depth=2, log_every=1)
    first, last = np.mean([r["loss"] for r in log[:10]]), np.mean([r["loss"] for r in log[-10:]])
    assert last < 0.7 * first
    assert model.features(y).shape == (8, 16, 4, 4)


def test_gan_methods_run_and_only_aff_gan_is_projected():
    op = make_operator("avgpool", (16, 16), factor=4)
    x = smooth_images(16)
    y = op.A(smooth_images(4, seed=2))
    rel = {}
    for method in ("aff_gan", "soft_gan"):
        model, log = train_sr(method, x, op, steps=6, batch=8, lr=1e-3, seed=0, width=16, depth=1, log_every=3)
        assert [r["step"] for r in log] == [3, 6]
        assert log[0]["noise"] > log[1]["noise"] > 0  # annealed linearly over the 6 steps
        with torch.no_grad():
            x_hat = model(y)
        assert torch.isfinite(x_hat).all()
        rel[method] = ((op.A(x_hat) - y).norm() / y.norm()).item()
    assert rel["aff_gan"] <= 1e-6 < rel["soft_gan"]


def test_diverging_gan_stops_at_the_step_and_keeps_finite_parameters():
    op = make_operator("avgpool", (16, 16), factor=4)
    expected = r"^\[sr aff_gan\] .* became (nan|inf|-inf) at step (\d+); stopped"
    with pytest.raises(SRTrainingDiverged, match=expected) as e:
        train_sr("aff_gan", smooth_images(16), op, steps=50, batch=8, lr=30.0, seed=0, width=8, depth=1)
    assert "\n" not in str(e.value) and e.value.step > 1
    assert f"(after step {e.value.step - 1})" in str(e.value)
    assert all(torch.isfinite(p).all() for p in e.value.model.parameters())


@pytest.mark.parametrize("kwargs,match", [
    (dict(method="wgan"), "sr method 'wgan' is unknown; expected one of mse, aff_mse, aff_gan, soft_gan, aff_blur"),
    (dict(hr_train=torch.rand(4, 3, 32, 32)), "sr hr_train is 32×32 but the operator was built for 16×16"),
    (dict(hr_train=torch.full((4, 3, 16, 16), float("nan"))), "sr hr_train holds NaN or infinite values"),
    (dict(steps=0), "sr steps 0 must be a positive integer"),
    (dict(batch=5), "sr batch 5 exceeds the 4 training images"),
    (dict(lr=-1.0), "sr lr -1.0 must be a positive number"),
])
def test_train_sr_refuses_bad_input(kwargs, match):
    args = dict(method="mse", hr_train=torch.rand(4, 3, 16, 16), operator=make_operator("avgpool", (16, 16)),
                steps=2, batch=2, lr=1e-3, seed=0) | kwargs
    with pytest.raises(ConfigError, match=match):
        train_sr(**args)


def test_projection_layer_is_optional_in_the_same_network():
    op = make_operator("gaussian", (16, 16), factor=4)
    torch.manual_seed(0)
    plain = SRNet(op, 3, width=8, depth=1)
    projected = SRNet(op, 3, width=8, depth=1, project=True)
    projected.load_state_dict(plain.state_dict())
    y = op.A(smooth_images(2))
    with torch.no_grad():
        a, b = plain(y), projected(y)
    assert (op.A(a) - y).norm() > 1e-3 * y.norm()
    torch.testing.assert_close(b, op.project(a, y), rtol=0, atol=1e-6)


def test_aff_blur_is_projected_and_learns_a_kernel_per_image_from_the_lr_features():
    """The harness's cross of the two ideas: the blur-Wiener NLL under the projection, its kernel
    generator conditioned on the SR body's pooled LR features (no latent in SR)."""
    op = make_operator("avgpool", (16, 16), factor=4)
    params = {"kernel": {**load_method("aff_blur", operator=op, channels=3, steps=1, width=8,
                                       device=torch.device("cpu")).params["kernel"], "size": 3, "lr": 1e-2}}
    model, log = train_sr("aff_blur", smooth_images(16), op, steps=12, batch=8, lr=1e-3, seed=0, width=8,
                          depth=1, params=params, log_every=4)
    assert {"recon_nll", "logdet", "gain", "kernel_loss", "mse"} <= set(log[-1]) and log[-1]["gain"] > 1
    y = op.A(smooth_images(4, seed=3))
    with torch.no_grad():
        x_hat = model(y)
    assert ((op.A(x_hat) - y).norm() / y.norm()).item() <= 1e-6
    sr = SRStep("aff_blur", params, op, 3, steps=12, lr=1e-3, width=8, depth=1)
    with torch.no_grad():
        kernels = sr.method.term.kernel(sr.method._code(sr.model.features(y)))
    assert kernels.shape == (4, 3, 3)


def test_an_sr_method_name_that_is_a_vae_term_is_refused():
    with pytest.raises(ConfigError, match="sr method 'l2' is a vae method"):
        load_method("l2", operator=make_operator("avgpool", (16, 16)), channels=3, steps=1, width=8,
                    device=torch.device("cpu"))
