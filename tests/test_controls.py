"""The controls: an L2 σ² sweep against the blur runs on the rate axis (table and figure), l2_matched."""

import pandas as pd
import pytest

from blurbench import figures as F
from blurbench.config import build_grid
from blurbench.tables import controls_table, load_metrics

SWEEP = {"dataset": "d", "methods": ["l2"], "param": "sigma2_divisor", "tag": "g", "values": [1, 2, 4]}
# variant -> (rate, hfer, gain)
RUNS = {"l2": (10.0, 0.30, 1.0), "l2__g2": (14.0, 0.40, 2.0), "l2__g4": (19.0, 0.55, 4.0),
        "blur_per_image": (21.0, 0.70, 8.1)}


@pytest.fixture
def metrics(tmp_path):
    rows = []
    for variant, (rate, hfer, gain) in RUNS.items():
        method = variant.split("__")[0]
        g = {"l2": 1, "l2__g2": 2, "l2__g4": 4}.get(variant, "")
        for metric, value in (("rate", rate), ("hfer_recon", hfer), ("gain", gain), ("psnr", 20.0),
                              ("lpips", 0.2), ("fid_recon", 100.0), ("fid_gen", 150.0)):
            rows.append({"run_id": f"d/{variant}/seed0", "dataset": "d", "method": method, "variant": variant,
                         "seed": 0, "split": "test", "metric": metric, "value": value, "status": "ok",
                         "reason": "", "n": 8, "implementation": "x", "version": "1", "feature_extractor": "",
                         "weights_source": "", "note": "", "sigma2_divisor": g})
    path = tmp_path / "metrics.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_controls_table_lists_the_sweep_then_the_points(metrics):
    table, summary = controls_table(load_metrics(metrics), {"sigma2": SWEEP})
    labels = [row[1].text for row in table.rows]
    assert labels == ["l2 (L2 at σ²/1)", "l2__g2 (L2 at σ²/2)", "l2__g4 (L2 at σ²/4)", "blur_per_image"]
    rate = summary[summary["metric"] == "rate"].set_index("variant")["mean"]
    assert rate.to_dict() == {v: r for v, (r, _, _) in RUNS.items()}


def test_rate_figure_puts_each_point_at_its_coordinates(metrics, tmp_path, monkeypatch):
    drawn = {}
    real_plot, real_scatter = F._pyplot().Axes.plot, F._pyplot().Axes.scatter

    def plot(ax, x, y, *a, **k):
        drawn.setdefault(ax.get_title(), {})["curve"] = (list(x), list(y))
        return real_plot(ax, x, y, *a, **k)

    def scatter(ax, x, y, *a, **k):
        drawn.setdefault(ax.get_title(), {})[k["label"]] = (x, y)
        return real_scatter(ax, x, y, *a, **k)

    monkeypatch.setattr(F._pyplot().Axes, "plot", plot)
    monkeypatch.setattr(F._pyplot().Axes, "scatter", scatter)
    paths = F.rate_figure(metrics, "d", SWEEP, tmp_path / "rate_d")
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 0 for p in paths)
    hfer = drawn["HFER →1"]
    assert hfer["curve"] == ([10.0, 14.0, 19.0], [0.30, 0.40, 0.55])
    assert hfer["blur_per_image (gain 8.1)"] == (21.0, 0.70)


def test_l2_matched_divides_sigma2_by_the_blur_terms_initial_gain(toy_plugin_root):
    cfg = {"seeds": [0], "datasets": {"toy": {"resolution": 32}},
           "methods": {"blur_per_image": {"plugin": "blur_wiener"},
                       "l2_matched": {"plugin": "l2", "params": {"match_gain_of": "blur_per_image"}}},
           "experiments": {"main": {"datasets": ["toy"], "methods": ["blur_per_image", "l2_matched"]}}}
    divisor = build_grid(cfg).runs["toy/l2_matched/seed0"].params["sigma2_divisor"]
    assert divisor == pytest.approx(8.15, abs=0.01)  # 7×7 Gaussian σ = 1, ε = 1, C = 0.01 (issue 15)
    cfg["methods"]["l2_matched"]["params"]["match_gain_of"] = "nope"
    with pytest.raises(Exception, match="match_gain_of"):
        build_grid(cfg)


def test_a_switch_can_be_ablated_on_and_off(toy_plugin_root):
    cfg = {"seeds": [0], "datasets": {"toy": {"resolution": 16}},
           "methods": {"blur": {"plugin": "blur_wiener", "params": {"kernel": {"size": 3}}}},
           "experiments": {"main": {"datasets": ["toy"], "methods": ["blur"]},
                           "ablations": {"gain": {"dataset": "toy", "methods": ["blur"],
                                                  "param": "blur.normalize_gain", "tag": "unitgain",
                                                  "values": [False, True]}}}}
    grid = build_grid(cfg)
    assert sorted(grid.runs) == ["toy/blur/seed0", "toy/blur__unitgaintrue/seed0"]
    assert grid.runs["toy/blur__unitgaintrue/seed0"].params["blur"]["normalize_gain"] is True
    cfg["experiments"]["ablations"]["gain"]["values"] = [0.5]
    with pytest.raises(Exception, match="true or false"):
        build_grid(cfg)
