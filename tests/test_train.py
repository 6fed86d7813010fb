"""Training is deterministic, resumes exactly after an interruption (even when the step budget ends
mid-pass), writes its provenance, and stops cleanly on NaN."""

import shutil

import numpy as np
import pytest
import torch

from blurbench.config import build_grid
from blurbench.errors import TrainingDiverged
from blurbench.evaluate import evaluate
from blurbench.plugins import REPO_ROOT
from blurbench import layout
from blurbench.train import budget_steps, train

CFG = {
    "seeds": [0],
    "datasets": {"toy": {"resolution": 16}},
    "methods": {"l2": {}},
    "experiments": {"main": {"datasets": ["toy"], "methods": ["l2"]}},
    "model": {"latent_dim": 8, "base_width": 8, "max_width": 16},
    "train": {"steps": 10, "batch_size": 32, "log_every": 3},  # 128 images: 4 batches a pass
    "evaluate": {"fid": False, "lpips": False, "n_examples": 4},
}


@pytest.fixture
def prepared(prepare_toy):
    return prepare_toy(CFG)


def weights(path):
    return torch.load(path, weights_only=True)["model"]


def test_same_seed_same_model_and_metrics(prepared):
    grid, tmp = prepared
    spec = grid.runs["toy/l2/seed0"]
    for name in ("a", "b"):
        train(spec, tmp / "data", tmp / name, tmp / f"ckpt_{name}.pt", log=lambda m: None)
        evaluate(grid.evals[spec.run_id], tmp / name / "model.pt", tmp / "data", tmp / name / "eval")
    wa, wb = weights(tmp / "a" / "model.pt"), weights(tmp / "b" / "model.pt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (tmp / "a" / "eval" / "metrics.csv").read_text() == (tmp / "b" / "eval" / "metrics.csv").read_text()
    assert (tmp / "a" / "eval" / "per_image.csv").read_text() == (tmp / "b" / "eval" / "per_image.csv").read_text()


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

    def die_after_second_log(message):  # step 6 is in the middle of the second pass
        if "step 6/10" in message:
            raise Killed

    with pytest.raises(Killed):
        train(spec, tmp / "data", tmp / "cut", tmp / "cut.pt", log=die_after_second_log)
    assert (tmp / "cut.pt").is_file() and not (tmp / "cut" / "model.pt").exists()
    messages = []
    train(spec, tmp / "data", tmp / "cut", tmp / "cut.pt", log=messages.append)
    assert any("resuming after step 6" in m for m in messages)
    assert [m.split()[2] for m in messages if " loss " in m] == ["9/10", "10/10"]
    wa, wb = weights(tmp / "full" / "model.pt"), weights(tmp / "cut" / "model.pt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    import pandas as pd

    full, cut = (pd.read_csv(tmp / name / "train_log.csv").drop(columns="seconds") for name in ("full", "cut"))
    assert list(full["step"]) == [1, 2, 3, 5, 6, 9, 10]  # every 3 steps, the end and the budget steps
    assert {"monitor_loss", "monitor_psnr"} <= set(full.columns) and full["monitor_psnr"].notna().all()
    pd.testing.assert_frame_equal(full, cut)


def test_budget_states_are_the_full_runs_state_at_their_step_and_resume_to_its_model(prepared):
    """A budget state is the full run at step f × steps (schedule of the full budget), not a shorter
    run: its recorded step is right, and resuming the full run from it gives the final model."""
    grid, tmp = prepared
    spec = grid.runs["toy/l2/seed0"]
    spec = type(spec)(**{**spec.__dict__, "train": {**spec.train, "schedule": "cosine", "warmup": 0.2}})
    train(spec, tmp / "data", tmp / "full", tmp / "full.pt", log=lambda m: None)
    states = {key: torch.load(tmp / "full" / layout.TRAIN_FILES[key], weights_only=True)
              for key in budget_steps(10)}
    assert {key: s["step"] for key, s in states.items()} == budget_steps(10) == {"budget0.125": 1, "budget0.25": 2,
                                                                                "budget0.5": 5}
    assert set(budget_steps(2).values()) == {1}  # a tiny budget keeps every state, at step 1
    assert all(s["spec"] == spec.to_json() for s in states.values())
    shutil.copyfile(tmp / "full" / layout.TRAIN_FILES["budget0.5"], tmp / "again.pt")  # the earlier ones not
    messages = []
    train(spec, tmp / "data", tmp / "again", tmp / "again.pt", log=messages.append)
    assert any("resuming after step 5" in m for m in messages)
    wa, wb = weights(tmp / "full" / "model.pt"), weights(tmp / "again" / "model.pt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    lost = torch.load(tmp / "again" / layout.TRAIN_FILES["budget0.125"], weights_only=True)
    assert "step 1 was not kept" in lost["unavailable"]
    shorter = type(spec)(**{**spec.__dict__, "train": {**spec.train, "steps": 5}})
    train(shorter, tmp / "data", tmp / "short", tmp / "short.pt", log=lambda m: None)
    ws, wh = weights(tmp / "short" / "model.pt"), states["budget0.5"]["model"]
    assert not all(torch.equal(ws[k], wh[k]) for k in ws)  # a 5-step budget is another schedule


def test_batches_are_a_pure_function_of_the_step():
    from blurbench.train import batch_indices

    seen = np.concatenate([batch_indices(s, 10, 4, seed=0) for s in range(3)])
    assert sorted(seen) == list(range(10))  # one pass: every image once, last batch short
    assert np.array_equal(batch_indices(4, 10, 4, 0), batch_indices(4, 10, 4, 0))
    assert not np.array_equal(batch_indices(3, 10, 4, 0), batch_indices(0, 10, 4, 0))


def test_provenance_records_commit_versions_device_and_times(prepared):
    import json
    import subprocess

    from blurbench.provenance import FIELDS

    grid, tmp = prepared
    spec = grid.runs["toy/l2/seed0"]
    train(spec, tmp / "data", tmp / "p", tmp / "p.pt", log=lambda m: None)
    evaluate(grid.evals[spec.run_id], tmp / "p" / "model.pt", tmp / "data", tmp / "p" / "eval")
    head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    for path in (tmp / "p" / "provenance.json", tmp / "p" / "eval" / "provenance.json"):
        record = json.loads(path.read_text())
        assert set(record) == set(FIELDS)
        assert record["git_commit"] == head and isinstance(record["git_dirty"], bool)
        assert record["device"].startswith("cpu") and record["torch_version"] == torch.__version__
        assert record["started"] <= record["finished"]
    rows = (tmp / "p" / "eval" / "metrics.csv").read_text()
    assert head in rows


def test_nan_loss_stops_with_a_message_and_keeps_the_checkpoint(prepared, toy_plugin_root):
    grid, tmp = prepared
    methods = toy_plugin_root / "methods"
    methods.unlink()
    methods.mkdir()
    shutil.copy(REPO_ROOT / "methods" / "l2.py", methods)
    (methods / "nan_at_step5.py").write_text(
        "import torch\n"
        "from blurbench.method_api import ReconstructionTerm, gaussian_nll\n"
        "PARAMS = {}\n"
        "def validate(p): pass\n"
        "class Term(ReconstructionTerm):\n"
        "    def loss(self, x, x_hat, z, step):\n"
        "        nll = gaussian_nll(x, x_hat, self.sigma2)\n"
        "        return (nll * float('nan') if step == 4 else nll), {}\n")
    cfg = {**CFG, "methods": {"bad": {"plugin": "nan_at_step5"}},
           "experiments": {"main": {"datasets": ["toy"], "methods": ["bad"]}}}
    spec = build_grid(cfg).runs["toy/bad/seed0"]
    with pytest.raises(TrainingDiverged, match="nan between step 4 and 5"):
        train(spec, tmp / "data", tmp / "bad", tmp / "bad.pt", log=lambda m: None)
    state = torch.load(tmp / "bad.pt", weights_only=True)
    assert state["step"] == 3 and np.isfinite(state["rows"][0]["loss"])
    assert not (tmp / "bad" / "model.pt").exists()


def test_cosine_schedule_warms_up_then_decays_to_a_hundredth():
    from blurbench.train import FINAL_LR_FACTOR, learning_rate

    cfg = {"lr": 3e-3, "steps": 1000, "schedule": "cosine", "warmup": 0.05}
    rates = [learning_rate(s, cfg) for s in range(1000)]
    assert rates[0] == pytest.approx(3e-3 / 50) and rates[49] == pytest.approx(3e-3)  # 50 warm-up steps
    assert max(rates) == pytest.approx(3e-3) and rates[-1] == pytest.approx(3e-3 * FINAL_LR_FACTOR)
    assert all(a >= b for a, b in zip(rates[49:], rates[50:]))  # monotone after the warm-up
    assert learning_rate(500, {**cfg, "schedule": "constant"}) == 3e-3
