"""focal_frequency: closed forms, side by side with the official package, the torch-version trap."""

import sys

import pytest
import torch
from focal_frequency_loss import FocalFrequencyLoss

from blurbench import plugins
from blurbench.errors import ConfigError
from blurbench.method_api import gaussian_nll

ffl_method = plugins.load_method("focal_frequency")
SIGMA2 = 0.01


def make_term(shape=(3, 16, 16), **overrides):
    params = {**ffl_method.PARAMS, **overrides}
    return ffl_method.Term(params, sigma2=SIGMA2, steps=1, latent_dim=4, image_shape=shape,
                           device=torch.device("cpu"))


def package_ffl(params, loss_weight=1.0):
    return FocalFrequencyLoss(loss_weight=loss_weight, alpha=params["alpha"],
                              patch_factor=params["patch_factor"], ave_spectrum=params["ave_spectrum"],
                              log_matrix=params["log_matrix"], batch_matrix=params["batch_matrix"])


def images(n=4, shape=(3, 16, 16), seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *shape, generator=g, dtype=dtype), torch.rand(n, *shape, generator=g, dtype=dtype)


@pytest.mark.parametrize("opts", [{}, {"alpha": 0.5}, {"alpha": 2.0, "patch_factor": 2},
                                  {"patch_factor": 4, "log_matrix": True}, {"ave_spectrum": True},
                                  {"batch_matrix": True, "alpha": 3.0}])
def test_identical_images_give_zero(opts):
    x, _ = images(dtype=torch.float64)
    params = {**ffl_method.PARAMS, **opts}
    assert package_ffl(params)(x.clone(), x).item() == 0.0
    total, logs = make_term(**opts).loss(x, x.clone(), None, 0)
    assert total.item() == 0.0 and logs["ffl"].item() == 0.0


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0, 2.5])
@pytest.mark.parametrize("patch_factor", [1, 2, 4])
@pytest.mark.parametrize("c", [0.3, -0.05])
def test_constant_offset_gives_c_squared(alpha, patch_factor, c):
    """pred = target + c: with the orthonormal DFT each h×w patch's error sits in its DC bin,
    |c·√(hw)|² = c²·hw, which the focal weight matrix (normalised by its max) weights by 1; the
    package averages over all N·P·C·h·w bins, so the loss is c²·hw/(hw) = c²."""
    x, _ = images(dtype=torch.float64)
    params = {**ffl_method.PARAMS, "alpha": alpha, "patch_factor": patch_factor}
    assert package_ffl(params)(x + c, x).item() == pytest.approx(c * c, rel=1e-9)
    _, logs = make_term(alpha=alpha, patch_factor=patch_factor).loss(x, x + c, None, 0)
    assert logs["ffl"].item() == pytest.approx(c * c, rel=1e-6)


def test_plugin_equals_gaussian_nll_plus_weighted_package_ffl():
    x, x_hat = images(shape=(3, 16, 16))
    opts = {"alpha": 1.5, "patch_factor": 2, "log_matrix": True, "weight": 7.0}
    params = {**ffl_method.PARAMS, **opts}
    total, logs = make_term(**opts).loss(x, x_hat, None, 0)
    scale = 3 * 16 * 16 / (2 * SIGMA2)  # D/(2σ²): FFL in the units of the summed Gaussian NLL
    expected = gaussian_nll(x, x_hat, SIGMA2) + package_ffl(params, loss_weight=7.0 * scale)(x_hat, x)
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert logs["l2_nll"].item() == pytest.approx(gaussian_nll(x, x_hat, SIGMA2).item(), rel=1e-6)


def test_default_reproduces_official_mse_to_ffl_ratio():
    """Ours on [0,1] is the official `MSE + 100·FFL` on [−1,1] times the constant D/(8σ²)."""
    x, x_hat = images(shape=(3, 16, 16), dtype=torch.float64)
    total, _ = make_term().loss(x, x_hat, None, 0)
    xs, xhs = 2 * x - 1, 2 * x_hat - 1
    official = torch.nn.MSELoss()(xhs, xs) + FocalFrequencyLoss(loss_weight=100.0)(xhs, xs)
    d = 3 * 16 * 16
    assert total.item() == pytest.approx(official.item() * d / (8 * SIGMA2), rel=1e-9)


def test_linear_in_weight():
    x, x_hat = images()
    nll = gaussian_nll(x, x_hat, SIGMA2).item()
    extra = {w: make_term(weight=w).loss(x, x_hat, None, 0)[0].item() - nll for w in (0.0, 1.0, 2.5, 10.0)}
    assert extra[0.0] == pytest.approx(0.0, abs=1e-6 * nll)
    assert extra[2.5] == pytest.approx(2.5 * extra[1.0], rel=1e-5)
    assert extra[10.0] == pytest.approx(10.0 * extra[1.0], rel=1e-5)
    base = package_ffl(ffl_method.PARAMS)(x_hat, x).item()
    assert package_ffl(ffl_method.PARAMS, loss_weight=3.0)(x_hat, x).item() == pytest.approx(3 * base)


def test_gradient_reaches_x_hat_under_deterministic_algorithms():
    x, x_hat = images()
    x_hat.requires_grad_(True)
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)  # as the training loop does on CPU
    try:
        total, _ = make_term(patch_factor=2).loss(x, x_hat, None, 0)
        total.backward()
    finally:
        torch.use_deterministic_algorithms(before)
    assert torch.isfinite(x_hat.grad).all() and x_hat.grad.abs().sum() > 0


def test_prerelease_torch_version_string_does_not_crash(monkeypatch):
    """The package parses torch.__version__ at import; '2.1.0a0+…' made that int() parse crash."""
    trap = "2.1.0a0+git1a2b3c4"
    for name in [m for m in sys.modules if m == "focal_frequency_loss" or m.startswith("focal_frequency_loss.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(torch, "__version__", trap)
    with pytest.raises(ValueError):  # the trap is real: a bare import of the package fails
        import focal_frequency_loss  # noqa: F401
    assert "focal_frequency_loss" not in sys.modules

    x, x_hat = images()
    total, logs = make_term().loss(x, x_hat, None, 0)  # imports the package through our guard
    assert torch.isfinite(total) and logs["ffl"].item() > 0
    assert torch.__version__ == trap  # restored after the guarded import
    fresh = sys.modules["focal_frequency_loss"].FocalFrequencyLoss
    assert fresh is not FocalFrequencyLoss  # really re-imported under the trap string
    assert sys.modules["focal_frequency_loss.focal_frequency_loss"].IS_HIGH_VERSION is True
    assert logs["ffl"].item() == pytest.approx(FocalFrequencyLoss()(x_hat, x).item(), rel=1e-6)


@pytest.mark.parametrize("key, value", [("alpha", -0.1), ("alpha", "1"), ("patch_factor", 0),
                                        ("patch_factor", 2.0), ("patch_factor", True), ("weight", -1.0),
                                        ("weight", None), ("ave_spectrum", "yes"), ("log_matrix", 1),
                                        ("batch_matrix", None)])
def test_validate_names_the_key(key, value):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        ffl_method.validate({**ffl_method.PARAMS, key: value})


def test_defaults_are_valid_and_patch_factor_must_divide_the_image():
    ffl_method.validate(ffl_method.PARAMS)
    assert ffl_method.PARAMS["weight"] == 100.0
    with pytest.raises(ConfigError, match="'patch_factor'.*3 does not divide"):
        make_term(shape=(1, 16, 16), patch_factor=3)
    params = {**ffl_method.PARAMS, "patch_factor": 3}
    with pytest.raises(ConfigError, match="'patch_factor': 3 does not divide the image size 32×32"):
        ffl_method.validate_for_dataset(params, 32, 3)
    ffl_method.validate_for_dataset(params, 48, 3)


def test_logs_are_detached_scalar_tensors():
    """The loop sums logs on the device: no float() (a host sync) in the per-step path."""
    x, x_hat = images()
    total, logs = make_term().loss(x, x_hat.requires_grad_(), None, 7)
    assert total.requires_grad
    assert set(logs) == {"recon_nll", "l2_nll", "ffl"}
    for v in logs.values():
        assert isinstance(v, torch.Tensor) and v.dim() == 0 and not v.requires_grad
