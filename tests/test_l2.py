"""l2: the σ² divisor that turns an L2 σ² sweep into an ordinary ablation."""

import pytest
import torch

from blurbench import plugins
from blurbench.errors import ConfigError
from blurbench.method_api import gaussian_nll

l2 = plugins.load_method("l2")
SIGMA2 = 0.01


def make_term(**params):
    return l2.Term({**l2.PARAMS, **params}, sigma2=SIGMA2, steps=1, latent_dim=4, image_shape=(3, 8, 8),
                   device=torch.device("cpu"))


def test_divisor_one_is_the_plain_baseline_bit_for_bit():
    x = torch.rand(4, 3, 8, 8)
    x_hat = torch.rand(4, 3, 8, 8, requires_grad=True)
    loss, logs = make_term().loss(x, x_hat, None, 0)
    ref = gaussian_nll(x, x_hat, SIGMA2)
    assert torch.equal(loss, ref)
    assert torch.equal(torch.autograd.grad(loss, x_hat)[0], torch.autograd.grad(ref, x_hat)[0])
    assert isinstance(logs["recon_nll"], torch.Tensor) and logs["recon_nll"].dim() == 0
    assert not logs["recon_nll"].requires_grad


@pytest.mark.parametrize("divisor", [8, 0.5, 8.149])
def test_divisor_scales_sigma2(divisor):
    x, x_hat = torch.rand(4, 3, 8, 8, dtype=torch.float64), torch.rand(4, 3, 8, 8, dtype=torch.float64)
    loss, _ = make_term(sigma2_divisor=divisor).loss(x, x_hat, None, 0)
    assert loss.item() == pytest.approx(divisor * gaussian_nll(x, x_hat, SIGMA2).item(), rel=1e-12)


@pytest.mark.parametrize("value", [0, -1.0, float("inf"), float("nan"), "8", True, None])
def test_validate_names_the_key(value):
    with pytest.raises(ConfigError, match="'sigma2_divisor'"):
        l2.validate({**l2.PARAMS, "sigma2_divisor": value})
    with pytest.raises(ConfigError, match="'sigma2_divisor'"):
        make_term(sigma2_divisor=value)
