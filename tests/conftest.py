"""Shared fixtures: offline by default, one torch thread, and a tiny synthetic plugin root."""

import os
import tempfile
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Tests never touch the network and never read or write a user's weight cache: TORCH_HOME is a
# temporary folder for the whole session, inherited by every Snakemake subprocess.
os.environ.setdefault("BLURBENCH_OFFLINE", "1")
SESSION_TORCH_HOME = tempfile.mkdtemp(prefix="blurbench-test-torch-home-")
os.environ["TORCH_HOME"] = SESSION_TORCH_HOME


def pytest_sessionfinish(session, exitstatus):
    import shutil

    shutil.rmtree(SESSION_TORCH_HOME, ignore_errors=True)


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)
    yield


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
