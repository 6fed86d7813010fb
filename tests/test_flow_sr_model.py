"""The null-space SR flow: Haar coordinates, consistency with the LR by construction, invertibility,
the density against autograd's Jacobian, what a fixed latent does as the condition leaves the training
range, bad input, and a training smoke test."""

import math

import pytest
import torch
import torch.nn.functional as F

from blurbench.errors import ConfigError
from blurbench.flows.coupling import AFFINE_EPS, COUPLINGS
from blurbench.flows.sr_flow import DEQUANT, SRFlow, haar, ihaar
from blurbench.sr.operators import AvgPool


def smooth_images(n, size=16, channels=1, seed=0, dtype=torch.float32):
    """Smooth images in [0, 1]: 4×4 uniform noise upsampled bicubically."""
    g = torch.Generator().manual_seed(seed)
    lo = torch.rand(n, channels, 4, 4, generator=g, dtype=dtype)
    return F.interpolate(lo, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def latents(model, y, temperature=0.9, seed=3):
    g = torch.Generator().manual_seed(seed)
    return [temperature * torch.randn(s, generator=g, dtype=y.dtype) for s in model.latent_shapes(y)]


def perturb_last_layers(model, std, seed=0):
    """Small random weights in each coupling's zero-initialised last layer, so the flow is not the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for flow in model.flows:
            for layer in flow.couplings:
                for p in layer.net[-1].parameters():
                    p.copy_(std * torch.randn(p.shape, generator=g, dtype=p.dtype))


def randomise(model, std, seed=0, bias=True):
    """Every parameter but the ActNorms' N(0, std²); with bias=False the biases are zero, which makes each ReLU network
    positively homogeneous: f(a·u) = a·f(u) for a > 0, i.e. linear along rays."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("norms."):
                continue  # the ActNorms stay the identity (uninitialised)
            keep = bias or not name.endswith("bias")
            p.copy_(std * torch.randn(p.shape, generator=g, dtype=p.dtype) if keep else torch.zeros_like(p))


def test_haar_bands_orthonormality_and_two_levels_give_the_lr():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=torch.float64)  # a b / c e
    ll, d = haar(x)
    assert ll.item() == 5.0 and d.flatten().tolist() == [-1.0, -2.0, 0.0]
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 64, 64, generator=g, dtype=torch.float64)
    ll1, d1 = haar(x)
    assert ll1.shape == (2, 3, 32, 32) and d1.shape == (2, 9, 32, 32)
    assert abs(torch.cat([ll1.flatten(), d1.flatten()]).norm() - x.norm()) <= 1e-6 * x.norm()
    assert (ihaar(ll1, d1) - x).abs().max() <= 1e-6
    ll2, _ = haar(ll1)
    assert torch.allclose(ll2, 4 * AvgPool(4, (64, 64)).A(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_assemble_inverts_null_space_and_any_details_keep_the_lr(levels):
    model = SRFlow("affine", 2, levels=levels)
    s = 2 ** levels
    x = smooth_images(3, size=8 * s // 2, channels=2, dtype=torch.float64)
    y = model.lr(x)
    ds = model.null_space(x)
    assert [d.shape[-1] for d in ds] == [x.shape[-1] // 2 ** k for k in range(levels, 0, -1)]
    assert sum(d[0].numel() for d in ds) == x[0].numel() * (1 - 1 / s ** 2)
    assert (model.assemble(y, *ds) - x).abs().max() <= 1e-12
    g = torch.Generator().manual_seed(1)
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-6)):
        yd = y.to(dtype)
        wild = [10 * torch.randn(d.shape, generator=g, dtype=dtype) for d in ds]
        xw = model.assemble(yd, *wild)
        assert (F.avg_pool2d(xw, s) - yd).abs().max() <= tol * max(1.0, xw.abs().max().item())
        assert (xw - model.assemble(yd, *ds)).abs().max() > 1  # the details do change x


@pytest.mark.parametrize("kind", COUPLINGS)
def test_sampling_at_fixed_latents_inverts_to_1e5_relative_in_float32(kind):
    model = SRFlow(kind, 3)
    perturb_last_layers(model, 0.05)
    x = smooth_images(4, channels=3)
    y = model.lr(x)
    z = latents(model, y)
    with torch.no_grad():
        d = model.decode(y, z)
        x_hat = model.sample_at(y, z)
        z_back = model.encode(x_hat, y)
        x_back = model.assemble(y, *model.decode(y, model.encode(x)))
        lp = torch.cat([model.log_prob(x), model.log_prob(x_hat, y)])
    assert max((a - b).abs().max().item() for a, b in zip(z, d)) > 1e-2  # not the identity
    for a, b in zip(z, z_back):
        assert ((a - b).norm() / a.norm()).item() <= 1e-5
    assert ((x_back - x).norm() / x.norm()).item() <= 1e-5
    assert torch.isfinite(lp).all()


@pytest.mark.parametrize("kind", COUPLINGS)
def test_log_prob_equals_change_of_variables_with_autograd_jacobian(kind):
    """log p(d | y) = log N(z(d)) + log|det ∂z/∂d| over all null-space coordinates at once; the level-1
    latents depend on d2 through the context, so the Jacobian is block triangular, not block diagonal."""
    model = SRFlow(kind, 1, n_couplings=3, hidden=8, features=4).double()
    randomise(model, 0.2)
    x = smooth_images(2, size=8, dtype=torch.float64)
    y = model.lr(x)
    d2, d1 = (3 * d for d in model.null_space(x))  # some spline inputs beyond ±0.5, in the identity tails
    lp = model.log_prob(model.assemble(y, d2, d1), y)
    for i in range(2):
        yi = y[i:i + 1]

        def z_of(v):
            ds = (v[:12].view(1, 3, 2, 2), v[12:].view(1, 3, 4, 4))
            return torch.cat([z.flatten() for z in model.encode(model.assemble(yi, *ds), yi)])

        v = torch.cat([d2[i].flatten(), d1[i].flatten()])
        jac = torch.autograd.functional.jacobian(z_of, v)
        assert jac.shape == (60, 60) and jac[12:, :12].abs().max() > 1e-3
        z = z_of(v)
        direct = -0.5 * (z @ z) - 30 * math.log(2 * math.pi) + torch.linalg.slogdet(jac)[1]
        assert abs(direct.item() - lp[i].item()) <= 1e-9 * abs(direct.item())


@pytest.mark.parametrize("kind", COUPLINGS)
@pytest.mark.parametrize("temperature", [0.1, 0.9, 5.0])
def test_samples_are_consistent_with_the_lr(kind, temperature):
    model = SRFlow(kind, 3)
    perturb_last_layers(model, 0.05)
    y = model.lr(smooth_images(4, channels=3))
    with torch.no_grad():
        x_hat = model.sample(y, temperature, generator=torch.Generator().manual_seed(0))
    assert x_hat.shape == (4, 3, 16, 16)
    assert (F.avg_pool2d(x_hat, 4) - y).abs().max() <= 1e-5 * x_hat.abs().max()
    assert (x_hat - AvgPool(4, (16, 16)).pinv(y)).abs().max() > 0.05 * temperature  # details were sampled


def test_fixed_latent_explodes_for_affine_and_obeys_the_spline_bound_as_the_lr_is_scaled():
    """Deterministic stand-in for a trained conditioner far outside its range: random weights and zero
    biases make every ReLU network positively homogeneous, so scaling y by a scales the LR features and
    the coarse bands by a and the coupling nets' outputs grow linearly with a, as a ReLU network
    extrapolates. The affine inverse divides by sigmoid(h + 2) + 1e-4, so its null-space output at a
    fixed z grows without bound; the spline's obeys |d| ≤ σ·(max(B, ‖z‖∞) + K·shift_bound) + |b| per level
    (coupling.py, and the ActNorm in front: `spline_bound`) at every condition. Measured on the HR output: its null-space part x̂ − A⁺y."""
    k, bound, shift = 4, 0.5, 1.0
    x = smooth_images(4)
    pinv = AvgPool(4, (16, 16)).pinv
    models = {kind: SRFlow(kind, 1, n_couplings=k, hidden=8, features=4) for kind in ("affine", "spline")}
    for model in models.values():
        randomise(model, 0.1, seed=2, bias=False)
    y = models["affine"].lr(x)
    z = latents(models["affine"], y)
    scales = (1.0, 4.0, 16.0, 64.0)
    affine_norms = []
    with torch.no_grad():
        for a in scales:
            x_hat = models["affine"].sample_at(a * y, z)
            affine_norms.append((x_hat - pinv(a * y)).abs().max().item())
        for cond in [a * y for a in scales] + [-64 * y, y + 1e3]:
            for d, zl in zip(models["spline"].decode(cond, z), z):
                assert torch.isfinite(d).all()
                assert d.abs().max() <= models["spline"].spline_bound(zl.abs().max().item()) + 1e-5
    spline_limit = models["spline"].spline_bound(max(zl.abs().max().item() for zl in z))
    assert spline_limit == pytest.approx(max(bound, max(zl.abs().max().item() for zl in z)) + k * shift)  # σ = 1, b = 0
    assert all(b > a for a, b in zip(affine_norms, affine_norms[1:]))
    assert affine_norms[-1] > 1e3 * affine_norms[0] and affine_norms[-1] > 1e3 * spline_limit


@pytest.mark.parametrize("make, key", [
    (lambda: SRFlow("glow", 1), "coupling: unknown coupling 'glow'"),
    (lambda: SRFlow("spline", 1, bins=1), "bins: 1 is not an integer ≥ 2"),
    (lambda: SRFlow("spline", 1, tail_bound=0), "tail_bound: 0 is not"),
    (lambda: SRFlow("spline", 1, tail_bound=-0.5), "tail_bound: -0.5 is not"),
    (lambda: SRFlow("affine", 0), "channels: 0 is not an integer ≥ 1"),
    (lambda: SRFlow("affine", 1, levels=0), "levels: 0 is not an integer ≥ 1"),
    (lambda: SRFlow("affine", 1).sample(torch.zeros(1, 1, 4, 4), 0), "temperature: 0 is not"),
    (lambda: SRFlow("affine", 1).sample(torch.zeros(1, 1, 4, 4), -0.9), "temperature: -0.9 is not"),
    (lambda: SRFlow("affine", 1).sample(torch.zeros(1, 1, 4, 4), float("nan")), "temperature: nan is not"),
    (lambda: SRFlow("affine", 1).log_prob(torch.zeros(1, 1, 18, 18)),
     "x: image size 18×18 is not divisible by the factor 4"),
    (lambda: SRFlow("affine", 1, levels=3).null_space(torch.zeros(1, 1, 16, 12)),
     "x: image size 16×12 is not divisible by the factor 8"),
    (lambda: SRFlow("affine", 1).log_prob(torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 8, 8)),
     "y: shape (1, 1, 8, 8) does not match"),
])
def test_bad_input_is_one_clear_line(make, key):
    with pytest.raises(ConfigError) as e:
        make()
    assert str(e.value).startswith(key) and "\n" not in str(e.value)


def test_seeded_weights_leave_the_callers_generator_alone_and_features_pool():
    state = torch.random.get_rng_state()
    a, b, c = SRFlow("spline", 1, seed=5), SRFlow("spline", 1, seed=5), SRFlow("spline", 1, seed=6)
    assert torch.equal(torch.random.get_rng_state(), state)
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    y = a.lr(smooth_images(5))
    f = a.pooled_features(y)
    assert f.shape == (5, 16) and torch.allclose(f, a.conditioner(y).mean((2, 3)))
    assert (f.std(0) > 0).any()  # it depends on the condition


def test_bits_per_dim_and_training_loss_conventions():
    """D = 256 − 16 = 240 null-space dims for a 1×16×16 image; bits/dim = (−log p / ln 2)/D + 8 at δ = 1/256;
    the loss is −log p/D in nats at the dequantised coordinates (δ = 0: at the coordinates themselves)."""
    model = SRFlow("spline", 1)
    perturb_last_layers(model, 0.05)
    x = smooth_images(3)
    with torch.no_grad():
        lp = model.log_prob(x)
        bpd = model.bits_per_dim(x)
        exact = model.training_nll(x, torch.Generator().manual_seed(0), dequant=0.0)
        noisy = [model.training_nll(x, torch.Generator().manual_seed(s)) for s in (0, 0, 1)]
    assert DEQUANT == 1 / 256
    assert torch.allclose(bpd, -lp / (240 * math.log(2)) + 8, rtol=1e-6)
    assert torch.allclose(exact, -lp.mean() / 240, rtol=1e-6)
    assert noisy[0] == noisy[1] and noisy[0] != noisy[2] and abs(noisy[0] - exact) < 0.05


@pytest.mark.parametrize("kind", ["affine", "spline"])
def test_training_lowers_the_nll_below_the_standard_normals_peak(kind):
    """30 Adam steps on smooth images after the ActNorm is initialised from a batch. The SRFlow affine
    form has s = sigmoid(h + 2) + eps ≤ 1 + eps, so without the ActNorm its NLL could not fall below
    ½ log 2π nats/dim (the module doc); with it, both couplings go below, as natural details need."""
    pool = smooth_images(64, seed=1)
    floor = 0.5 * math.log(2 * math.pi) - 4 * math.log(1 + AFFINE_EPS)
    bare = SRFlow(kind, 1, hidden=16, features=8)
    assert bare.training_nll(pool[:16]).item() > floor - 0.05  # uninitialised: about N(0, I)'s peak
    model = SRFlow(kind, 1, hidden=16, features=8)
    model.initialise(pool[:16])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for step in range(30):
        loss = model.training_nll(pool[torch.randperm(64, generator=g)[:16]], g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.05 and last < floor - 1


def test_actnorm_initialises_each_band_to_zero_mean_unit_spread():
    model = SRFlow("affine", 3)
    x = smooth_images(8, channels=3)
    assert not any(bool(n.initialised) for n in model.norms)
    model.initialise(x)
    for norm, d in zip(model.norms, model.null_space(x)):
        u, logdet = norm(d)
        assert bool(norm.initialised)
        assert torch.allclose(u.mean(dim=(0, 2, 3)), torch.zeros(9), atol=1e-5)
        assert torch.allclose(u.std(dim=(0, 2, 3)), torch.ones(9), atol=1e-4)
        assert torch.allclose(logdet, -norm.log_scale.sum() * d.shape[2] * d.shape[3] * torch.ones(8))
        assert torch.allclose(norm.inverse(u), d, atol=1e-6)
    with pytest.raises(ValueError, match="affine coupling has no condition-free bound"):
        model.spline_bound(3.0)
