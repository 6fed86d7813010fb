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
    """∇_θ KL[q_θ‖p] = ∫ ∇_θ q_θ(x) · log(q_θ(x)/p(x)) dx (the ∫∇q = 0 term dropped), by scipy.quad."""
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
    assert losses.add_instance_noise(x, 0.2, torch.Generator().manual_seed(0)).std().item() == pytest.approx(0.2, rel=0.05)
