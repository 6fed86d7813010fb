"""Trivial baselines and the blur ladder: closed forms, the equivalent blur, the adequacy check."""

import csv

import numpy as np
import pandas as pd
import pytest
import torch

from blurbench import baselines
from blurbench.metrics import spectra
from blurbench.tables import main_table
from blurbench.tables.summaries import adequacy, load_metrics

SPEC = {"dataset": "toy", "resolution": 16, "channels": 3, "blur_ladder": [0.5, 1.0, 2.0, 4.0],
        "n_fid": 8, "fid": False, "lpips": False, "hfer_cutoff": 0.5, "n_examples": 4, "batch_size": 8}


@pytest.fixture
def data_dir(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "train.npy", rng.integers(0, 256, (20, 3, 16, 16), dtype=np.uint8))
    np.save(tmp_path / "test.npy", rng.integers(0, 256, (6, 3, 16, 16), dtype=np.uint8))
    return tmp_path


def rows_by(rows):
    return {(r["variant"], r["metric"]): float(r["value"]) for r in rows if r["status"] == "ok"}


def test_mean_image_and_mean_colour_have_their_closed_forms(data_dir, tmp_path):
    rows = rows_by(baselines.compute(SPEC, data_dir, tmp_path / "b.csv", device="cpu"))
    train = np.load(data_dir / "train.npy").astype(np.float64) / 255
    test = np.load(data_dir / "test.npy").astype(np.float64) / 255
    mse_image = ((test - train.mean(0)) ** 2).mean((1, 2, 3))
    mse_colour = test.var((2, 3)).mean(1)  # error of the mean colour = the per-channel variance
    assert rows[("mean_image", "mse")] == pytest.approx(mse_image.mean(), rel=1e-5)
    assert rows[("mean_image", "psnr")] == pytest.approx(np.mean(10 * np.log10(1 / mse_image)), rel=1e-5)
    assert rows[("mean_colour", "mse")] == pytest.approx(mse_colour.mean(), rel=1e-5)
    assert rows[("mean_colour", "hfer_recon")] == pytest.approx(0.0, abs=1e-12)  # flat: no high band
    with open(tmp_path / "b.csv") as f:
        assert {r["method"] for r in csv.DictReader(f)} == {"baseline"}


def test_a_dataset_only_sr_uses_gets_the_sr_baselines_alone(data_dir, tmp_path):
    spec = {**SPEC, "blur_ladder": [], "trivial": False,
            "sr_operator": {"operator": "avgpool", "factor": 4, "sigma": None}}
    rows = rows_by(baselines.compute(spec, data_dir, tmp_path / "b.csv", device="cpu"))
    assert {variant for variant, _ in rows} == {"sr_pinv", "sr_bicubic"}


def test_a_gaussian_blur_leaves_a_constant_image_unchanged_and_lowers_hfer():
    flat = torch.full((2, 3, 16, 16), 0.3)
    assert torch.allclose(baselines.gaussian_blur(flat, 2.0), flat, atol=1e-6)
    x = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    h = spectra.high_band_energy(x)
    ladder = [spectra.hfer_from_energies(spectra.high_band_energy(baselines.gaussian_blur(x, s)), h)
              for s in (0.5, 1, 2)]
    assert 1 > ladder[0] > ladder[1] > ladder[2] > 0


def test_hfer_from_per_image_energies_equals_hfer_of_mean_spectra():
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(5, 3, 16, 16, generator=g), torch.rand(5, 3, 16, 16, generator=g) * 0.5
    expected = spectra.hfer(spectra.mean_power_spectrum(y), spectra.mean_power_spectrum(x), 0.5)
    assert spectra.hfer_from_energies(spectra.high_band_energy(y), spectra.high_band_energy(x)) == pytest.approx(expected, rel=1e-12)


def test_equivalent_blur_of_the_ladders_own_rows_is_their_sigma(data_dir, tmp_path):
    """The MTF fit, through the baselines' own scoring, puts each ladder row at its σ (±5 %, the
    tolerance tests/test_transfer.py states up to σ = 2), and the identity near 0."""
    rows = rows_by(baselines.compute(SPEC, data_dir, tmp_path / "b.csv", device="cpu"))
    assert rows[("blur_sigma1", "equiv_blur")] == pytest.approx(1.0, rel=0.05)
    assert rows[("blur_sigma2", "equiv_blur")] == pytest.approx(2.0, rel=0.05)
    # detail + added = HFER for every baseline row (the transfer split of the same band)
    for name in ("mean_image", "mean_colour", "blur_sigma1", "blur_sigma2"):
        assert rows[(name, "detail_hf")] + rows[(name, "added_hf")] == pytest.approx(rows[(name, "hfer_recon")], rel=1e-6)


def metrics_csv(path, psnr_by_run):
    base = {"split": "test", "status": "ok", "reason": "", "n": 8, "implementation": "x", "version": "1",
            "feature_extractor": "", "weights_source": "", "note": ""}
    rows = [dict(base, run_id="d/baseline/mean_image", dataset="d", method="baseline", variant="mean_image",
                 seed="", metric="psnr", value=12.0),
            dict(base, run_id="d/baseline/mean_colour", dataset="d", method="baseline", variant="mean_colour",
                 seed="", metric="psnr", value=14.0),
            dict(base, run_id="d/baseline/blur_sigma1", dataset="d", method="baseline", variant="blur_sigma1",
                 seed="", metric="psnr", value=20.0)]
    rows += [dict(base, run_id=f"d/{m}/seed0", dataset="d", method=m, variant=m, seed=0, metric="psnr", value=v)
             for m, v in psnr_by_run.items()]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_an_undertrained_run_gets_a_footnote_with_both_numbers_and_a_trained_one_none(tmp_path):
    path = metrics_csv(tmp_path / "m.csv", {"l2": 18.5, "blur": 15.0})
    df = load_metrics(path)
    table = adequacy(df, 3.0).set_index("method")
    assert not table.loc["l2", "undertrained"] and table.loc["l2", "margin_db"] == pytest.approx(4.5)
    assert table.loc["blur", "undertrained"] and table.loc["blur", "best_baseline"] == "mean_colour"
    md, _ = main_table(df, {"datasets": ["d"], "methods": ["l2", "blur"]}, ["psnr"], "r", "R", min_gain_db=3.0)
    text = {row[1].text: row for row in md.rows}
    assert not text["l2"][2].notes
    note = md.footnotes[text["blur"][2].notes[0] - 1]
    assert "undertrained" in note and "15.00 dB" in note and "+1.00 dB over mean colour (14.00 dB)" in note
    assert [row[1].text for row in md.rows][2:] == ["baseline: mean_image", "baseline: mean_colour",
                                                    "baseline: blur_sigma1"]
    assert not any(c.best for row in md.rows[2:] for c in row)  # baselines are never "best"
