"""Figures from synthetic per-run artefacts: files exist and are valid PNG/PDF; missing data is n/a."""

import re

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.ndimage import gaussian_filter

from blurbench import figures as F
from blurbench import layout
from blurbench import tables as T
from blurbench.errors import DataError
from blurbench.metrics import transfer

from test_tables import MAIN_ROWS, PIX, row, write_csv

MAIN = {"datasets": ["d1", "d2"], "methods": ["a", "b", "c"]}  # c never ran; b did not train on d2
ABL = {"eps": {"dataset": "d1", "methods": ["a", "b"], "param": "blur.eps", "tag": "eps", "values": [0.5, 1.0]}}


def write_transfer(path, sigma, channels=1, n=8, size=16):
    """transfer.npz of random test images against their ladder blur by σ (reflect, as `baselines`)."""
    x = np.random.default_rng(1).random((n, channels, size, size))
    y = gaussian_filter(x, (0, 0, sigma, sigma), mode="reflect") if sigma else x
    np.savez(path, **transfer.cross_spectra(torch.from_numpy(x), torch.from_numpy(y)).to_arrays())


def make_run(run_dir, channels=1, kernels=True, start_step=30, sigma=1.0):
    rng = np.random.default_rng(0)
    (run_dir / "eval").mkdir(parents=True, exist_ok=True)
    x = rng.integers(0, 256, (4, channels, 8, 8), dtype=np.uint8)
    np.savez(run_dir / "eval" / "examples.npz", inputs=x, recon=x // 2, samples=x // 3)
    f = np.arange(5) / 8
    np.savez(run_dir / "eval" / "spectra.npz", freq=f, data=1 / (f + 0.1) ** 2, recon=1 / (f + 0.1) ** 2.5,
             samples=1 / (f + 0.1) ** 3)
    write_transfer(run_dir / "eval" / "transfer.npz", sigma, channels)
    pd.DataFrame({"step": [10, 20, 30, 30], "loss": [3.0, 2.0, 1.5, 1.4], "recon_nll": [2.5, 1.5, 1.0, 0.9],
                  "kl": [0.5, 0.5, 0.5, 0.5], "seconds": 1.0}).to_csv(run_dir / "train_log.csv", index=False)
    if kernels:
        k = rng.random((8, 5, 3, 3))
        np.savez(run_dir / "probe.npz", kernels=k / k.sum((-1, -2), keepdims=True), steps=10 * np.arange(1, 9),
                 start_step=np.int64(start_step))


def make_untrained(run_dir):
    """What a run that did not train writes: empty npz files and a header-only log."""
    (run_dir / "eval").mkdir(parents=True, exist_ok=True)
    np.savez(run_dir / "eval" / "examples.npz")
    np.savez(run_dir / "eval" / "spectra.npz")
    np.savez(run_dir / "eval" / "transfer.npz")
    np.savez(run_dir / "probe.npz")
    (run_dir / "train_log.csv").write_text("step\n")


@pytest.fixture
def results(tmp_path):
    res = tmp_path / "results"
    make_run(res / "runs" / "d1" / "a" / "seed0", kernels=False)
    make_run(res / "runs" / "d1" / "b" / "seed0", sigma=0.5)
    make_run(res / "runs" / "d2" / "a" / "seed0", channels=3, kernels=False)
    make_untrained(res / "runs" / "d2" / "b" / "seed0")
    rows = MAIN_ROWS + [row("d1", "b", 0, "mse", 0.02, variant="b__eps0.5", eps="0.5", **PIX),
                        row("d1", "b", 1, "mse", 0.03, variant="b__eps0.5", eps="0.5", **PIX)]
    for r in rows:
        r["blur.eps"] = r["blur.eps"] or ("1.0" if r["method"] == "b" else "")
    write_csv(res / "metrics.csv", rows)
    return res


@pytest.fixture
def texts(monkeypatch):
    """Every text drawn in each saved figure, keyed by the output stem."""
    import matplotlib.text

    seen = {}
    original = F.save_figure

    def capture(fig, out_base):
        seen[out_base.name] = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
        return original(fig, out_base)

    monkeypatch.setattr(F, "save_figure", capture)
    return seen


def flat(lines):
    """Texts with wrapped lines joined, to compare with one-line messages."""
    return [t.replace("\n", " ") for t in lines]


def assert_valid(paths):
    for p in paths:
        data = p.read_bytes()
        assert len(data) > 1000, p
        magic = b"\x89PNG\r\n\x1a\n" if p.suffix == ".png" else b"%PDF"
        assert data.startswith(magic), p
        assert not list(p.parent.glob(f".{p.name}.*")), "temporary file left behind"


def test_write_figures_every_file_valid(results, tmp_path, texts):
    out = tmp_path / "figures"
    files = {d: {m: {"examples": layout.eval_file(d, m, 0, "examples", results),
                     "spectra": layout.eval_file(d, m, 0, "spectra", results),
                     "transfer": layout.eval_file(d, m, 0, "transfer", results),
                     "train_log": layout.run_file(d, m, 0, "train_log", results),
                     **({"probe": layout.run_file(d, m, 0, "probe", results)} if m == "b" else {})}
                 for m in MAIN["methods"]} for d in MAIN["datasets"]}
    paths = F.write_figures(files, results / "metrics.csv", ABL, out)
    names = F.figure_names(MAIN, ABL, ["b"])
    assert names == ["qualitative_d1", "qualitative_d2", "kernels_d1_b", "kernels_d2_b", "ablation_eps",
                     "spectra", "transfer_d1", "transfer_d2", "training_d1", "training_d2"]
    assert sorted(p.name for p in paths) == sorted(f"{n}.{e}" for n in names for e in ("png", "pdf"))
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)
    assert_valid(paths)
    # missing and untrained methods are shown as n/a, not dropped and not a crash
    na = "n/a: no examples.npz data (run missing or not trained)"
    assert flat(texts["qualitative_d1"]).count(na) == 2  # c: recon and samples rows
    assert flat(texts["qualitative_d2"]).count(na) == 4  # b (empty npz) and c
    assert "n/a: no probe.npz data (run missing or not trained)" in flat(texts["kernels_d2_b"])
    assert {"b: n/a", "c: n/a"} <= set(texts["spectra"])
    assert {"b: n/a", "c: n/a"} <= set(texts["training_d2"])
    assert texts["transfer_d2"].count("b: n/a") == 2 and texts["transfer_d2"].count("c: n/a") == 2
    assert any(t.startswith("a: σ = ") for t in texts["transfer_d1"])
    assert {f"σ={s:g}" for s in F.LADDER_SIGMAS} <= set(texts["transfer_d1"])  # no ladder rows: the default
    assert "n/a: no results" in texts["ablation_eps"]  # e.g. the PSNR panel


def test_qualitative_grid_rows(tmp_path, texts, results):
    runs = results / "runs" / "d1"
    ex = {m: runs / m / "seed0" / "eval" / "examples.npz" for m in ("a", "b")}
    ex["c"] = None
    assert_valid(F.qualitative_grid("d1", ex, tmp_path / "q"))
    labels = [t for t in texts["q"] if t.startswith(("input", "recon", "samples"))]
    assert labels == ["input", "recon: a", "recon: b", "recon: c", "samples: a", "samples: b", "samples: c"]


def test_qualitative_grid_shows_differing_inputs(tmp_path, texts):
    for m, seed in (("a", 0), ("b", 1)):
        x = np.random.default_rng(seed).integers(0, 256, (2, 3, 8, 8), dtype=np.uint8)
        np.savez(tmp_path / f"{m}.npz", inputs=x, recon=x, samples=x)
    F.qualitative_grid("d", {"a": tmp_path / "a.npz", "b": tmp_path / "b.npz"}, tmp_path / "q")
    assert "input (b)" in texts["q"]


def test_kernel_evolution_marks_switch(tmp_path, texts, results):
    probe = results / "runs" / "d1" / "b" / "seed0" / "probe.npz"
    assert_valid(F.kernel_evolution(probe, tmp_path / "k", title="t", n_columns=3))
    titles = texts["k"]
    # log points 0, 4, 7 evenly spaced (steps 10, 50, 80), plus 3: the first after the switch at step 30
    assert "step 40\nblur on" in titles and "step 10\nL2 warm-up" in titles
    assert "step 50" in titles and "step 80" in titles
    assert any("blur term on from step 30" in t for t in titles)
    assert sum(t.startswith("probe ") for t in titles) == 4


def test_step_columns_include_switch():
    steps = np.arange(1, 21)  # a probe after each of 20 steps
    assert F._step_columns(steps, 10, 3) == [0, 10, 19]
    assert F._step_columns(steps, 7, 3) == [0, 7, 10, 19]
    assert F._step_columns(steps, 50, 3) == [0, 10, 19]  # never switched on: nothing to add
    assert F._step_columns(steps, None, 2) == [0, 19]


def test_kernel_evolution_without_start_step(tmp_path, texts):
    np.savez(tmp_path / "p.npz", kernels=np.ones((2, 1, 3, 3)) / 9, steps=np.arange(2))
    F.kernel_evolution(tmp_path / "p.npz", tmp_path / "k", title="t")
    assert any("start step of the blur term not logged" in t for t in texts["k"])


def test_malformed_files_raise_named_errors(tmp_path):
    np.savez(tmp_path / "ex.npz", inputs=np.zeros((1, 1, 4, 4), np.uint8))
    with pytest.raises(DataError, match=r"ex\.npz lacks the array\(s\) recon, samples"):
        F.qualitative_grid("d", {"a": tmp_path / "ex.npz"}, tmp_path / "q")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"bad\.npz is not a readable"):
        F.power_spectra({"d": {"a": tmp_path / "bad.npz"}}, tmp_path / "s", ["a"])
    np.savez(tmp_path / "k.npz", kernels=np.ones((2, 3, 3)), steps=np.arange(2))
    with pytest.raises(DataError, match=r"expected kernels \(E, P, s, s\)"):
        F.kernel_evolution(tmp_path / "k.npz", tmp_path / "k", title="t")
    (tmp_path / "log.csv").write_text("epoch,loss\n0,1.0\n")
    with pytest.raises(DataError, match="lacks the column 'step'"):
        F.training_curves("d", {"a": tmp_path / "log.csv"}, tmp_path / "t")


def test_all_missing_gives_na_figures(tmp_path, texts):
    assert_valid(F.power_spectra({"d": {"a": None}}, tmp_path / "s", ["a"]))
    assert_valid(F.training_curves("d", {"a": tmp_path / "none.csv"}, tmp_path / "t"))
    assert_valid(F.kernel_evolution(None, tmp_path / "k", title="t"))
    assert "n/a: no spectra.npz data (run missing or not trained) for every method" in flat(texts["s"])
    assert "n/a: no train_log.csv data (run missing or not trained) for every method" in flat(texts["t"])
    assert_valid(F.transfer_figure("d", {"a": None, "b": tmp_path / "none.npz"}, tmp_path / "h"))
    assert flat(texts["h"]).count("n/a: no transfer.npz data (run missing or not trained) for every method") == 2


def test_transfer_figure_fits_ladder_blur(tmp_path, texts):
    """A "method" that is the test images blurred by σ = 1 (reflect, as the ladder) reads σ = 1 ± 5 %
    in the legend, σ = 2 likewise; a missing or empty transfer.npz is an n/a entry in both panels."""
    for sigma in (1, 2):
        write_transfer(tmp_path / f"blur{sigma}.npz", sigma, size=32)
    np.savez(tmp_path / "untrained.npz")
    runs = {"blur1": tmp_path / "blur1.npz", "gone": None, "blur2": tmp_path / "blur2.npz",
            "untrained": tmp_path / "untrained.npz"}
    assert_valid(F.transfer_figure("d", runs, tmp_path / "h", ladder=[1.0, 3.0]))
    fitted = {m: float(s) for t in texts["h"] for m, s in re.findall(r"^(\w+): σ = (-?[\d.]+) px, residual", t)}
    assert fitted == pytest.approx({"blur1": 1.0, "blur2": 2.0}, rel=0.05)
    assert texts["h"].count("gone: n/a") == 2 and texts["h"].count("untrained: n/a") == 2
    assert {"σ=1", "σ=3", "data"} <= set(texts["h"])


def test_ladder_sigmas_from_metrics(tmp_path):
    rows = [row("d1", "baseline", 0, "mse", 0.01, variant=v, **PIX) for v in ("mean_image", "blur_sigma2",
                                                                              "blur_sigma0.5")]
    df = T.load_metrics(write_csv(tmp_path / "m.csv", MAIN_ROWS + rows))
    assert F.ladder_sigmas(df, "d1") == [0.5, 2.0]
    assert F.ladder_sigmas(df, "d2") == list(F.LADDER_SIGMAS)


def test_sr_qualitative_rows_share_one_scale(tmp_path, monkeypatch):
    """LR (nearest ×4), A⁺y, each method, HR, top to bottom; a missing method is an n/a row."""
    import matplotlib.image
    import matplotlib.text

    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (3, 1, 16, 16), dtype=np.uint8)
    lr = rng.integers(0, 256, (3, 1, 4, 4), dtype=np.uint8)
    for m in ("mse", "aff_mse"):
        np.savez(tmp_path / f"{m}.npz", inputs=hr, recon=hr // 2, lr_pinv=hr // 3, lr=lr)
    seen = {}

    def capture(fig, out_base):
        seen["labels"] = [ax.get_ylabel() for ax in fig.axes]
        seen["images"] = {ax.get_ylabel(): ax.findobj(matplotlib.image.AxesImage)[0].get_array()
                          for ax in fig.axes if ax.findobj(matplotlib.image.AxesImage)}
        seen["texts"] = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
        return []

    monkeypatch.setattr(F, "save_figure", capture)
    F.sr_qualitative("shapes64", {"mse": tmp_path / "mse.npz", "aff_mse": tmp_path / "aff_mse.npz",
                                  "aff_gan": None}, tmp_path / "q")
    assert seen["labels"] == ["LR y (×4 nearest)", "A⁺y", "mse", "aff_mse", "aff_gan", "HR"]
    assert np.array_equal(seen["images"]["LR y (×4 nearest)"], F._strip(lr.repeat(4, -1).repeat(4, -2)))
    assert np.array_equal(seen["images"]["A⁺y"], F._strip(hr // 3))
    assert np.array_equal(seen["images"]["aff_mse"], F._strip(hr // 2))
    assert np.array_equal(seen["images"]["HR"], F._strip(hr))
    assert "n/a: no examples.npz data (run missing or not trained)" in "".join(seen["texts"]).replace("\n", " ")


def test_sr_figure_names_and_files(tmp_path, texts):
    assert F.sr_figure_names({"datasets": ["shapes64", "mri64"]}) == ["qualitative_sr_shapes64", "qualitative_sr_mri64"]
    assert F.sr_figure_names(None) == []
    x = np.zeros((2, 1, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "ex.npz", inputs=x, recon=x, lr_pinv=x, lr=x[:, :, :2, :2])
    paths = F.write_sr_figures({"d": {"mse": str(tmp_path / "ex.npz")}}, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["qualitative_sr_d.pdf", "qualitative_sr_d.png"]
    assert_valid(paths)
