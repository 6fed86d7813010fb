"""pytorch-fid's Inception run by ONNX Runtime on CPU in float32: exported once, cached, same features.

Why: on CPU the convolutions are nearly all the time (94 % in ONNX Runtime's profile), and its
kernels do about 1.1× more images per CPU second than torch's. More on a shared machine: a job
given k threads runs k batches at once, each on one thread, rather than splitting every
convolution over k threads that wait for each other whenever another process holds a core
(1.5–2× over the torch path at 2 threads on a shared machine; benchmarks/bench_fid.py). And a job
starts in 0.3 s instead of 2.6 s: with the export cached there is no torch model to build.

The export is pytorch-fid's whole InceptionV3 forward (bilinear resize to 299 and [0, 1] → [-1, 1]
included, so the input stays the small images) with batch norm folded into the convolutions, from
`fid_weights.reference_model`, traced by torch's TorchScript ONNX exporter (it needs only the `onnx`
package). `fid` imports this module, never the reverse.
It is written atomically into the weights cache beside the weights, under a name carrying the
weights file, pytorch-fid's version and the export settings, and made again when the weights file
is newer. Features agree with pytorch-fid's own path to ~1e-5 (tests/test_fid.py).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

from ..atomic import atomic_path
from .fid_weights import fold_batchnorm, reference_model

OPSET = 17
MAX_BATCH = 8      # images per run: as fast per image as 64 (measured), a quarter of the memory
_SESSIONS: dict = {}  # (export path, mtime) -> InferenceSession


def available() -> bool:
    """ONNX Runtime and onnx (for the one-time export) are importable."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def runtime() -> str:
    import onnxruntime

    return f"onnxruntime {onnxruntime.__version__} f32"


def export_path(source: Path) -> Path:
    """Where the export of weights file `source` is cached: beside it, named after what made it."""
    from .. import weights

    settings = f"pytorch-fid-{version('pytorch-fid')}.pool3-bnfold-opset{OPSET}"
    return weights.cache_dir() / f"{source.stem}.{settings}.onnx"


def exported() -> Path:
    """The cached export of the current FID weights, made when missing or older than the weights."""
    from .. import weights

    source = weights.resolve("fid_inception").path
    path = export_path(source)
    if not path.is_file() or path.stat().st_mtime < source.stat().st_mtime:
        _export(path)
    return path


def _export(path: Path) -> None:
    import warnings

    import torch

    class Pool3(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, images):
            return self.net(images)[0].flatten(1)

    model = Pool3(fold_batchnorm(reference_model("cpu")[0])).eval()
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # the TorchScript exporter is deprecated in favour of torch.export's, which would add
        # onnxscript as a dependency; it still exports this network exactly (tests/test_fid.py)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (torch.zeros(1, 3, 32, 32),), str(tmp), dynamo=False,
                          opset_version=OPSET, input_names=["images"], output_names=["pool3"],
                          dynamic_axes={"images": {0: "n", 2: "h", 3: "w"}, "pool3": {0: "n"}})


def _session():
    """One single-threaded session per export; concurrent run() calls share its weights."""
    import onnxruntime as ort

    path = exported()
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _SESSIONS:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        _SESSIONS[key] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return _SESSIONS[key]


def pool3(load, batches, threads: int) -> list:
    """Features (float32 n×2048) of each batch, `threads` batches at a time, in order.

    `load(batch)` gives the batch's images as float32 n×3×H×W in [0, 1]; it runs in the workers too.
    """
    session = _session()

    def run(batch):
        return session.run(None, {"images": load(batch)})[0]

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(run, batches))
