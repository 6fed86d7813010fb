"""Convergence: a run is converged when the same run trained longer gains less than the threshold on
the monitor split; the flag reaches metrics.csv, the adequacy file and the tables' footnotes."""

import numpy as np
import pandas as pd
import pytest

from blurbench import layout
from blurbench.config import CONVERGENCE_TAG, build_grid
from blurbench.convergence import METRIC, convergence_rows, final_monitor_psnr, is_converged
from blurbench.errors import ConfigError
from blurbench.results_schema import TRIVIAL_BASELINES
from blurbench.tables import main_table
from blurbench.tables.summaries import adequacy

CFG = {
    "seeds": [0, 1],
    "datasets": {"toy": {"resolution": 16}},
    "methods": {"l2": {}, "ffl": {"plugin": "focal_frequency"}},
    "experiments": {"main": {"datasets": ["toy"], "methods": ["l2", "ffl"]},
                    "convergence": {"factor": 2, "threshold_db": 0.1}},
    "train": {"steps": 40, "log_every": 10},
}


def saturating_log(path, steps: int, limit_db: float, rate: float):
    """A synthetic training log whose monitor PSNR approaches `limit_db` as 1 − exp(−rate · step)."""
    step = np.arange(10, steps + 1, 10)
    psnr = limit_db * (1 - np.exp(-rate * step))
    pd.DataFrame({"step": step, "loss": 1 / step, "monitor_psnr": psnr}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("rate, expected", [(0.2, True), (0.005, False)])
def test_a_synthetic_curve_is_flagged_on_the_right_side_of_the_threshold(tmp_path, rate, expected):
    """Fast saturation: 2x the steps gains ~0 dB (converged); slow: it gains > 0.1 dB (not)."""
    short = final_monitor_psnr(saturating_log(tmp_path / "a.csv", 400, 30.0, rate))
    longer = final_monitor_psnr(saturating_log(tmp_path / "b.csv", 800, 30.0, rate))
    assert is_converged(short, longer, 0.1) is expected
    assert is_converged(short, short + 0.0999, 0.1) and not is_converged(short, short + 0.1, 0.1)
    assert is_converged(short, short - 1.0, 0.1)  # a longer run that loses PSNR has stopped improving


def test_the_grid_adds_one_longer_run_per_dataset_and_method_at_the_lowest_seed(toy_plugin_root):
    grid = build_grid(CFG, check_data=False)
    assert grid.convergence == {
        ("toy", m): (layout.run_id("toy", m, 0), layout.run_id("toy", layout.variant_name(m, CONVERGENCE_TAG, 2), 0))
        for m in ("l2", "ffl")}
    for short, longer in grid.convergence.values():
        assert grid.runs[longer].train["steps"] == 2 * grid.runs[short].train["steps"] == 80
        assert grid.runs[longer].params == grid.runs[short].params
    assert not set(grid.main) & {longer for _, longer in grid.convergence.values()}


@pytest.mark.parametrize("bad", [{"factor": 1, "threshold_db": 0.1}, {"factor": 2, "threshold_db": 0},
                                 {"factor": 2}])
def test_a_bad_convergence_section_is_refused_naming_it(bad, toy_plugin_root):
    cfg = {**CFG, "experiments": {**CFG["experiments"], "convergence": bad}}
    with pytest.raises(ConfigError, match="convergence"):
        build_grid(cfg, check_data=False)


def _metrics(tmp_path, gains: dict) -> pd.DataFrame:
    """metrics.csv rows: two seeds of psnr per method, baselines, and the convergence rows."""
    grid = build_grid(CFG, check_data=False)
    pairs = []
    for (dataset, method), (short, longer) in grid.convergence.items():
        base = 25.0
        pairs.append({"spec": grid.runs[short].to_json(),
                      "log": saturating_log(tmp_path / f"{method}.csv", 40, base, 1.0),
                      "longer_log": saturating_log(tmp_path / f"{method}_x2.csv", 80, base + gains[method], 1.0)})
    rows = pd.DataFrame(convergence_rows(pairs, 2, 0.1))
    psnr = [{"run_id": f"toy/{m}/seed{s}", "dataset": "toy", "method": m, "variant": m, "seed": s, "metric": "psnr",
             "value": 26.0 + s, "status": "ok"} for m in ("l2", "ffl") for s in (0, 1)]
    base = [{"run_id": f"toy/{v}", "dataset": "toy", "method": "baseline", "variant": v, "seed": 0,
             "metric": "psnr", "value": 10.0, "status": "ok"} for v in TRIVIAL_BASELINES]
    df = pd.concat([rows, pd.DataFrame(psnr + base)], ignore_index=True)
    text = [c for c in df.select_dtypes(exclude="number").columns if c != "value"]
    return df.assign(value=df["value"].astype(float), **{c: df[c].fillna("") for c in text})


def test_metrics_rows_adequacy_and_footnote_name_the_unconverged_method(tmp_path, toy_plugin_root):
    df = _metrics(tmp_path, {"l2": 0.05, "ffl": 0.4})
    conv = df[df["metric"] == METRIC].set_index("method")
    assert conv.loc["l2", "value"] == pytest.approx(0.05, abs=1e-6) and conv.loc["ffl", "value"] == pytest.approx(0.4)
    assert "not converged" in conv.loc["ffl", "note"] and "not converged" not in conv.loc["l2", "note"]
    assert set(conv["split"]) == {"monitor"}
    table = adequacy(df, 3.0, threshold_db=0.1)
    flags = table.groupby("method")["unconverged"].all()
    assert flags.to_dict() == {"ffl": True, "l2": False}  # every seed of the method carries it
    assert adequacy(df, 3.0)["unconverged"].sum() == 0  # without a threshold nothing is flagged
    main = {"datasets": ["toy"], "methods": ["l2", "ffl"], "reference": "l2"}
    rendered, _ = main_table(df, main, ["psnr"], "reconstruction", "t", min_gain_db=3.0, threshold_db=0.1)
    notes = [n for n in rendered.footnotes if "not converged" in n]
    assert len(notes) == 1 and "+0.40 dB" in notes[0] and "0.1 dB" in notes[0]
    assert rendered.rows[1][2].notes and not rendered.rows[0][2].notes  # on ffl's PSNR, not on l2's


def test_the_legend_says_whether_convergence_was_checked(tmp_path, toy_plugin_root):
    df = _metrics(tmp_path, {"l2": 0.0, "ffl": 0.0})
    main = {"datasets": ["toy"], "methods": ["l2", "ffl"], "reference": "l2"}
    checked, _ = main_table(df, main, ["psnr"], "reconstruction", "t", min_gain_db=3.0, threshold_db=0.1)
    unchecked, _ = main_table(df, main, ["psnr"], "reconstruction", "t", min_gain_db=3.0)
    assert "Convergence checked" in checked.legend and "demonstration" in unchecked.legend
