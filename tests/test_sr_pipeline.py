"""SR runs go through the workflow's own train and evaluate: a task axis, not a second pipeline.
The grid refuses a bad SR experiment before any job; an SR run resumes exactly; its rows carry the
LR consistency, measured before clamping."""

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from resume_helpers import train_full_and_resumed

from blurbench import layout
from blurbench.config import build_grid
from blurbench.errors import ConfigError
from blurbench.evaluate import evaluate
from blurbench.results_schema import RUN_METRICS, generative_metrics
from blurbench.train import budget_steps, train

CFG = {
    "seeds": [0],
    "datasets": {"toy": {"resolution": 16}},
    "methods": {"l2": {}, "mse": {}, "aff_mse": {}, "aff_gan": {}},
    "experiments": {"main": {"datasets": ["toy"], "methods": ["l2"]},
                    "sr": {"datasets": ["toy"], "methods": ["mse", "aff_mse", "aff_gan"],
                           "operator": {"name": "avgpool", "factor": 4}, "network": {"width": 8, "depth": 1},
                           "train": {"steps": 10, "batch_size": 16, "log_every": 3}}},
    "evaluate": {"fid": False, "lpips": False, "n_examples": 4},
}


@pytest.fixture
def prepared(prepare_toy):
    return prepare_toy(CFG)


def test_the_grid_adds_sr_runs_with_the_operator_and_network(prepared):
    grid, _ = prepared
    assert grid.sr == ["toy/mse/seed0", "toy/aff_mse/seed0", "toy/aff_gan/seed0"]
    spec = grid.runs["toy/aff_mse/seed0"]
    assert spec.model == {"operator": "avgpool", "factor": 4, "sigma": None, "width": 8, "depth": 1}
    assert spec.train["steps"] == 10 and grid.config["experiments"]["sr"]["reference"] == "mse"
    # the blur ladder serves the VAE tables: a dataset only SR uses is scored without it
    assert grid.baseline_spec("toy")["blur_ladder"] == grid.config["evaluate"]["blur_ladder"]  # toy has l2 too
    sr_only = build_grid({**CFG, "datasets": {**CFG["datasets"], "toy64": {"plugin": "toy", "resolution": 16}},
                          "experiments": {**CFG["experiments"], "sr": {**CFG["experiments"]["sr"], "datasets": ["toy64"]}}})
    spec64 = sr_only.baseline_spec("toy64")
    assert spec64["blur_ladder"] == [] and spec64["sr_operator"]["factor"] == 4
    assert grid.baseline_spec("toy")["trivial"] and not spec64["trivial"]


@pytest.mark.parametrize("change, match", [
    ({"operator": {"name": "avgpool", "factor": 3}}, r"experiments\.sr\.operator' on dataset 'toy'.*does not divide"),
    ({"operator": {"name": "bicubic", "factor": 4}}, r"experiments\.sr\.operator.*'bicubic' is unknown"),
    ({"methods": ["mse", "l2"]}, r"experiments\.sr\.methods': method 'l2' \(plugin l2\) is a vae method"),
    ({"reference": "aff_blur"}, r"experiments\.sr\.reference': unknown name 'aff_blur'"),
])
def test_a_bad_sr_experiment_is_refused_in_one_line(toy_plugin_root, change, match):
    cfg = {**CFG, "experiments": {**CFG["experiments"], "sr": {**CFG["experiments"]["sr"], **change}}}
    with pytest.raises(ConfigError, match=match):
        build_grid(cfg)


def test_an_sr_method_in_the_vae_experiment_is_refused(toy_plugin_root):
    cfg = {**CFG, "experiments": {"main": {"datasets": ["toy"], "methods": ["l2", "mse"]}}}
    with pytest.raises(ConfigError, match=r"experiments\.main\.methods': method 'mse' .* is a sr method"):
        build_grid(cfg)


def test_an_sr_run_trains_resumes_exactly_and_keeps_its_budget_states(prepared):
    grid, tmp = prepared
    spec = grid.runs["toy/aff_gan/seed0"]
    a, b = train_full_and_resumed(spec, tmp / "data", tmp, kill_step=6)
    assert all(torch.equal(a[k], b[k]) for k in a)
    log = pd.read_csv(tmp / "full" / layout.TRAIN_LOG)
    assert {"loss", "d_loss", "noise", "lr_rel", "monitor_psnr"} <= set(log.columns)
    for key, step in budget_steps(10).items():
        assert torch.load(tmp / "full" / layout.TRAIN_FILES[key], weights_only=True)["step"] == step


def test_evaluation_rows_carry_lr_consistency_and_say_why_sr_has_no_samples(prepared):
    grid, tmp = prepared
    lr_rel = {}
    for method in ("mse", "aff_mse"):
        spec = grid.runs[f"toy/{method}/seed0"]
        train(spec, tmp / "data", tmp / method, tmp / f"{method}.pt", log=lambda m: None)
        rows = pd.DataFrame(evaluate(grid.evals[spec.run_id], tmp / method / layout.MODEL, tmp / "data",
                                     tmp / method / "eval", train_log=tmp / method / layout.TRAIN_LOG))
        assert set(rows["metric"]) == set(RUN_METRICS) | {"lr_mse", "lr_rel"}
        by = rows.set_index("metric")
        assert by.loc["psnr", "status"] == "ok" and "no prior samples" in by.loc["fid_gen", "reason"]
        assert by.loc["rate", "status"] == "unavailable" and set(generative_metrics("gen")) <= set(by.index)
        lr_rel[method] = float(by.loc["lr_rel", "value"])
        with np.load(tmp / method / "eval" / layout.EXAMPLES) as ex:  # the SR figure's rows
            assert ex["lr"].shape[-1] * spec.model["factor"] == ex["inputs"].shape[-1] == ex["lr_pinv"].shape[-1]
            # average pooling: A⁺y replicates y, so its block means are y (up to uint8 rounding)
            blocks = ex["lr_pinv"].reshape(*ex["lr"].shape[:3], spec.model["factor"], ex["lr"].shape[-1], -1)
            assert np.abs(blocks.mean(axis=(3, 5)) - ex["lr"]).max() <= 1
    assert lr_rel["aff_mse"] < 1e-20 < 1e-8 < lr_rel["mse"]  # projected: float64 round-off
    shutil.rmtree(tmp / "mse")


def test_the_sr_table_shows_the_papers_numbers_labelled_and_tiny_lr_errors_in_full():
    from blurbench.results_schema import BASELINE_METHOD, SR_BICUBIC, SR_PINV
    from blurbench.tables import sr_table

    from blurbench.results_schema import ROW_FIELDS

    def row(method, variant, metric, value):
        return {**dict.fromkeys(ROW_FIELDS, ""), "run_id": f"celeba64/{variant}/seed0", "dataset": "celeba64",
                "method": method, "variant": variant, "seed": 0, "metric": metric, "value": value, "status": "ok",
                "n": 8, "split": "test", "implementation": "x", "version": "1"}

    rows = [row(m, m, "psnr", p) for m, p in (("mse", 26.0), ("aff_mse", 26.4))]
    rows += [row("mse", "mse", "lr_mse", 2e-4), row("aff_mse", "aff_mse", "lr_mse", 5e-33)]
    rows += [row(BASELINE_METHOD, b, "psnr", p) for b, p in ((SR_PINV, 22.0), (SR_BICUBIC, 24.0))]
    sr = {"datasets": ["celeba64"], "methods": ["mse", "aff_mse"], "reference": "mse", "min_gain_db": 0.5,
          "operator": {"name": "avgpool", "factor": 4}, "paper_rows": ["celeba64"]}
    table, _ = sr_table(pd.DataFrame(rows), sr)
    cells = {r[1].text: [c.text for c in r[2:]] for r in table.rows}
    lr = table.header.index("LR MSE ↓") - 2
    assert cells["aff_mse"][lr] == "5.0e-33" and cells["mse"][lr] == "2.0e-04"
    assert [r[1].text for r in table.rows if r[2 + lr].best] == ["aff_mse"]  # bold by the shown value
    assert cells[f"baseline: {SR_BICUBIC}"][lr] == "–"
    assert cells["paper: aff_gan"][:3] == ["0.81", "23.02", "9.10e-10"] and "not ours" in table.legend
    # an SR-only config (config/sr.yaml) has no VAE study: only the sr table is written
    from blurbench.tables import table_names, write_tables

    with tempfile.TemporaryDirectory() as out:
        paths = write_tables(pd.DataFrame(rows), Path(out), ablations={}, main=None, sr=sr)
        assert sorted({p.stem for p in paths}) == table_names({}, sr, None) == ["sr"]
