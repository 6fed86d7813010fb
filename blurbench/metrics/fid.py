"""FID as pytorch-fid defines it: its InceptionV3 (FID weights), resize to 299, pool3 (2048-d).

The network is built by pytorch-fid's own code with the state dict from `blurbench.weights`
(`fid_weights.reference_model`, so pytorch-fid never downloads). Feature extraction is made fast without changing
the features (checked against pytorch-fid to ≤ 1e-4 in tests/test_fid.py and benchmarks/bench_fid.py).

On CPU, with onnxruntime installed, the network runs in ONNX Runtime (`fid_onnx`: exported once,
f32, a job's k threads run k batches side by side). Otherwise, and on CUDA or any other device,
it runs in torch:
- batch norm folded into the preceding convolution (the same affine map, one pass fewer per layer),
- channels_last memory format (oneDNN's fast convolution path on CPU, cuDNN's NHWC kernels on GPU),
- torch.inference_mode, moderate batches, images sent to the device and converted batch by batch,
  features copied back as float64. On CUDA, convolutions may use TF32 where torch's default
  allows it (torch.backends.cudnn.allow_tf32), as pytorch-fid's own GPU runs do. ONNX Runtime's
  GPU providers are not used: the model already runs on the GPU in torch, and they would be a
  second CUDA stack to install (not measured here: no GPU on the development machine),
- glibc malloc told to keep freed memory (see `_keep_freed_memory`): otherwise every large
  activation is a fresh mmap whose pages the kernel zero-fills, about a third of the time.
`info()` names the runtime that computed the features.

The Fréchet distance uses the symmetric eigenvalue form (stable, no complex square root):
Tr sqrt(Σ1 Σ2) = Σ sqrt(eig(Σ1^½ Σ2 Σ1^½)), and from features with N ≤ d the exact N×N Gram form.
"""

from __future__ import annotations

import numpy as np

from ..atomic import write_npz
from . import fid_onnx
from .fid_weights import DIMS, fold_batchnorm, reference_model

DEFAULT_BATCH = 50   # images per forward pass (16 and 50 measured alike once malloc keeps memory)
_CACHE: dict = {}    # (weights path, device) -> (fast model, WeightsInfo)
_LAST_RUNTIME = None  # runtime of the last features call, for info()


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def _fast_model(device):
    """BN-folded, channels_last copy of the reference model, built once per weights file and device."""
    import torch

    from .. import weights

    key = (str(weights.resolve("fid_inception").path), str(device))
    if key not in _CACHE:
        model, info = reference_model("cpu")
        _CACHE[key] = (fold_batchnorm(model).to(device).to(memory_format=torch.channels_last), info)
    return _CACHE[key]


def _keep_freed_memory() -> None:
    """Make glibc keep freed blocks instead of returning them to the kernel (Linux only, once).

    Inception's activations are tens of MB; above glibc's mmap threshold each one is mapped and
    unmapped again, so every forward pass page-faults through freshly zeroed memory. A higher
    mmap threshold and trim threshold let the allocator reuse the memory. Process-wide, harmless
    for correctness; skipped where glibc is absent.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return
    _MALLOC_TUNED = True
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        m_trim_threshold, m_mmap_threshold = -1, -3
        if not libc.mallopt(m_mmap_threshold, 1 << 30):  # older glibc caps it at 32 MB
            libc.mallopt(m_mmap_threshold, 32 << 20)
        libc.mallopt(m_trim_threshold, (1 << 31) - 1)
    except (OSError, AttributeError, TypeError):
        pass


_MALLOC_TUNED = False


def _check_images(images, what: str):
    """Accept a float tensor in [0, 1] or uint8 tensor/array, N×C×H×W with C in (1, 3)."""
    import torch

    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3):
        shape = tuple(getattr(images, "shape", ()))
        raise ValueError(f"{what}: expected images N×C×H×W with C = 1 or 3, got shape {shape}")
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise ValueError(f"{what}: expected float images in [0, 1] or uint8, got dtype {images.dtype}")
    return images


def _plan(sizes, batch_size: int, parts: int) -> list[list[tuple[int, int, int]]]:
    """Batches of (set, start, stop) slices over all sets in order, running across set boundaries.

    Near-equal batches of at most `batch_size` images, their count a multiple of `parts` (the
    batches run in parallel), so no worker waits on a half-empty last batch.
    """
    total = sum(sizes)
    count = parts * -(-total // (parts * batch_size))
    cuts = np.linspace(0, total, count + 1).round().astype(int).tolist()
    starts = np.cumsum([0, *sizes]).tolist()
    batches = []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        batch = [(i, max(lo, s0) - s0, min(hi, s1) - s0)
                 for i, (s0, s1) in enumerate(zip(starts[:-1], starts[1:])) if max(lo, s0) < min(hi, s1)]
        if batch:
            batches.append(batch)
    return batches


def _gather(sets, batch, device):
    """A batch's images as float32 in [0, 1], 3 channels (1 replicated), N×3×H×W, on `device`."""
    import torch

    parts = []
    for i, start, stop in batch:
        x = sets[i][start:stop].to(device)
        x = x.float().div_(255) if x.dtype == torch.uint8 else x.float()
        parts.append(x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x)
    return torch.cat(parts)


def _torch_pool3(sets, batches, device) -> list:
    import torch

    model, _ = _fast_model(device)
    _keep_freed_memory()
    with torch.inference_mode():
        return [model(_gather(sets, b, device).contiguous(memory_format=torch.channels_last))[0]
                .flatten(1).cpu().numpy() for b in batches]


def _on_onnxruntime(device) -> bool:
    import torch

    return torch.device(device).type == "cpu" and fid_onnx.available()


def _runtime(device) -> str:
    """The runtime `features_many` uses on `device`, as recorded in the rows."""
    import torch

    if _on_onnxruntime(device):
        return fid_onnx.runtime()
    return f"torch {torch.__version__} {torch.device(device).type}"


def features_many(image_sets, batch_size: int = DEFAULT_BATCH, device="cpu") -> list[np.ndarray]:
    """Pool3 features (N_i, 2048) float64 of each image set, all sets streamed through one pass.

    Batches run across set boundaries, so two sets cost one model load and no half-empty batch.
    On CPU the job's torch.get_num_threads() threads are all it uses.
    """
    import torch

    global _LAST_RUNTIME
    if batch_size < 1:
        raise ValueError(f"batch_size: expected ≥ 1, got {batch_size}")
    sets = [_check_images(s, f"image set {i}") for i, s in enumerate(image_sets)]
    sizes = [s.shape[0] for s in sets]
    if _on_onnxruntime(device):
        threads = torch.get_num_threads()
        batches = _plan(sizes, min(batch_size, fid_onnx.MAX_BATCH), threads)
        feats = fid_onnx.pool3(lambda b: _gather(sets, b, "cpu").numpy(), batches, threads)
    else:
        batches = _plan(sizes, batch_size, 1)
        feats = _torch_pool3(sets, batches, device)
    _LAST_RUNTIME = _runtime(device)
    outs = [np.empty((n, DIMS)) for n in sizes]
    for batch, f in zip(batches, feats):
        offset = 0
        for i, start, stop in batch:
            outs[i][start:stop] = f[offset:offset + stop - start]
            offset += stop - start
    return outs


def features(images, batch_size: int = DEFAULT_BATCH, device="cpu") -> np.ndarray:
    """Pool3 features (N, 2048) float64 of images (float [0, 1] or uint8, N×C×H×W, C = 1 replicated)."""
    return features_many([images], batch_size, device)[0]


def stats(feats: np.ndarray):
    """(mu, sigma): mean and unbiased covariance, as pytorch-fid computes them."""
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise ValueError(f"features: expected an (N, d) array with N ≥ 2, got shape {feats.shape}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def _check_stats(mu1, s1, mu2, s2):
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(s1, np.float64)), np.atleast_2d(np.asarray(s2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"Fréchet distance: expected means (d,) and covariances (d, d) of one d; "
                         f"got {mu1.shape}, {s1.shape}, {mu2.shape}, {s2.shape}")
    return mu1, s1, mu2, s2


def _psd_sqrt(s):
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def _sqrt_eig_sum(m) -> float:
    """Σ sqrt(λ) over the eigenvalues of a symmetric PSD matrix (rounding negatives to 0)."""
    return float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||² + Tr(Σ1 + Σ2 - 2 (Σ1 Σ2)^½), with Tr (Σ1 Σ2)^½ from eig(Σ1^½ Σ2 Σ1^½)."""
    mu1, s1, mu2, s2 = _check_stats(mu1, sigma1, mu2, sigma2)
    r1 = _psd_sqrt(s1)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * _sqrt_eig_sum(r1 @ s2 @ r1))


def frechet_distance_features(feats, mu_ref, sigma_ref) -> float:
    """Fréchet distance between the Gaussian fitted to `feats` and (mu_ref, sigma_ref).

    Same value as frechet_distance(*stats(feats), mu_ref, sigma_ref). With N ≤ d features
    Σ = YᵀY (Y = centred features / sqrt(N-1)), and the non-zero eigenvalues of Σ_ref Σ are those
    of the N×N matrix Y Σ_ref Yᵀ: exact, no d×d decomposition, no round-off in the null space.
    """
    mu, sigma = stats(feats)
    mu, sigma, mu_ref, sigma_ref = _check_stats(mu, sigma, mu_ref, sigma_ref)
    feats = np.asarray(feats, dtype=np.float64)
    n, d = feats.shape
    if n > d:
        return frechet_distance(mu, sigma, mu_ref, sigma_ref)
    y = (feats - mu) / np.sqrt(n - 1)
    diff = mu - mu_ref
    return float(diff @ diff + np.trace(sigma) + np.trace(sigma_ref)
                 - 2 * _sqrt_eig_sum(y @ sigma_ref @ y.T))


def save_stats(path, mu, sigma, n: int, info: dict, feats=None) -> None:
    """Write mu, sigma, n, the protocol `info` (strings) and optionally the features themselves
    (float32) to an .npz atomically."""
    meta = {f"info_{k}": np.array(str(v)) for k, v in info.items()}
    extra = {} if feats is None else {"feats": np.asarray(feats, np.float32)}
    write_npz(path, mu=np.asarray(mu, np.float64), sigma=np.asarray(sigma, np.float64),
              n=np.array(int(n)), **meta, **extra)


def load_stats(path):
    """(mu, sigma, n, info) from save_stats' file; no pickle."""
    with np.load(path, allow_pickle=False) as z:
        missing = {"mu", "sigma", "n"} - set(z.files)
        if missing:
            raise ValueError(f"{path}: not an FID statistics file (missing {', '.join(sorted(missing))})")
        info = {k[len("info_"):]: str(z[k]) for k in z.files if k.startswith("info_")}
        return z["mu"], z["sigma"], int(z["n"]), info


def info() -> dict:
    """Protocol fields for metric rows; resolves (and if needed converts) the weights.

    `implementation` names the runtime of this process's last features call (before any, the
    one a CPU call would use), so a row records what computed its features.
    """
    from .. import weights

    w = weights.resolve("fid_inception")
    runtime = _LAST_RUNTIME or _runtime("cpu")
    return {"implementation": f"pytorch-fid ({runtime})", "version": _version("pytorch-fid"),
            "feature_extractor": f"InceptionV3 FID weights ({w.path.name}), pool3 {DIMS}-d, "
                                 "bilinear resize to 299",
            "weights_source": w.source}
