"""The comparison table's cells: reasons for the edge cases, and cells that agree with their verdicts."""

import numpy as np
import pandas as pd
import pytest
import torch

from blurbench import comparison, layout
from blurbench.atomic import write_npz
from blurbench.metrics import fid, transfer
from blurbench.results_schema import COMPARISON_METRICS, PER_IMAGE_FIELDS

N, D = 30, 16


def _write_run(root, method, seed, rng, *, detail=0.5, n=N, nan_image=None, nan_features=False):
    files = {k: root / method / str(seed) / layout.EVAL_FILES[k] for k in ("per_image", "features", "transfer")}
    files["per_image"].parent.mkdir(parents=True, exist_ok=True)
    per = {c: rng.normal(size=n) for c in PER_IMAGE_FIELDS[1:]}
    per.update(image=np.arange(n), hf_recon=rng.uniform(0.5, 1, n), hf_data=rng.uniform(1, 2, n),
               detail_hf=detail + 0.01 * rng.normal(size=n))
    if nan_image is not None:
        per["psnr"][nan_image] = np.nan
    pd.DataFrame(per)[PER_IMAGE_FIELDS].to_csv(files["per_image"], index=False)
    feats = {k: rng.normal(size=(n, D)).astype(np.float32) for k in ("recon", "gen")}
    if nan_features:
        feats["recon"][0, 0] = np.nan
    write_npz(files["features"], **feats)
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    write_npz(files["transfer"], **transfer.cross_spectra(x, x * 0.9).to_arrays())
    return {k: str(v) for k, v in files.items()}


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(0)
    test = rng.normal(size=(N, D))
    stats_path = tmp_path / "fid.npz"
    fid.save_stats(stats_path, test.mean(0), np.cov(test, rowvar=False), N, {"implementation": "test"}, feats=test)
    runs = {"l2": {s: _write_run(tmp_path, "l2", s, rng, detail=0.8) for s in (0, 1)},
            "over": {s: _write_run(tmp_path, "over", s, rng, detail=1.05) for s in (0, 1)},
            "missing_seed": {0: _write_run(tmp_path, "missing_seed", 0, rng)},
            "nan_image": {s: _write_run(tmp_path, "nan_image", s, rng, nan_image=3) for s in (0, 1)},
            "nan_features": {s: _write_run(tmp_path, "nan_features", s, rng, nan_features=True) for s in (0, 1)},
            "other_n": {s: _write_run(tmp_path, "other_n", s, rng, n=N - 2) for s in (0, 1)}}
    rows = comparison.compare_dataset("d", runs, "l2", stats_path, n_boot=400, n_boot_set=400)
    return {(r["method"], r["metric"]): r for r in rows}


def test_every_method_and_metric_has_a_row_and_the_table_builds(dataset):
    methods = {"over", "missing_seed", "nan_image", "nan_features", "other_n"}
    assert set(dataset) == {(m, metric) for m in methods for metric in COMPARISON_METRICS}


def test_edge_cases_give_their_reason_in_their_cell(dataset):
    assert "seed(s) 1 missing" in dataset[("missing_seed", "psnr")]["note"]
    assert np.isfinite(dataset[("missing_seed", "psnr")]["diff"])  # computed on the seed both have
    assert "1 image(s) with a NaN left out" in dataset[("nan_image", "psnr")]["note"]
    assert np.isfinite(dataset[("nan_image", "mse")]["diff"]) and not dataset[("nan_image", "mse")]["note"]
    assert "non-finite Inception features" in dataset[("nan_features", "fid_recon")]["reason"]
    assert np.isfinite(dataset[("nan_features", "fid_gen")]["diff"])  # the other feature set still compares
    assert "not the same images" in dataset[("other_n", "psnr")]["reason"]


def test_detail_cell_is_closeness_to_one_and_agrees_with_its_verdict(dataset):
    """over: detail 1.05 (0.05 from 1) against l2's 0.8 (0.2 from 1): the cell is −|v − 1|
    difference (+0.15), footnoted as crossing 1, and its verdict is 'better', as its sign says."""
    c = dataset[("over", "detail_hf")]
    assert c["diff"] == pytest.approx(0.15, abs=0.01) and c["lo"] > 0
    assert "above 1" in c["note"]
    assert c["verdict_raw"] == "better" and c["verdict"] == "better"


def test_verdicts_are_adjusted_and_diagnostics_get_none(dataset):
    for (method, metric), c in dataset.items():
        if c["reason"]:
            continue
        if metric in ("hfer_recon", "equiv_blur", "prdc_recon_density", "prdc_gen_density"):
            assert c["verdict"] == comparison.NO_VERDICT, (method, metric)
        if c["verdict"] in ("better", "worse"):
            assert c["p_adjusted"] <= 0.05 and c["verdict_raw"] == c["verdict"], (method, metric)
    # PRDC on 30 images (< PRDC_MIN_N) shows its value without a verdict
    assert dataset[("over", "prdc_recon_precision")]["verdict"] == comparison.NO_VERDICT
    assert "no verdict" in dataset[("over", "prdc_recon_precision")]["note"]


def test_each_feature_metric_reads_its_own_feature_set(dataset):
    """PRDC and KID of reconstructions use the reconstruction features, those of samples the samples'
    (a cell reading the other set would still give numbers: only its value can tell)."""
    assert "test images" == dataset[("over", "prdc_recon_recall")]["covers"]
    assert "prior draws and test images" == dataset[("over", "prdc_gen_recall")]["covers"]
    assert dataset[("over", "prdc_recon_recall")]["diff"] != dataset[("over", "prdc_gen_recall")]["diff"] or \
        dataset[("over", "prdc_recon_precision")]["diff"] != dataset[("over", "prdc_gen_precision")]["diff"]
