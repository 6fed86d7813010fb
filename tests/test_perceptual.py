"""perceptual: loss and gradient with an injected random backbone (test-only); unavailable offline."""

import pytest
import torch
import torchvision

from blurbench import plugins
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
    return perceptual.Term(params, sigma2=SIGMA2, epochs=1, latent_dim=4, image_shape=shape,
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
    assert torch.isfinite(total) and logs["lpips"] > 0
    nll = gaussian_nll(x, x_hat, SIGMA2).item()
    d = 3 * 32 * 32
    assert total.item() == pytest.approx(nll + 0.5 * d / (2 * SIGMA2) * logs["lpips"], rel=1e-5)
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
    assert logs["lpips"] == 0.0 and total.item() == 0.0


def test_one_channel_is_replicated_to_three():
    x, x_hat = images(shape=(1, 32, 32))
    _, logs1 = make_term("squeeze", shape=(1, 32, 32)).loss(x, x_hat, None, 0)
    _, logs3 = make_term("squeeze").loss(x.repeat(1, 3, 1, 1), x_hat.repeat(1, 3, 1, 1), None, 0)
    assert logs1["lpips"] == pytest.approx(logs3["lpips"], rel=1e-6)


def test_weight_zero_is_plain_gaussian_nll():
    x, x_hat = images()
    total, _ = make_term("squeeze", weight=0.0).loss(x, x_hat, None, 0)
    assert total.item() == pytest.approx(gaussian_nll(x, x_hat, SIGMA2).item(), rel=1e-6)


@pytest.fixture
def empty_weights_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("BLURBENCH_OFFLINE", "1")
    return tmp_path / "torch_home"


@pytest.mark.parametrize("net", ["vgg", "alex", "squeeze"])
def test_unavailable_reason_names_the_missing_file(empty_weights_cache, net):
    reason = perceptual.Term.unavailable_reason({**perceptual.PARAMS, "net": net})
    assert reason.startswith("weights missing: ") and WEIGHT_FILES[net] in reason


def test_without_weights_the_loop_cannot_build_a_random_term(empty_weights_cache):
    """What the training loop does (no `_backbone`): WeightsUnavailable, never random features."""
    with pytest.raises(WeightsUnavailable, match=WEIGHT_FILES["vgg"]):
        perceptual.Term(dict(perceptual.PARAMS), sigma2=SIGMA2, epochs=1, latent_dim=4,
                        image_shape=(3, 32, 32), device=torch.device("cpu"))


def test_training_reports_unavailable_instead_of_training(empty_weights_cache, toy_plugin_root, tmp_path):
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
