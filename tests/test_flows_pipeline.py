"""Flows runs go through the workflow's own train and evaluate, as SR runs do: a third task, not a
second pipeline. The grid refuses a bad flows experiment before any job; a flows run resumes exactly
and stops cleanly on a NaN; its rows carry the likelihood, the samples' quality, the artifact rates
per condition set and the OOD score; the tables, the paired intervals and the figure are built from them."""

import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from resume_helpers import train_full_and_resumed

from blurbench import layout, plugins
from blurbench.atomic import write_npz
from blurbench.config import build_grid
from blurbench.data import prepare
from blurbench.errors import ConfigError, TrainingDiverged
from blurbench.evaluate import evaluate
from blurbench.flows.artifacts import artifact_pixels
from blurbench.flows.sr_flow import SRFlow
from blurbench.results_schema import (FLOW_CONDITIONS, FLOW_METRICS, LR_METRICS, ROW_FIELDS, RUN_METRICS,
                                      condition_metric, flows_key, generative_metrics)
from blurbench.train import budget_steps, train

FLOWS = {"datasets": ["toy"], "methods": ["flow_affine", "flow_spline"],
         "network": {"n_couplings": 1, "hidden": 4, "features": 4},
         "train": {"steps": 10, "batch_size": 8, "log_every": 3}, "n_samples": 2, "n_ood_images": 8,
         "other": {"toy": "second"}}
CFG = {
    "seeds": [0],
    "datasets": {"toy": {"resolution": 16}, "second": {"plugin": "toy", "resolution": 32, "params": {"seed": 1}}},
    "methods": {"l2": {}, "flow_affine": {}, "flow_spline": {}},
    "experiments": {"flows": FLOWS},
    "evaluate": {"fid": False, "lpips": False, "n_examples": 4, "batch_size": 16},
}


def _config(**flows):
    return {**CFG, "experiments": {"flows": {**FLOWS, **flows}}}


@pytest.fixture
def prepared(prepare_toy):
    grid, tmp = prepare_toy(CFG)
    d = grid.datasets["second"]  # the other dataset: its test images become LR inputs of `toy`
    prepare(d["plugin"], d["params"], d["resolution"], tmp / "second")
    return grid, tmp


def _quiet(message):
    pass


def test_the_grid_adds_flow_runs_with_their_network_and_evaluation_keys(prepared):
    grid, _ = prepared
    assert grid.flows == ["toy/flow_affine/seed0", "toy/flow_spline/seed0"] and not grid.sr
    spec = grid.runs["toy/flow_spline/seed0"]
    assert spec.model == {"levels": 2, "n_couplings": 1, "hidden": 4, "features": 4, "temperature": 0.9}
    assert spec.params == {"bins": 2, "tail_bound": 0.5, "shift_bound": 1.0}
    assert grid.runs["toy/flow_affine/seed0"].params == {"eps": 1e-4} and spec.train["steps"] == 10
    assert grid.evals[spec.run_id].evaluate["flows"] == {"n_samples": 2, "other": "second", "n_ood_images": 8}
    assert grid.config["experiments"]["flows"]["reference"] == "flow_affine"
    assert grid.config["experiments"]["flows"]["min_gain_db"] == 0.5  # adequacy over bicubic, as SR's
    # a dataset only the flows use: the SR baselines at the flows' x4 pooling, no trivial ones, no ladder
    assert grid.baseline_spec("toy") | {"blur_ladder": [], "trivial": False} == grid.baseline_spec("toy")
    assert grid.baseline_spec("toy")["sr_operator"] == {"operator": "avgpool", "factor": 4, "sigma": None}


@pytest.mark.parametrize("methods, flows, match", [
    ({"flow_spline": {"params": {"binz": 3}}}, {},
     r"unknown config key 'methods\.flow_spline\.params\.binz'; expected one of: bins, shift_bound, tail_bound"),
    ({"flow_spline": {"params": {"bins": 1}}}, {}, r"methods\.flow_spline\.params: bins: 1 is not an integer ≥ 2"),
    ({"flow_spline": {"params": {"tail_bound": 0}}}, {},
     r"methods\.flow_spline\.params: tail_bound: 0 is not a finite number > 0"),
    ({"flow_affine": {"params": {"eps": -1e-4}}}, {}, r"methods\.flow_affine\.params: eps: -0\.0001 is not a finite"),
    ({}, {"temperature": 0}, r"experiments\.flows\.temperature': temperature: 0 is not a finite number > 0"),
    ({}, {"methods": ["flow_affine", "l2"]},
     r"experiments\.flows\.methods': method 'l2' \(plugin l2\) is a vae method"),
    ({}, {"reference": "flow_clamped"}, r"experiments\.flows\.reference': unknown name 'flow_clamped'"),
    ({}, {"other": {"toy": "nope"}}, r"experiments\.flows\.other\.toy': 'nope' is not another defined dataset"),
    ({}, {"network": {"width": 8}}, r"config key under 'experiments\.flows\.network': Additional properties are "
                                    r"not allowed \('width' was unexpected\)"),
])
def test_a_bad_flows_config_is_refused_in_one_line(toy_plugin_root, methods, flows, match):
    cfg = _config(**flows)
    cfg["methods"] = {**CFG["methods"], **methods}
    with pytest.raises(ConfigError, match=match) as err:
        build_grid(cfg)
    assert "\n" not in str(err.value)


def test_an_image_size_that_4x_pooling_does_not_divide_is_refused(toy_plugin_root):
    (toy_plugin_root / "datasets" / "odd.py").write_text((toy_plugin_root / "datasets" / "toy.py").read_text()
                                                         .replace("RESOLUTIONS = (16, 32)", "RESOLUTIONS = (18,)"))
    cfg = _config(datasets=["odd"], other={})
    cfg["datasets"] = {**CFG["datasets"], "odd": {"resolution": 18}}
    with pytest.raises(ConfigError, match=r"experiments\.flows\.datasets': dataset 'odd' has resolution 18, not "
                                          r"divisible by 4"):
        build_grid(cfg)


def test_a_flow_plugin_with_an_unknown_coupling_fails_its_contract(tmp_path, monkeypatch):
    (tmp_path / "methods").mkdir()
    (tmp_path / "methods" / "flow_bad.py").write_text(textwrap.dedent('''
        TASK = "flow"
        COUPLING = "affine_spline"
        PARAMS = {}
        def validate(params):
            pass
    '''))
    monkeypatch.setenv("BLURBENCH_PLUGIN_ROOT", str(tmp_path))
    with pytest.raises(ConfigError, match=r"flow_bad\.py is not a valid method plugin.*COUPLING is str, expected "
                                          r"one of blurbench\.flows\.coupling\.COUPLINGS"):
        plugins.load_method("flow_bad")
    assert "blurbench_plugin_methods_flow_bad" not in sys.modules


def test_a_flows_run_trains_resumes_exactly_and_keeps_its_budget_states(prepared):
    grid, tmp = prepared
    spec = grid.runs["toy/flow_spline/seed0"]
    a, b = train_full_and_resumed(spec, tmp / "data", tmp, kill_step=6)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(bool(v) for k, v in a.items() if k.endswith("initialised"))  # ActNorm set from the first batch
    log = pd.read_csv(tmp / "full" / layout.TRAIN_LOG)
    assert {"loss", "monitor_loss", "monitor_psnr"} <= set(log.columns) and log["step"].iloc[-1] == 10
    assert np.isfinite(log[["loss", "monitor_loss", "monitor_psnr"]].to_numpy()).all()
    pd.testing.assert_frame_equal(log.drop(columns="seconds"),
                                  pd.read_csv(tmp / "cut" / layout.TRAIN_LOG).drop(columns="seconds"))
    for key, step in budget_steps(10).items():
        assert torch.load(tmp / "full" / layout.TRAIN_FILES[key], weights_only=True)["step"] == step


def test_a_nan_loss_stops_cleanly_and_keeps_the_last_good_checkpoint(prepared, monkeypatch):
    grid, tmp = prepared
    spec = grid.runs["toy/flow_affine/seed0"]
    calls = []
    nll = SRFlow.training_nll

    def nan_at_step_8(self, x, generator=None, **kw):  # the 8th optimiser step's loss: a NaN log-det's effect
        calls.append(1)
        loss = nll(self, x, generator, **kw)
        return loss * float("nan") if len(calls) == 8 else loss

    monkeypatch.setattr(SRFlow, "training_nll", nan_at_step_8)
    ckpt = tmp / "nan.pt"
    with pytest.raises(TrainingDiverged) as err:
        train(spec, tmp / "data", tmp / "nan", ckpt, log=_quiet)
    message = str(err.value)
    assert "\n" not in message and "at step 8" in message and "(after step 6)" in message and str(ckpt) in message
    state = torch.load(ckpt, weights_only=True)
    assert state["step"] == 6 and [r["step"] for r in state["rows"]] == [1, 2, 3, 5, 6]
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert not (tmp / "nan" / layout.MODEL).exists()  # no model.pt: the job fails, the checkpoint stays


@pytest.fixture
def evaluated(prepared):
    """Both couplings trained for 10 steps and evaluated; (grid, tmp, {method: rows})."""
    grid, tmp = prepared
    rows = {}
    for rid in grid.flows:
        spec, m = grid.runs[rid], grid.runs[rid].method
        train(spec, tmp / "data", tmp / m, tmp / f"{m}.pt", log=_quiet)
        rows[m] = pd.DataFrame(evaluate(grid.evals[rid], tmp / m / layout.MODEL, tmp / "data", tmp / m / "eval",
                                        train_log=tmp / m / layout.TRAIN_LOG, other_data=tmp / "second"))
    return grid, tmp, rows


def test_evaluation_rows_name_every_flows_metric_with_rates_in_range_and_tiny_lr_error(evaluated):
    _, tmp, rows = evaluated
    for method, df in rows.items():
        assert list(df["metric"]).count("psnr") == 1
        assert set(df["metric"]) == set(RUN_METRICS) | set(FLOW_METRICS) | set(LR_METRICS), method
        by = df.set_index("metric")
        unavailable = {"rate", "hfer_gen", *generative_metrics("gen"), "gain", "lpips", "lpips_sample",
                       *generative_metrics("recon")}
        assert set(by.index[by["status"] == "unavailable"]) <= unavailable | {"ood_auroc", "ood_spearman"}
        assert "not prior draws" in by.loc["fid_gen", "reason"] and "disabled" in by.loc["lpips_sample", "reason"]
        assert "of the sample mean: K = 2 samples" in by.loc["psnr", "note"]
        for c in FLOW_CONDITIONS:
            for m in ("artifact_rate", "artifact_rate_pixel"):
                value = float(by.loc[condition_metric(m, c), "value"])
                assert by.loc[condition_metric(m, c), "status"] == "ok" and 0 <= value <= 1, (method, c, m)
        assert "test images of second" in by.loc["artifact_rate@other_dataset", "note"]
        assert int(by.loc["artifact_rate@noise_0.1", "n"]) == 8 and int(by.loc["artifact_rate", "n"]) == 32
        assert float(by.loc["lr_rel", "value"]) < 1e-10 and float(by.loc["nll_bpd", "value"]) > 0
        assert float(by.loc["diversity_std", "value"]) > 0 and 0 <= float(by.loc["ood_artifacts", "value"]) <= 80
        with np.load(tmp / method / "eval" / layout.FLOWS) as f:
            assert list(f["conditions"]) == FLOW_CONDITIONS and int(f["n_samples"]) == 2
            for c in FLOW_CONDITIONS:
                frac = f[flows_key("artifacts", c)]
                assert len(frac) == (32 if c == "in_distribution" else 8) and set(frac) <= {0, 0.5, 1}
                assert f[flows_key("samples", c)].shape == (4, 3, 16, 16)
                assert f[flows_key("lr", c)].shape == (4, 3, 4, 4)
            assert f[flows_key("score", "constant")].min() >= 0 and 0 <= float(f["shrinkage"]) <= 1
    # the couplings saw the same condition inputs (the latents too: same seed and condition)
    affine, spline = (tmp / m / "eval" / layout.FLOWS for m in ("flow_affine", "flow_spline"))
    with np.load(affine) as a, np.load(spline) as b:
        assert np.array_equal(a[flows_key("lr", "noise_0.2")], b[flows_key("lr", "noise_0.2")])


def test_without_an_other_dataset_its_rows_say_why(evaluated):
    grid, tmp, _ = evaluated
    spec = grid.evals["toy/flow_affine/seed0"]
    spec.evaluate["flows"] = {**spec.evaluate["flows"], "other": None}
    df = pd.DataFrame(evaluate(spec, tmp / "flow_affine" / layout.MODEL, tmp / "data", tmp / "alone"))
    df = df.set_index("metric")
    assert df.loc["artifact_rate@other_dataset", "status"] == "unavailable"
    assert "experiments.flows.other" in df.loc["artifact_rate_pixel@other_dataset", "reason"]
    with np.load(tmp / "alone" / layout.FLOWS) as f:
        assert "other_dataset" not in list(f["conditions"])


def _row(method, metric, value, seed=0, status="ok", reason=""):
    return {**dict.fromkeys(ROW_FIELDS, ""), "run_id": f"d/{method}/seed{seed}", "dataset": "d", "method": method,
            "variant": method, "seed": seed, "metric": metric, "value": value, "status": status, "reason": reason,
            "n": 64, "split": "test", "implementation": "x", "version": "1"}


def test_the_flows_tables_show_every_condition_and_the_ood_score():
    from blurbench.tables import flows_tables

    rows = []
    for m, rate, auroc in (("flow_affine", 0.25, 0.8), ("flow_spline", 0.0, 0.6)):
        for s in (0, 1):
            rows += [_row(m, "nll_bpd", 4.0 + s, s), _row(m, "psnr", 27.0, s),
                     _row(m, "artifact_rate@noise_0.2", rate, s), _row(m, "ood_auroc", auroc, s),
                     _row(m, "ood_artifacts", 10.0, s),
                     _row(m, "artifact_rate@other_dataset", "", s, "unavailable", "no other dataset configured")]
    flows = {"datasets": ["d"], "methods": ["flow_affine", "flow_spline"], "reference": "flow_affine",
             "temperature": 0.9, "n_samples": 8, "n_ood_images": 64}
    df = pd.DataFrame(rows)
    df["value"] = pd.to_numeric(df["value"].replace("", np.nan))
    (table, _), (ood, _) = flows_tables(df, flows)
    cells = {r[1].text: r[2:] for r in table.rows}
    header = table.header[2:]
    noise = header.index("artifacts (noise 0.2) ↓")
    assert cells["flow_affine"][noise].text == "0.250 ± 0.000" and cells["flow_spline"][noise].best
    assert cells["flow_affine"][header.index("NLL (bits/dim) ↓")].text == "4.500 ± 0.707"
    other = cells["flow_spline"][header.index("artifacts (other dataset) ↓")]
    assert other.text == "n/a" and "no other dataset configured" in table.footnotes[other.notes[0] - 1]
    assert "K = 8 samples per LR input at temperature 0.9" in table.legend and "first 64 test images" in table.legend
    assert {r[1].text: r[2].text for r in ood.rows} == {"flow_affine": "0.800 ± 0.000", "flow_spline": "0.600 ± 0.000"}
    assert ood.header[2:] == ["OOD AUROC", "OOD Spearman ρ", "inputs with an artifact"]


def _flows_npz(path, noise_rate, n=20, other=True):
    """A hand-made flows.npz: every condition's per-input artifact fractions 0, noise_0.2's `noise_rate`."""
    conditions = [c for c in FLOW_CONDITIONS if other or c != "other_dataset"]
    arrays = {"conditions": np.array(conditions), "n_samples": np.array(4), "temperature": np.array(0.9)}
    for c in conditions:
        arrays[flows_key("artifacts", c)] = np.asarray(noise_rate if c == "noise_0.2" else np.zeros(n), dtype=float)
    write_npz(path, **arrays)
    return str(path)


def test_the_paired_intervals_pool_seeds_by_image_and_say_why_a_condition_is_missing(tmp_path):
    from blurbench.comparison import compare_flows
    from blurbench.tables import write_comparison

    rng = np.random.default_rng(0)
    files = {"d": {"runs": {
        "flow_affine": {str(s): {"flows": _flows_npz(tmp_path / f"a{s}.npz", rng.choice([0.5, 0.75, 1.0], 20),
                                                     other=False)} for s in (0, 1)},
        "flow_spline": {str(s): {"flows": _flows_npz(tmp_path / f"s{s}.npz", np.zeros(20), other=False)}
                        for s in (0, 1)}}}}
    df = compare_flows(files, "flow_affine", n_boot=2000).set_index("metric")
    noise = df.loc["artifact_rate@noise_0.2"]
    assert noise["method"] == "flow_spline" and noise["n"] == 20 and noise["covers"] == "seeds and test images"
    assert noise["diff"] < 0 and noise["hi"] < 0 and noise["verdict"] == "better"
    still = df.loc["artifact_rate@inverted"]  # neither coupling produced an artifact: a null result, stated
    assert still["diff"] == still["lo"] == still["hi"] == 0 and still["verdict"] == "no detectable difference"
    missing = df.loc["artifact_rate@other_dataset"]
    assert np.isnan(missing["diff"]) and "experiments.flows.other" in missing["reason"]
    main = {"datasets": ["d"], "methods": ["flow_affine", "flow_spline"], "reference": "flow_affine"}
    paths = write_comparison(files, main, tmp_path / "tables", n_boot=2000, n_boot_set=20, name="comparison_flows")
    md = (tmp_path / "tables" / "comparison_flows.md").read_text()
    assert len(paths) == 4 and "artifacts (noise 0.2)" in md and "paired by input" in md


def test_the_flows_figure_marks_artifact_pixels_red_and_shows_a_missing_run(tmp_path):
    from blurbench.flows.figure import _strip, flows_figure

    samples = np.full((2, 3, 8, 8), 0.5, dtype=np.float32)
    samples[1, 0, 2, 3] = 7.0  # an exploded pixel
    samples[1, :, 5, 5] = np.nan
    strip = _strip(samples, artifact_pixels(samples))
    assert np.allclose(strip[2, 8 + 2 + 3], [0.3 * 1.0 + 0.7, 0.3 * 0.5, 0.3 * 0.5])  # clipped to 1, then red
    assert np.allclose(strip[5, 10 + 5], [0.7, 0, 0]) and np.allclose(strip[0, 0], [0.5, 0.5, 0.5])
    arrays = {"conditions": np.array(["in_distribution", "noise_0.2"]), "n_samples": np.array(2),
              "temperature": np.array(0.9)}
    for c in ("in_distribution", "noise_0.2"):
        arrays[flows_key("lr", c)] = np.full((2, 3, 2, 2), 0.5, dtype=np.float32)
        arrays[flows_key("samples", c)] = samples
    write_npz(tmp_path / "a.npz", **arrays)
    paths = flows_figure("d", {"flow_affine": tmp_path / "a.npz", "flow_spline": None}, tmp_path / "flows_d")
    assert [p.name for p in paths] == ["flows_d.png", "flows_d.pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[1].read_bytes()[:5] == b"%PDF-"
