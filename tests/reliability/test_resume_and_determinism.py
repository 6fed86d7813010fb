"""A SIGKILLed training job resumes to the same result; the same config gives the same metrics.csv,
another seed a different one; each job uses exactly the threads Snakemake gave it."""

import copy
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from blurbench import layout
from workflow_helpers import REPO, snakemake, write_config

pytestmark = pytest.mark.slow

CONFIG = {
    "seeds": [0],
    "threads": 1,
    "model": {"latent_dim": 8, "base_width": 8, "max_width": 16},
    # a few seconds to kill in after the first checkpoint; ends mid-pass; the cosine schedule must
    # resume at the same rates
    "train": {"steps": 400, "batch_size": 32, "log_every": 50, "schedule": "cosine", "warmup": 0.05},
    "datasets": {"deadleaves": {"resolution": 16, "params": {"n_train": 1024, "n_test": 32}}},
    "methods": {"l2": {}},
    "experiments": {"main": {"datasets": ["deadleaves"], "methods": ["l2"]}},
    "evaluate": {"fid": False, "lpips": False, "n_examples": 4},
}
CKPT = "results/checkpoints/deadleaves/l2/seed0/last.pt"


def model_files(methods):
    """The training outputs alone: the threads test needs no evaluation."""
    return [layout.run_file("deadleaves", m, 0, "model") for m in methods]


def values(workdir):
    df = pd.read_csv(workdir / "results" / "metrics.csv", keep_default_na=False)
    return df[["run_id", "metric", "value", "status"]].to_csv(index=False)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("reference")
    result = snakemake(workdir, "--cores", "1", "all_tables", config=CONFIG)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def test_same_config_twice_gives_identical_metrics(reference, tmp_path):
    result = snakemake(tmp_path, "--cores", "1", "all_tables", config=CONFIG)
    assert result.returncode == 0, result.stderr[-3000:]
    assert values(tmp_path) == values(reference)


def test_another_seed_gives_other_metrics(reference, tmp_path):
    result = snakemake(tmp_path, "--cores", "1", "all_tables", config={**CONFIG, "seeds": [1]})
    assert result.returncode == 0, result.stderr[-3000:]
    a = pd.read_csv(reference / "results" / "metrics.csv", keep_default_na=False)
    b = pd.read_csv(tmp_path / "results" / "metrics.csv", keep_default_na=False)
    assert list(a[a.metric == "mse"]["value"]) != list(b[b.metric == "mse"]["value"])


def test_sigkill_mid_training_then_rerun_resumes_to_the_same_metrics(reference, tmp_path):
    config = write_config(tmp_path, CONFIG)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
           "--cores", "1", "all_tables", "--configfile", str(config)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    ckpt = tmp_path / CKPT
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if ckpt.is_file():
            try:
                if torch.load(ckpt, weights_only=True)["step"] > 0:
                    break
            except Exception:  # being renamed into place
                pass
        time.sleep(0.2)
    assert proc.poll() is None, "training finished before it could be killed; make it longer"
    time.sleep(0.5)  # between two checkpoints
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(ckpt, weights_only=True)["step"]
    assert killed_at < CONFIG["train"]["steps"]
    assert not (tmp_path / "results" / "runs" / "deadleaves" / "l2" / "seed0" / "model.pt").exists()

    # a killed Snakemake leaves its lock behind; the user unlocks, then reruns the same target
    assert snakemake(tmp_path, "--unlock", config=CONFIG).returncode == 0
    result = snakemake(tmp_path, "--cores", "1", "all_tables", config=CONFIG)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "results" / "logs" / "train" / "deadleaves" / "l2" / "seed0.log").read_text()
    assert f"resuming after step {killed_at}" in log
    assert values(tmp_path) == values(reference)


def test_each_job_uses_exactly_its_threads(tmp_path):
    config = copy.deepcopy(CONFIG)
    config.update(threads=2, train={"steps": 2, "batch_size": 32})
    config["datasets"]["deadleaves"]["params"]["n_train"] = 64
    config["methods"] = {"l2": {}, "l2b": {"plugin": "l2"}}
    config["experiments"]["main"]["methods"] = ["l2", "l2b"]
    result = snakemake(tmp_path, "--cores", "2", *model_files(["l2", "l2b"]), config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    logs = sorted((tmp_path / "results" / "logs" / "train" / "deadleaves").rglob("*.log"))
    assert len(logs) == 2
    for log in logs:
        assert "torch threads 2" in log.read_text()
    one_core = tmp_path / "one"
    result = snakemake(one_core, "--cores", "1", *model_files(["l2"]), config={**config, "methods": {"l2": {}},
                       "experiments": {"main": {"datasets": ["deadleaves"], "methods": ["l2"]}}})
    assert result.returncode == 0, result.stderr[-3000:]
    log = one_core / "results" / "logs" / "train" / "deadleaves" / "l2" / "seed0.log"
    assert "torch threads 1" in log.read_text()
