"""The 2-D Swiss-roll toy of Sønderby et al.: exact density, exact posterior estimates, the ordering."""

import pytest
import torch

from blurbench.sr import toy


@pytest.fixture(scope="module")
def result():
    torch.set_num_threads(1)
    return toy.run_toy(seed=0)


def test_density_is_normalised():
    roll = toy.SwissRoll()
    g = torch.linspace(-4.5, 4.5, 226, dtype=torch.float64)
    xx, yy = torch.meshgrid(g, g, indexing="xy")
    mass = roll.log_prob(torch.stack([xx.flatten(), yy.flatten()], 1)).exp().sum() * (g[1] - g[0]) ** 2
    assert mass.item() == pytest.approx(1.0, abs=1e-3)


def test_posterior_estimates_match_a_brute_force_line_grid():
    """On a few y: MAP is the best point of a dense line grid, the mean is its weighted mean, the
    median splits its mass in half (log p evaluated by the mixture directly, not the factorisation)."""
    roll = toy.SwissRoll()
    y = torch.tensor([-2.0, -0.4, 0.3, 1.1, 2.5], dtype=torch.float64)
    est = toy.posterior_estimates(roll, y)
    u = torch.linspace(-5, 5, 20001, dtype=torch.float64)
    for i, yi in enumerate(y):
        pts = yi * roll.a + u[:, None] * roll.b
        logp = roll.log_prob(pts)
        w = torch.softmax(logp, 0)
        u_of = lambda x: (x[i] @ roll.b).item()  # noqa: E731
        assert roll.log_prob(est["MAP"][i:i + 1]).item() >= logp.max().item() - 1e-6
        assert u_of(est["MSE"]) == pytest.approx((w * u).sum().item(), abs=1e-3)
        assert w[u <= u_of(est["MAE"])].sum().item() == pytest.approx(0.5, abs=1e-3)


def test_ordering_map_affgan_mse(result):
    ce = result.cross_entropy
    assert ce["MAP"] + toy.ORDER_MARGIN["MAP<AffGAN"] < ce["AffGAN"]
    assert ce["AffGAN"] + toy.ORDER_MARGIN["AffGAN<MSE"] < ce["MSE"]


def test_projected_outputs_lie_on_the_constraint_line(result):
    for m in ("MAP", "MSE", "MAE", "AffGAN"):
        assert (result.outputs[m] @ result.roll.a - result.y).abs().max().item() <= 1e-12, m
    # SoftGAN has only a soft constraint, so it is off the line
    assert (result.outputs["SoftGAN"] @ result.roll.a - result.y).abs().mean().item() > 1e-4


def test_table_and_figure(result, tmp_path):
    rows = toy.toy_table(result)
    assert [r["method"] for r in rows] == list(toy.METHODS)
    assert all(r["cross_entropy"] == result.cross_entropy[r["method"]] for r in rows)
    assert {r["method"]: r["paper"] for r in rows}["AffGAN"] == 4.10
    path = tmp_path / "toy.png"
    toy.draw_toy_figure(result, path, grid=60)
    assert path.stat().st_size > 10_000
