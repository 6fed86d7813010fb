"""The verdict across training budgets: steps, signs and the step the answer is stable from; bad
fractions and steps; the CSV and one figure per dataset, with n/a panels when FID is off."""

import numpy as np
import pandas as pd
import pytest

from blurbench import budget
from blurbench.errors import ConfigError
from blurbench.metrics import fid

from test_comparison import D, N, _write_run
from test_figures import assert_valid, flat, texts  # noqa: F401 (texts: a fixture)

# b's PSNR − l2's (dB) at each fraction: equal, worse, then better up to the full budget
MARGINS = {"0.125": 0.0, "0.25": -1.0, "0.5": 1.0, "1": 1.0}
STEPS = {"d": 600, "e": 80}
N_BOOT = 1000  # per-image: the smallest bootstrap p (≈ 2/N_BOOT) survives Holm over the dataset's cells


def _set_psnr(run: dict, values) -> None:
    df = pd.read_csv(run["per_image"])
    df["psnr"] = values
    df.to_csv(run["per_image"], index=False)


def _dataset(root, rng, fid_stats=None) -> dict:
    """fraction -> this dataset's comparison files: l2 and b, one seed, b's PSNR shifted by MARGINS."""
    out = {}
    for key, margin in MARGINS.items():
        runs = {m: {"0": _write_run(root / key, m, 0, rng)} for m in ("l2", "b")}
        base = 20 + rng.normal(size=N)
        noise = 0.1 * rng.normal(size=N)
        _set_psnr(runs["l2"]["0"], base)
        _set_psnr(runs["b"]["0"], base + margin + noise - noise.mean())
        out[key] = {"runs": runs, "fid_stats": fid_stats}
    return out


def make_files(root, fid_on=()) -> dict:
    """fraction -> dataset -> comparison files of datasets d and e, with FID statistics for those in `fid_on`
    (PRDC's fixed subsamples make a dataset with FID the slow part)."""
    rng = np.random.default_rng(0)
    test = rng.normal(size=(N, D))
    stats_path = root / "fid.npz"
    fid.save_stats(stats_path, test.mean(0), np.cov(test, rowvar=False), N, {"implementation": "test"}, feats=test)
    by_dataset = {d: _dataset(root / d, rng, stats_path if d in fid_on else None) for d in STEPS}
    return {key: {d: f[key] for d, f in by_dataset.items()} for key in MARGINS}


def test_rows_have_steps_signs_and_the_step_the_answer_is_stable_from(tmp_path):
    files = make_files(tmp_path)
    df = budget.budget_rows(files, "l2", STEPS, n_boot=N_BOOT, n_boot_set=200)
    assert list(df.columns) == budget.COLUMNS
    psnr = df[(df["dataset"] == "d") & (df["metric"] == "psnr")]
    assert list(psnr["step"]) == [75, 150, 300, 600] and list(psnr["fraction"]) == [0.125, 0.25, 0.5, 1.0]
    assert list(df.loc[(df["dataset"] == "e") & (df["metric"] == "psnr"), "step"]) == [10, 20, 40, 80]
    diff = psnr.set_index("fraction")["diff"]
    assert abs(diff[0.125]) < 1e-9
    assert diff[0.25] == pytest.approx(-1.0) and diff[0.5] == pytest.approx(1.0) and diff[1.0] == pytest.approx(1.0)
    assert list(psnr["verdict"]) == ["no detectable difference", "worse", "better", "better"]
    assert budget.stable_from(df, "d", "b", "psnr") == 300
    assert budget.stable_from(df, "e", "b", "psnr") == 40
    assert budget.stable_from(df, "e", "b", "fid_recon") is None  # FID off: no verdict
    assert df.equals(df.sort_values(["dataset", "method", "metric", "step"], ignore_index=True))


@pytest.mark.parametrize("bad, steps, named", [
    ("0.3", STEPS, "'0.3'"),
    ("1", {"d": 600}, "steps['e']"),
])
def test_bad_fraction_or_missing_steps_is_a_config_error_naming_it(tmp_path, bad, steps, named):
    files = {bad if key == "1" else key: f for key, f in make_files(tmp_path).items()}
    with pytest.raises(ConfigError, match=named.replace("[", r"\[")):
        budget.budget_rows(files, "l2", steps, n_boot=N_BOOT, n_boot_set=200)


def test_write_budget_writes_the_csv_and_a_figure_per_dataset(tmp_path, texts):  # noqa: F811
    """d with FID statistics, e with FID off: its FID panels are n/a."""
    files = make_files(tmp_path, fid_on=("d",))
    out_csv, figures = tmp_path / "tables" / "budget.csv", tmp_path / "figures"
    paths = budget.write_budget(files, "l2", STEPS, out_csv, figures, n_boot=N_BOOT, n_boot_set=200)
    stems = budget.figure_names(["d", "e"])
    assert stems == ["budget_d", "budget_e"]
    assert set(paths) == {out_csv} | {figures / f"{s}.{ext}" for s in stems for ext in ("png", "pdf")}
    assert_valid([p for p in paths if p != out_csv])
    written = pd.read_csv(out_csv)
    assert set(written["dataset"]) == {"d", "e"} and set(written["step"]) == {75, 150, 300, 600, 10, 20, 40, 80}
    na = "n/a: no FID reference statistics (FID off, or its weights unavailable)"
    assert flat(texts["budget_e"]).count(na) == 2  # fid_recon and fid_gen
    assert na not in flat(texts["budget_d"])
    assert "d: paired difference method − l2 across training budgets (filled: Holm-adjusted verdict)" \
        in texts["budget_d"]
