"""Training is deterministic, resumes exactly after an interruption, and stops cleanly on NaN."""

import shutil

import numpy as np
import pytest
import torch

from blurbench.config import build_grid
from blurbench.data import prepare
from blurbench.errors import TrainingDiverged
from blurbench.evaluate import evaluate
from blurbench.plugins import REPO_ROOT
from blurbench.train import train

CFG = {
    "seeds": [0],
    "datasets": {"toy": {"resolution": 16}},
    "methods": {"l2": {}},
    "experiments": {"main": {"datasets": ["toy"], "methods": ["l2"]}},
    "model": {"latent_dim": 8, "base_width": 8, "max_width": 16},
    "train": {"epochs": 3, "batch_size": 32},
    "evaluate": {"fid": False, "lpips": False, "n_examples": 4},
}


@pytest.fixture
def prepared(toy_plugin_root, tmp_path):
    grid = build_grid(CFG)
    d = grid.datasets["toy"]
    prepare(d["plugin"], d["params"], d["resolution"], tmp_path / "data")
    return grid, tmp_path


def weights(path):
    return torch.load(path, weights_only=True)["model"]


def test_same_seed_same_model_and_metrics(prepared):
    grid, tmp = prepared
    spec = grid.runs["toy/l2/seed0"]
    for name in ("a", "b"):
        train(spec, tmp / "data", tmp / name, tmp / f"ckpt_{name}.pt", log=lambda m: None)
        evaluate(spec, tmp / name / "model.pt", tmp / "data", tmp / name / "eval")
    wa, wb = weights(tmp / "a" / "model.pt"), weights(tmp / "b" / "model.pt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (tmp / "a" / "eval" / "metrics.csv").read_text() == (tmp / "b" / "eval" / "metrics.csv").read_text()


def test_a_different_seed_gives_a_different_model(prepared):
    grid, tmp = prepared
    spec = grid.runs["toy/l2/seed0"]
    other = type(spec)(**{**spec.__dict__, "seed": 1})
    train(spec, tmp / "data", tmp / "a", tmp / "ca.pt", log=lambda m: None)
    train(other, tmp / "data", tmp / "b", tmp / "cb.pt", log=lambda m: None)
    wa, wb = weights(tmp / "a" / "model.pt"), weights(tmp / "b" / "model.pt")
    assert not torch.equal(wa["to_stats.weight"], wb["to_stats.weight"])


def test_interrupted_run_resumes_to_the_same_model(prepared):
    grid, tmp = prepared
    spec = grid.runs["toy/l2/seed0"]
    train(spec, tmp / "data", tmp / "full", tmp / "full.pt", log=lambda m: None)

    class Killed(Exception):
        pass

    def die_after_second_epoch(message):
        if "epoch 2/3" in message:
            raise Killed

    with pytest.raises(Killed):
        train(spec, tmp / "data", tmp / "cut", tmp / "cut.pt", log=die_after_second_epoch)
    assert (tmp / "cut.pt").is_file() and not (tmp / "cut" / "model.pt").exists()
    messages = []
    train(spec, tmp / "data", tmp / "cut", tmp / "cut.pt", log=messages.append)
    assert any("resuming after epoch 2" in m for m in messages)
    assert sum("epoch" in m and "/3 loss" in m for m in messages) == 1
    wa, wb = weights(tmp / "full" / "model.pt"), weights(tmp / "cut" / "model.pt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (tmp / "full" / "train_log.csv").read_text().count("\n") == 4


def test_nan_loss_stops_with_a_message_and_keeps_the_checkpoint(prepared, toy_plugin_root):
    grid, tmp = prepared
    methods = toy_plugin_root / "methods"
    methods.unlink()
    methods.mkdir()
    shutil.copy(REPO_ROOT / "methods" / "l2.py", methods)
    (methods / "nan_at_epoch2.py").write_text(
        "import torch\n"
        "from blurbench.method_api import ReconstructionTerm, gaussian_nll\n"
        "PARAMS = {}\n"
        "def validate(p): pass\n"
        "class Term(ReconstructionTerm):\n"
        "    def loss(self, x, x_hat, z, epoch):\n"
        "        nll = gaussian_nll(x, x_hat, self.sigma2)\n"
        "        return (nll * float('nan') if epoch == 1 else nll), {}\n")
    cfg = {**CFG, "methods": {"bad": {"plugin": "nan_at_epoch2"}},
           "experiments": {"main": {"datasets": ["toy"], "methods": ["bad"]}}}
    spec = build_grid(cfg).runs["toy/bad/seed0"]
    with pytest.raises(TrainingDiverged, match="nan at epoch 2"):
        train(spec, tmp / "data", tmp / "bad", tmp / "bad.pt", log=lambda m: None)
    state = torch.load(tmp / "bad.pt", weights_only=True)
    assert state["epoch"] == 0 and np.isfinite(state["rows"][0]["loss"])
    assert not (tmp / "bad" / "model.pt").exists()
