"""A tiny end-to-end run of the real workflow: every table row exists and every number is finite."""

import math

import pandas as pd
import pytest

from workflow_helpers import TINY, snakemake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("e2e")
    result = snakemake(workdir, "--cores", "2", "all", config=TINY)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir / "results"


def test_metrics_csv_is_tidy_and_finite(run):
    df = pd.read_csv(run / "metrics.csv", keep_default_na=False)
    variants = {"l2", "perceptual", "focal_frequency", "blur_per_image", "blur_per_image__eps0.5"}
    assert set(df["variant"]) == variants
    assert len(df) == len(variants) * 8  # one row per run and metric
    ok = df[df["status"] == "ok"]
    assert all(math.isfinite(float(v)) for v in ok["value"])
    for variant in variants - {"perceptual"}:
        got = set(ok[ok["variant"] == variant]["metric"])
        assert {"mse", "psnr", "ssim", "fid_recon", "fid_gen", "hfer_recon", "hfer_gen"} <= got
    assert (ok["n"] > 0).all() and set(ok[ok["metric"] == "fid_recon"]["n"]) == {16}
    assert ok[ok["metric"] == "fid_recon"]["weights_source"].str.len().min() > 0


def test_perceptual_and_lpips_are_reported_unavailable_with_the_reason(run):
    df = pd.read_csv(run / "metrics.csv", keep_default_na=False)
    perceptual = df[df["variant"] == "perceptual"]
    assert (perceptual["status"] == "unavailable").all()
    assert perceptual["reason"].str.contains("vgg16").all()
    assert (perceptual["value"] == "").all()
    lpips = df[(df["metric"] == "lpips") & (df["variant"] != "perceptual")]
    assert (lpips["status"] == "unavailable").all() and lpips["reason"].str.contains("alexnet").all()


def test_reconstruction_table_has_a_row_per_method_and_na_with_reasons(run):
    md = (run / "tables" / "reconstruction.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| deadleaves")]
    assert [r.split("|")[2].strip() for r in rows] == ["l2", "perceptual", "focal_frequency", "blur_per_image"]
    assert "n/a" in md and "vgg16" in md
    assert "nan" not in md and "inf" not in md
    for name in ("generation", "ablation_eps"):
        assert (run / "tables" / f"{name}.tex").read_text().count("\\toprule") == 1


def test_figures_exist(run):
    pngs = sorted(p.name for p in (run / "figures").glob("*.png"))
    assert any(n.startswith("kernels_") for n in pngs) and any(n.startswith("qualitative_") for n in pngs)
    for p in (run / "figures").glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- the HTML report opens in a browser (headless Chromium; opt out with BLURBENCH_BROWSER_TESTS=0)
import os  # noqa: E402
import re  # noqa: E402

from report_browser import ensure_chromium, render  # noqa: E402
from workflow_helpers import REPO  # noqa: E402


def _caption_title(rst_path):
    """The bold title a caption starts with, e.g. "Reconstruction table" ('**...**', no full stop)."""
    match = re.search(r"\*\*(.+?)\*\*", rst_path.read_text())
    assert match, f"{rst_path} has no **bold** title"
    return match.group(1).rstrip(".").strip()


@pytest.mark.skipif(os.environ.get("BLURBENCH_BROWSER_TESTS") == "0",
                    reason="browser tests switched off with BLURBENCH_BROWSER_TESTS=0")
def test_report_opens_in_headless_chromium(run):
    ensure_chromium()  # fails with the reason when Chromium is missing and cannot be installed
    workdir = run.parent
    report = run / "report.html"
    result = snakemake(workdir, "--report", str(report), config=TINY)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    page = render(report)

    assert page["errors"] == []
    assert set(page["categories"]) == {"Tables", "Figures"}
    shown = {r["path"].rsplit("/", 1)[-1]: r for r in page["results"]}
    # every table is shown with its caption and renders as a table
    tables = [r for r in page["results"] if r["category"] == "Tables"]
    assert sorted(r["path"].rsplit("/", 1)[-1] for r in tables) == \
        sorted(p.name for p in (run / "tables").glob("*.html"))
    titles = [_caption_title(p) for p in sorted((REPO / "workflow" / "report").glob("table_*.rst"))]
    assert titles, "no table captions in workflow/report/"
    for title in titles:
        assert any(title in (r["caption"] or "") for r in tables), f"caption {title!r} not shown"
    assert all(r["view"] == "iframe" and r["tables"] >= 1 for r in tables)
    for method in TINY["experiments"]["main"]["methods"]:
        assert method in shown["reconstruction.html"]["text"]
    # every figure marked for the report is shown with a caption and its image decodes
    pngs = sorted(p.name for p in (run / "figures").glob("*.png"))
    images = [r for r in page["results"] if r["view"] == "img"]
    assert page["images"] == len(images) == len(pngs) > 0
    assert sorted(r["path"].rsplit("/", 1)[-1] for r in images) == pngs
    assert all(r["complete"] and r["width"] > 0 and r["height"] > 0 for r in images)
    assert page["broken_images"] == 0 and page["page_broken_images"] == 0
    assert all(r["caption"] for r in page["results"])
