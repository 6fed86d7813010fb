"""The conditional couplings: bad input, invertibility, log-det against autograd, the spline's shape,
and what the inverse does to a fixed z as the condition leaves the training range."""


import math

import pytest
import torch

from blurbench.errors import ConfigError
from blurbench.flows.coupling import (AFFINE_EPS, COUPLINGS, ConditionalCoupling, build_flow,
                                      check_temperature, rq_spline)


def randomise(module: torch.nn.Module, std: float, seed: int = 0) -> None:
    """Non-zero weights everywhere (the conditioners start at the identity, which would test nothing)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)


@pytest.mark.parametrize("kwargs, key", [
    (dict(kind="glow"), "coupling: unknown coupling 'glow'"),
    (dict(kind="spline", bins=1), "bins: 1 is not an integer ≥ 2"),
    (dict(kind="spline", bins=2.5), "bins: 2.5"),
    (dict(kind="spline", tail_bound=0), "tail_bound: 0 is not"),
    (dict(kind="spline", tail_bound=-0.5), "tail_bound: -0.5 is not"),
    (dict(kind="affine", channels=1), "channels: 1 cannot be split"),
])
def test_bad_coupling_is_one_clear_line(kwargs, key):
    args = dict(channels=4, context_channels=1) | kwargs
    with pytest.raises(ConfigError) as e:
        ConditionalCoupling(args.pop("kind"), args.pop("channels"), args.pop("context_channels"), **args)
    assert str(e.value).startswith(key) and "\n" not in str(e.value)


@pytest.mark.parametrize("t", [0, -0.9, float("nan"), float("inf")])
def test_bad_temperature_is_one_clear_line(t):
    with pytest.raises(ConfigError, match=r"^temperature: .* is not a finite number > 0$"):
        check_temperature(t)
    flow = build_flow("affine", 2, 1, 1)
    with pytest.raises(ConfigError, match=r"^temperature:"):
        flow.sample(torch.zeros(3, 1), (2,), temperature=t)


def inputs(image: bool, dtype, n=16, seed=1):
    """In-distribution data (≈ N(0, 0.3²)) and conditions in the training range [−1, 1]."""
    g = torch.Generator().manual_seed(seed)
    shape, cshape = ((n, 4, 4, 4), (n, 2, 4, 4)) if image else ((n, 6), (n, 2))
    x = 0.3 * torch.randn(shape, generator=g, dtype=dtype)
    c = 2 * torch.rand(cshape, generator=g, dtype=dtype) - 1
    return x, c


@pytest.mark.parametrize("image", [False, True], ids=["vector", "image"])
@pytest.mark.parametrize("kind", COUPLINGS)
def test_flow_inverts_to_1e5_relative_in_float32(kind, image):
    """Near-singular scales are the documented exception: the inverse error grows as 1/(scale or
    derivative); in-distribution weights keep them moderate, and the log-dets cancel too."""
    x, c = inputs(image, torch.float32)
    flow = build_flow(kind, x.shape[1], c.shape[1], 4, image=image, hidden=16)
    randomise(flow, 0.3 if not image else 0.1)
    z, ld = flow(x, c)
    assert (z - x).abs().max() > 1e-2  # the flow is not the identity
    x_back, ld_inv = flow.inverse(z, c)
    assert ((x_back - x).norm() / x.norm()).item() <= 1e-5
    assert torch.allclose(ld, -ld_inv, atol=1e-4)


@pytest.mark.parametrize("image", [False, True], ids=["vector", "image"])
@pytest.mark.parametrize("kind", COUPLINGS)
def test_logdet_equals_autograd_jacobian_in_float64(kind, image):
    x, c = inputs(image, torch.float64, n=3)
    x = x * 3  # so some spline inputs fall in the identity tails beyond ±0.5
    flow = build_flow(kind, x.shape[1], c.shape[1], 3, image=image, hidden=8).double()
    randomise(flow, 0.4 if not image else 0.2)
    _, ld = flow(x, c)
    for i in range(x.shape[0]):
        jac = torch.autograd.functional.jacobian(lambda v: flow(v.view_as(x[i:i + 1]), c[i:i + 1])[0].flatten(),
                                                 x[i].flatten())
        assert abs(torch.linalg.slogdet(jac)[1].item() - ld[i].item()) <= 1e-4


def spline_params(n, bins, scale, seed=2, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [scale * torch.randn(k, n, generator=g, dtype=dtype) for k in (bins, bins, bins - 1)]


@pytest.mark.parametrize("bins", [2, 5])
def test_spline_is_monotone_and_the_identity_outside_its_bound(bins):
    bound = 0.5
    x = torch.linspace(-1.5, 1.5, 3001, dtype=torch.float64)
    uw, uh, ud = (p.expand(-1, x.numel()) for p in spline_params(1, bins, 2.0))
    y, logd = rq_spline(x, uw, uh, ud, bound)
    assert (y.diff() > 0).all()
    outside = x.abs() > bound
    assert torch.equal(y[outside], x[outside]) and (logd[outside] == 0).all()
    inside = ~outside
    assert (y[inside].abs() <= bound).all() and (y[inside] - x[inside]).abs().max() > 0.05
    # continuous where the tails join: the derivative at ±B is 1
    e = 1e-7
    edge = torch.tensor([-bound + e, bound - e], dtype=torch.float64)
    y_edge, _ = rq_spline(edge, uw[:, :2], uh[:, :2], ud[:, :2], bound)
    assert torch.allclose(y_edge, edge, atol=1e-6)


def test_spline_coupling_without_shift_is_the_identity_outside_its_bound():
    layer = ConditionalCoupling("spline", 2, 1, shift_bound=0.0, hidden=8).double()
    randomise(layer, 1.0)
    x = torch.tensor([[0.1, -3.0], [0.2, 0.7], [0.3, 0.2]], dtype=torch.float64)
    z, ld = layer(x, torch.zeros(3, 1, dtype=torch.float64))
    assert torch.equal(z[:2], x[:2]) and torch.equal(ld[:2], torch.zeros(2, dtype=torch.float64))
    assert z[2, 1] != x[2, 1]


def test_spline_agrees_with_nflows():
    """The same parameterisation as nflows' linear-tail spline (its end-derivative padding included)."""
    import nflows.transforms.splines.rational_quadratic as nf
    x = torch.linspace(-0.8, 0.8, 401, dtype=torch.float64)
    uw, uh, ud = spline_params(x.numel(), 3, 1.5)
    y, logd = rq_spline(x, uw, uh, ud, 0.5)
    offset = math.log(math.expm1(1 - 1e-3))  # nflows adds this itself only to the end derivatives
    y_nf, logd_nf = nf.unconstrained_rational_quadratic_spline(x, uw.T, uh.T, ud.T + offset, tails="linear",
                                                                tail_bound=0.5)  # nflows: bins last
    assert torch.allclose(y, y_nf, atol=1e-10) and torch.allclose(logd, logd_nf, atol=1e-8)


def linear_in_c(layer: ConditionalCoupling, slope: float) -> None:
    """Replace the conditioner by one that ignores x_a and is linear in the condition c, which is how a
    trained ReLU conditioner extrapolates far outside its training range: every output = slope·c·sign,
    with the signs alternating, so half of the affine log-scale inputs go to −∞ as c grows."""
    lin = torch.nn.Linear(layer.net[0].in_features, layer.net[-1].out_features)
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.zero_()
        signs = torch.tensor([(-1.0) ** i for i in range(lin.out_features)])
        lin.weight[:, -1] = slope * signs
    layer.net = lin


def test_affine_inverse_explodes_as_the_condition_leaves_the_training_range():
    """At fixed z, ‖x(z, c)‖ of one affine layer grows with c: 1/s reaches 1/eps = 1e4."""
    layer = ConditionalCoupling("affine", 4, 1)
    linear_in_c(layer, 2.0)
    z = torch.full((1, 4), 0.5)
    norms = [layer.inverse(z, torch.tensor([[c]]))[0].norm().item() for c in (1.0, 2.0, 3.0, 5.0, 10.0)]
    assert all(b > a for a, b in zip(norms, norms[1:]))
    assert norms[-1] / norms[0] > 1e3
    # at c = 10 one element has h = −20, shift = −20: x_b = (0.5 + 20) / (sigmoid(−18) + eps), ≈ 2e5
    assert norms[-1] >= 20.5 / (1 / (1 + math.exp(18)) + AFFINE_EPS) * (1 - 1e-4)


def test_spline_inverse_stays_within_its_stated_bound_for_any_condition():
    """One layer: |x_b| ≤ max(B, |z_b| + shift_bound); the same linear-in-c conditioner as above."""
    layer = ConditionalCoupling("spline", 4, 1, bins=2, tail_bound=0.5, shift_bound=1.0)
    linear_in_c(layer, 2.0)
    z = torch.full((1, 4), 0.5)
    for c in (1.0, 5.0, 1e2, 1e4, -1e4):
        x, _ = layer.inverse(z, torch.tensor([[c]]))
        assert torch.isfinite(x).all() and x.abs().max() <= max(0.5, 0.5 + 1.0) + 1e-6


def test_spline_flow_bound_holds_for_wild_weights_and_conditions():
    """K layers: ‖x‖∞ ≤ max(B, ‖z‖∞) + K·shift_bound, whatever the weights and the condition; an affine
    flow with the same weights breaks any such bound."""
    k, bound, shift = 4, 0.5, 0.3
    g = torch.Generator().manual_seed(3)
    z = 0.9 * torch.randn(64, 4, generator=g)
    c = 100 * torch.randn(64, 2, generator=g)
    spline = build_flow("spline", 4, 2, k, tail_bound=bound, shift_bound=shift)
    affine = build_flow("affine", 4, 2, k)
    randomise(spline, 1.0)
    randomise(affine, 1.0)
    with torch.no_grad():
        xs, xa = spline.inverse(z, c)[0], affine.inverse(z, c)[0]
    limit = torch.clamp(z.abs().amax(1), min=bound) + k * shift
    assert (xs.abs().amax(1) <= limit + 1e-5).all()
    assert (~torch.isfinite(xa) | (xa.abs() > 1e3)).any()
