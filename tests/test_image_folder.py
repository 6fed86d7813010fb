"""image_folder: any folder of images as a dataset, on folders generated here (mixed formats, sizes, modes)."""

import copy
import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from blurbench import plugins
from blurbench.data import prepare
from blurbench.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def image_folder():
    return plugins.load_dataset("image_folder")


def _params(module, root, **overrides):
    return {**copy.deepcopy(module.PARAMS), "root": str(root), **overrides}


def _rgb(size, seed):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _write_photos(root: Path) -> None:
    """PNG/JPEG/BMP/TIFF of mixed sizes, nested folders, a grey, an RGBA and a palette image, and non-data."""
    (root / "a").mkdir(parents=True)
    (root / "b" / "nested" / "deep").mkdir(parents=True)
    _rgb((40, 30), 0).save(root / "a" / "wide.png")
    _rgb((50, 70), 1).save(root / "a" / "tall.jpg", quality=90)
    _rgb((64, 48), 2).save(root / "b" / "nested" / "deep" / "upper.JPG")
    _rgb((33, 33), 3).save(root / "b" / "square.bmp")
    _rgb((20, 36), 4).save(root / "b" / "nested" / "scan.tif")
    Image.fromarray(np.full((25, 45), 90, dtype=np.uint8)).save(root / "grey.png")
    rgba = np.zeros((64, 64, 4), dtype=np.uint8)
    rgba[:, 32:] = (200, 0, 0, 255)  # left half fully transparent black, right half opaque red
    Image.fromarray(rgba).save(root / "rgba.png")
    _rgb((30, 30), 5).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(root / "palette.png")
    (root / "notes.txt").write_text("not an image")
    (root / "._wide.png").write_bytes(b"macOS resource fork, not a PNG")


@pytest.fixture
def photos(tmp_path):
    root = tmp_path / "photos"
    _write_photos(root)
    return root


def _truncated_jpeg(path: Path) -> None:
    _rgb((64, 64), 9).save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _arrays(module, params, resolution=32):
    return {side: np.stack(list(split.images)) for side, split in module.build(params, resolution).items()}


# ---------------------------------------------------------------- files, conversions, shapes

def test_prepare_writes_uint8_chw_of_every_image_and_records_conversions(image_folder, photos, tmp_path):
    meta = prepare("image_folder", _params(image_folder, photos, test_fraction=0.25), 32, tmp_path / "out")
    train, test = np.load(tmp_path / "out" / "train.npy"), np.load(tmp_path / "out" / "test.npy")
    assert train.dtype == test.dtype == np.uint8
    assert train.shape == (5, 3, 32, 32) and test.shape == (2, 3, 32, 32)  # 6 - 1 held out (monitor)
    info = json.loads((tmp_path / "out" / "meta.json").read_text())["provenance"]
    used = sorted(info["files"]["train"] + info["files"]["test"])
    assert used == ["a/tall.jpg", "a/wide.png", "b/nested/deep/upper.JPG", "b/nested/scan.tif", "b/square.bmp",
                    "grey.png", "palette.png", "rgba.png"]   # no .txt, no dot-file; upper-case .JPG found
    assert info["conversions"] == {"L -> RGB": 1, "P -> RGB": 1, "RGBA -> RGB (alpha composited on white)": 1}
    assert info["upsampled"] == 4                          # squares of 30, 20, 25 and 30 px at 32
    assert meta["counts"] == {"train": 5, "test": 2, "monitor": 1}


def test_grey_output_has_one_channel(image_folder, photos, tmp_path):
    prepare("image_folder", _params(image_folder, photos, channels=1), 16, tmp_path / "grey")
    train = np.load(tmp_path / "grey" / "train.npy")
    assert train.shape[1:] == (1, 16, 16) and train.dtype == np.uint8


def test_transparent_pixels_become_white(image_folder, photos):
    rgb = image_folder.load_image(photos / "rgba.png", _params(image_folder, photos), 32)
    grey = image_folder.load_image(photos / "rgba.png", _params(image_folder, photos, channels=1), 32)
    assert rgb.shape == (3, 32, 32) and grey.shape == (1, 32, 32)
    assert (rgb[:, :, :12] == 255).all() and (grey[:, :, :12] == 255).all()  # fully transparent -> white
    assert (rgb[0, :, 20:] == 200).all() and (rgb[1:, :, 20:] == 0).all()  # opaque red unchanged
    assert (grey[0, :, 20:] == 60).all()                                     # its ITU-R 601 luma


def test_fit_pad_keeps_everything_center_crop_cuts(image_folder, tmp_path):
    Image.new("L", (64, 32), 255).save(tmp_path / "white.png")
    params = _params(image_folder, tmp_path, channels=1)
    cropped = image_folder.load_image(tmp_path / "white.png", params, 16)[0]
    padded = image_folder.load_image(tmp_path / "white.png", {**params, "fit": "pad"}, 16)[0]
    assert (cropped == 255).all()
    assert padded[:3].max() <= 2 and padded[-3:].max() <= 2   # black bands (Lanczos rings by a grey level)
    assert padded[6:10].min() >= 253


def test_sixteen_bit_grey_is_scaled_not_clipped(image_folder, tmp_path):
    Image.fromarray(np.full((16, 16), 257 * 100, dtype=np.uint16)).save(tmp_path / "deep.png")
    assert image_folder.check_file(tmp_path / "deep.png").mode.startswith("I;16")
    image = image_folder.load_image(tmp_path / "deep.png", _params(image_folder, tmp_path, channels=1), 8)
    assert (image == 100).all()


def test_exif_orientation_is_applied(image_folder, tmp_path):
    image = _rgb((40, 20), 0)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    image.save(tmp_path / "phone.jpg", exif=exif)
    assert image_folder.check_file(tmp_path / "phone.jpg").size == (20, 40)


# ---------------------------------------------------------------- splits

def _write_patients(root: Path, n_patients=6, per_patient=3) -> None:
    for p in range(n_patients):
        for k in range(per_patient):
            (root / f"patient{p:02d}").mkdir(parents=True, exist_ok=True)
            _rgb((24, 24), 10 * p + k).save(root / f"patient{p:02d}" / f"scan_{k}.png")


def test_group_pattern_keeps_each_group_on_one_side(image_folder, tmp_path):
    _write_patients(tmp_path / "p")
    for seed in range(5):
        files = image_folder.describe(_params(image_folder, tmp_path / "p", group_pattern=r"patient(\d+)/",
                                              test_fraction=0.34, seed=seed), 16)["files"]
        groups = {side: {f.split("/")[0] for f in names} for side, names in files.items()}
        assert len(groups["test"]) == 2 and len(groups["train"]) == 4
        assert not groups["train"] & groups["test"]
        assert len(files["train"]) + len(files["test"]) == 18


def test_split_does_not_depend_on_listing_order(image_folder, photos, monkeypatch):
    params = _params(image_folder, photos, test_fraction=0.25)
    before, described = _arrays(image_folder, params), image_folder.describe(params, 32)
    listed = []
    original = Path.glob

    def shuffled(self, pattern):
        paths = list(original(self, pattern))[::-1]
        random.Random(1).shuffle(paths)
        listed.append(paths)
        return iter(paths)

    monkeypatch.setattr(Path, "glob", shuffled)
    after = _arrays(image_folder, params)
    assert listed and listed[0] != sorted(listed[0])      # the file system order really was scrambled
    assert image_folder.describe(params, 32) == described
    for side in ("train", "test"):
        np.testing.assert_array_equal(before[side], after[side])


def test_caps_take_a_seeded_subset(image_folder, tmp_path):
    _write_patients(tmp_path / "p", n_patients=10, per_patient=1)
    params = _params(image_folder, tmp_path / "p", n_train=3, n_test=1)
    files = image_folder.describe(params, 16)["files"]
    assert len(files["train"]) == 3 and len(files["test"]) == 1
    assert {len(a) for a in _arrays(image_folder, params, 16).values()} == {3, 1}
    picks = {tuple(image_folder.describe({**params, "seed": s}, 16)["files"]["train"]) for s in range(5)}
    assert len(picks) > 1


def test_split_file_assigns_sides_and_leaves_unlisted_files_out(image_folder, photos, tmp_path):
    split = tmp_path / "split.txt"
    split.write_text("a/wide.png train\nb/square.bmp   train\n\ngrey.png test\n")
    info = image_folder.describe(_params(image_folder, photos, split_file=str(split)), 32)
    assert info["files"]["test"] == ["grey.png"]
    assert sorted(info["files"]["train"]) == ["a/wide.png", "b/square.bmp"]
    assert info["not_in_split_file"] == 5


def test_split_file_may_not_split_a_group(image_folder, tmp_path):
    _write_patients(tmp_path / "p", n_patients=2, per_patient=2)
    split = tmp_path / "split.txt"
    split.write_text("patient00/scan_0.png train\npatient00/scan_1.png test\npatient01/scan_0.png test\n")
    with pytest.raises(DataError, match="group '00'.*both sides"):
        image_folder.validate(_params(image_folder, tmp_path / "p", split_file=str(split),
                                      group_pattern=r"patient(\d+)"), 16)


# ---------------------------------------------------------------- bad input

def test_truncated_file_is_named(image_folder, photos, tmp_path):
    _truncated_jpeg(photos / "b" / "broken.jpg")
    image_folder.validate(_params(image_folder, photos), 32)  # cheap: decodes nothing
    with pytest.raises(DataError, match=r"b/broken\.jpg.*truncated") as err:
        prepare("image_folder", _params(image_folder, photos), 32, tmp_path / "out")
    assert "skip_unreadable" in str(err.value)
    assert not (tmp_path / "out" / "train.npy").exists()


def test_skip_unreadable_counts_and_names_the_skipped_file(image_folder, photos, tmp_path):
    _truncated_jpeg(photos / "b" / "broken.jpg")
    meta = prepare("image_folder", _params(image_folder, photos, skip_unreadable=True), 32, tmp_path / "out")
    unreadable = meta["provenance"]["unreadable"]
    assert unreadable["count"] == 1 and unreadable["skipped"] is True
    assert list(unreadable["files"]) == ["b/broken.jpg"] and "truncated" in unreadable["files"]["b/broken.jpg"]
    assert sum(meta["counts"].values()) == 8


def test_empty_match_names_root_and_pattern(image_folder, tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("no images")
    with pytest.raises(DataError, match=r"empty.*params\.pattern null \(every \.png"):
        image_folder.validate(_params(image_folder, tmp_path / "empty"), 32)
    with pytest.raises(DataError, match=r"empty.*params\.pattern 'scans/\*\*/\*\.png'"):
        image_folder.validate(_params(image_folder, tmp_path / "empty", pattern="scans/**/*.png"), 32)


def test_missing_root_is_named(image_folder, tmp_path):
    with pytest.raises(DataError, match="nowhere.*does not exist"):
        image_folder.validate(_params(image_folder, tmp_path / "nowhere"), 32)
    with pytest.raises(DataError, match="params.root is not set"):
        image_folder.validate(copy.deepcopy(image_folder.PARAMS), 32)


@pytest.mark.parametrize("content, message", [
    ("a/wide.png train\na/missing.png test\n", r"line 2: .*a/missing\.png does not exist"),
    ("a/wide.png train\nnotes.txt test\n", r"line 2: .*notes\.txt does not match params\.pattern"),
    ("a/wide.png train\ngrey.png valid\n", r"line 2: 'grey.png valid'; expected '<relative path> <train\|test>'"),
    ("a/wide.png\n", r"line 1: 'a/wide.png'; expected"),
    ("a/wide.png train\na/wide.png test\n", "listed twice"),
    ("a/wide.png train\n", "lists no test file"),
])
def test_split_file_errors_name_the_line(image_folder, photos, tmp_path, content, message):
    split = tmp_path / "split.txt"
    split.write_text(content)
    with pytest.raises(DataError, match=message):
        image_folder.validate(_params(image_folder, photos, split_file=str(split)), 32)


def test_missing_split_file_is_named(image_folder, photos, tmp_path):
    with pytest.raises(DataError, match="no_such_split.txt does not exist"):
        image_folder.validate(_params(image_folder, photos, split_file=str(tmp_path / "no_such_split.txt")), 32)


@pytest.mark.parametrize("override, resolution, key", [
    ({"fit": "stretch"}, 32, "params.fit"),
    ({"channels": 2}, 32, "params.channels"),
    ({"channels": True}, 32, "params.channels"),
    ({"channels": 3.0}, 32, "params.channels"),
    ({"test_fraction": 1.0}, 32, "params.test_fraction"),
    ({"test_fraction": "0.2"}, 32, "params.test_fraction"),
    ({"group_pattern": "patient(\\d+"}, 32, "params.group_pattern.*not a valid regular expression"),
    ({"group_pattern": "scan_(\\d)"}, 32, "params.group_pattern.*finds no group in 'a/tall.jpg'"),
    ({"pattern": "../*.png"}, 32, "params.pattern"),
    ({"n_train": 0}, 32, "params.n_train"),
    ({"skip_unreadable": "yes"}, 32, "params.skip_unreadable"),
    ({}, 48, "resolution 48"),
])
def test_validate_names_the_key(image_folder, photos, override, resolution, key):
    with pytest.raises(ConfigError, match=key):
        image_folder.validate(_params(image_folder, photos, **override), resolution)


def test_too_few_groups_to_split(image_folder, tmp_path):
    _rgb((16, 16), 0).save(tmp_path / "only.png")
    with pytest.raises(DataError, match="1 image group.*at least 2"):
        image_folder.validate(_params(image_folder, tmp_path), 16)


# ---------------------------------------------------------------- the real workflow on a folder

@pytest.mark.slow
def test_workflow_runs_on_an_image_folder(tmp_path):
    import pandas as pd

    from workflow_helpers import TINY, snakemake

    root = tmp_path / "my images"
    for scene in range(12):
        (root / f"scene{scene:02d}").mkdir(parents=True)
        for shot in range(4):
            image = _rgb((40 + 3 * shot, 36 + 5 * scene), 4 * scene + shot)
            image.save(root / f"scene{scene:02d}" / (f"shot{shot}.jpg" if shot % 2 else f"shot{shot}.png"))
    config = {**copy.deepcopy(TINY),
              "train": {**TINY["train"], "batch_size": 16},
              "datasets": {"mine": {"plugin": "image_folder", "resolution": 32,
                                    "params": {"root": str(root), "group_pattern": "scene\\d+",
                                               "test_fraction": 0.25}}},
              "methods": {"l2": {}, "blur_fixed": {"plugin": "blur_wiener",
                                                   "params": {"kernel": {"mode": "fixed", "size": 3}}}},
              "experiments": {"main": {"datasets": ["mine"], "methods": ["l2", "blur_fixed"]}},
              "evaluate": {"fid": False, "lpips": False, "n_examples": 4, "batch_size": 16}}
    result = snakemake(tmp_path / "work", "--cores", "2", "all_tables", config=config)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = tmp_path / "work" / "results"
    assert np.load(results / "data" / "mine" / "train.npy").shape == (32, 3, 32, 32)  # 36 - 4 (monitor)
    assert np.load(results / "data" / "mine" / "test.npy").shape == (12, 3, 32, 32)
    metrics = pd.read_csv(results / "metrics.csv", keep_default_na=False)
    psnr = metrics[(metrics["metric"] == "psnr") & (metrics["status"] == "ok")]
    assert set(psnr["dataset"]) == {"mine"} and {"l2", "blur_fixed"} <= set(psnr["variant"])
    assert np.isfinite(psnr["value"].astype(float)).all()
    rows = [line for line in (results / "tables" / "reconstruction.md").read_text().splitlines()
            if line.startswith("| mine")]
    assert len(rows) >= 2
