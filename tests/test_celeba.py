"""CelebA / CelebA-HQ loader on fixtures in the real on-disk layout (JPEGs + list_eval_partition.txt).

Each fixture image encodes its own pixel coordinates (R = x, G = y) and an id (B), so the tests can
check the crop box and the resize geometry independently of PIL's crop, and which file went where.
"""

import sys
import types

import numpy as np
import pytest
from PIL import Image

from blurbench import plugins
from blurbench.errors import ConfigError, DataError

celeba = plugins.load_dataset("celeba")

# file -> official partition (0 train, 1 valid, 2 test)
PARTITION = {"000001.jpg": 0, "000002.jpg": 0, "000003.jpg": 1, "000004.jpg": 2, "000005.jpg": 0,
             "000006.jpg": 2}


def coordinate_image(width, height, ident, scale=1):
    """R = x·scale, G = y·scale, B = ident: a smooth image whose values say where each pixel came from."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * scale, y * scale, np.full_like(x, ident)], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8))


def ident_of(name):
    return 20 * int(name.split(".")[0])


@pytest.fixture
def celeba_root(tmp_path):
    folder = tmp_path / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    for name in PARTITION:
        coordinate_image(178, 218, ident_of(name)).save(folder / name, quality=100, subsampling=0)
    (tmp_path / "celeba" / "list_eval_partition.txt").write_text(
        "".join(f"{n} {p}\n" for n, p in PARTITION.items()))
    return tmp_path


@pytest.fixture
def hq_root(tmp_path):
    folder = tmp_path / "celeba_hq"
    folder.mkdir()
    split = {"0.jpg": 0, "1.png": 0, "2.jpg": 2, "3.png": 1, "4.png": 2}
    for i, name in enumerate(split):
        coordinate_image(64, 64, 40 * (i + 1), scale=4).save(folder / name, quality=100, subsampling=0)
    (folder / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p in split.items()))
    return tmp_path


def params(root, **kw):
    return {**celeba.PARAMS, "root": str(root), **kw}


def materialise(splits):
    return {k: np.stack(list(s.images)) for k, s in splits.items()}


def expected_coordinate(start, span, size):
    """Source coordinate sampled by output pixel j of a resize of [start, start+span) to `size` pixels."""
    return start + (np.arange(size) + 0.5) * span / size - 0.5


def test_splits_shapes_and_official_partition(celeba_root):
    splits = celeba.build(params(celeba_root), 64)
    assert {k: s.count for k, s in splits.items()} == {"train": 3, "test": 2}
    arrays = materialise(splits)
    for name, arr in arrays.items():
        assert arr.shape == (splits[name].count, 3, 64, 64) and arr.dtype == np.uint8
    ids = {k: sorted(int(round(a[2].mean())) for a in arr) for k, arr in arrays.items()}
    assert ids["train"] == sorted(ident_of(n) for n, p in PARTITION.items() if p == 0)
    assert ids["test"] == sorted(ident_of(n) for n, p in PARTITION.items() if p == 2)
    assert not set(ids["train"]) & set(ids["test"])


def test_crop_box_148_centred_and_resize_geometry(celeba_root):
    assert celeba.describe(params(celeba_root), 64)["crop_box"] == [15, 35, 163, 183]
    img = materialise(celeba.build(params(celeba_root, n_train=1), 64))["train"][0].astype(float)
    # R = source x, G = source y: the output must sample exactly the 148² box at (15, 35).
    np.testing.assert_allclose(img[0].mean(0), expected_coordinate(15, 148, 64), atol=1.5)
    np.testing.assert_allclose(img[1].mean(1), expected_coordinate(35, 148, 64), atol=1.5)


def test_crop_178_is_the_full_width_square(celeba_root):
    p = params(celeba_root, crop_size=178, n_train=1)
    assert celeba.describe(p, 32)["crop_box"] == [0, 20, 178, 198]
    img = materialise(celeba.build(p, 32))["train"][0].astype(float)
    inner = slice(2, -2)  # PIL clamps the filter at the image border in x
    np.testing.assert_allclose(img[0].mean(0)[inner], expected_coordinate(0, 178, 32)[inner], atol=1.5)
    np.testing.assert_allclose(img[1].mean(1), expected_coordinate(20, 178, 32), atol=1.5)


def test_resize_is_antialiased(celeba_root, tmp_path):
    """A 1-pixel checkerboard averages to grey; point sampling would keep full-contrast aliases."""
    folder = celeba_root / "celeba" / "img_align_celeba"
    board = ((np.indices((218, 178)).sum(0) % 2) * 255).astype(np.uint8)
    Image.fromarray(np.stack([board] * 3, -1)).save(folder / "000001.jpg", quality=100, subsampling=0)
    img = materialise(celeba.build(params(celeba_root, n_train=1), 32))["train"][0].astype(float)
    assert abs(img.mean() - 127.5) < 10 and img.std() < 12


def test_prepare_writes_arrays_and_records_the_crop(celeba_root, tmp_path):
    import json

    from blurbench.data import open_split, prepare

    out = tmp_path / "out"
    prepare("celeba", params(celeba_root), 32, out)
    assert open_split(out / "train.npy").shape == (2, 3, 32, 32)  # the last of 3 is the monitor split
    assert open_split(out / "monitor.npy").shape == (1, 3, 32, 32)
    assert open_split(out / "test.npy").shape == (2, 3, 32, 32)
    provenance = json.loads((out / "meta.json").read_text())["provenance"]
    assert provenance["crop_box"] == [15, 35, 163, 183] and provenance["variant"] == "celeba"


def test_train_partitions_and_caps(celeba_root):
    p = params(celeba_root, train_partitions=[0, 1])
    assert celeba.build(p, 32)["train"].count == 4
    capped = celeba.build(params(celeba_root, n_train=2, n_test=1), 32)
    arrays = materialise(capped)
    assert capped["train"].count == 2 and capped["test"].count == 1
    # first N in sorted order: 000001, 000002 for train, 000004 for test
    assert [int(round(a[2].mean())) for a in arrays["train"]] == [20, 40]
    assert int(round(arrays["test"][0, 2].mean())) == 80
    with pytest.raises(ConfigError, match="train_partitions"):
        celeba.validate(params(celeba_root, train_partitions=[0, 2]), 64)


def test_describe_records_variant_filter_and_upsampling(celeba_root):
    d = celeba.describe(params(celeba_root), 256)
    assert d["variant"] == "celeba" and "lanczos" in d["resize"] and d["upsampled"] is True
    assert d["counts"] == {"train": 3, "test": 2}
    assert celeba.describe(params(celeba_root), 64)["upsampled"] is False


def test_build_streams_one_image_at_a_time(celeba_root):
    (celeba_root / "celeba" / "img_align_celeba" / "000006.jpg").write_bytes(b"not a jpeg")
    test = celeba.build(params(celeba_root), 64)["test"]
    assert isinstance(test.images, types.GeneratorType)
    first = next(iter(test.images))  # 000004 decodes: the bad 000006 has not been read yet
    assert first.shape == (3, 64, 64)
    with pytest.raises(DataError, match="000006.jpg"):
        list(test.images)


def test_truncated_jpeg_names_the_file(celeba_root):
    path = celeba_root / "celeba" / "img_align_celeba" / "000002.jpg"
    path.write_bytes(path.read_bytes()[:600])
    with pytest.raises(DataError, match=r"corrupt image .*000002\.jpg"):
        materialise(celeba.build(params(celeba_root), 64))


def test_wrong_image_size_names_the_file(celeba_root):
    coordinate_image(100, 100, 0).save(celeba_root / "celeba" / "img_align_celeba" / "000001.jpg")
    with pytest.raises(DataError, match=r"000001\.jpg is 100×100.*178×218"):
        materialise(celeba.build(params(celeba_root), 64))


def test_missing_root_partition_and_image(celeba_root, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=rf"{missing} \(params.root, the data root\) does not exist.*mmlab"):
        celeba.validate(params(missing), 64)
    (celeba_root / "celeba" / "list_eval_partition.txt").unlink()
    with pytest.raises(DataError, match="list_eval_partition.txt does not exist"):
        celeba.validate(params(celeba_root), 64)


def test_missing_listed_image_and_bad_partition_line(celeba_root):
    (celeba_root / "celeba" / "img_align_celeba" / "000001.jpg").unlink()
    with pytest.raises(DataError, match=r"000001\.jpg does not exist"):
        celeba.validate(params(celeba_root), 64)
    (celeba_root / "celeba" / "list_eval_partition.txt").write_text("000002.jpg 0\n000004.jpg test\n")
    with pytest.raises(DataError, match="line 2"):
        celeba.validate(params(celeba_root), 64)


def test_root_pointing_at_the_celeba_folder_gets_a_hint(celeba_root):
    with pytest.raises(DataError, match="root must be the folder that contains celeba/"):
        celeba.validate(params(celeba_root / "celeba"), 64)


def test_unsupported_resolution_and_bad_params(celeba_root):
    with pytest.raises(DataError, match="resolution 48 is not supported"):
        celeba.validate(params(celeba_root), 48)
    with pytest.raises(ConfigError, match="params.variant"):
        celeba.validate(params(celeba_root, variant="ffhq"), 64)
    with pytest.raises(ConfigError, match="params.crop_size"):
        celeba.validate(params(celeba_root, crop_size=200), 64)
    with pytest.raises(ConfigError, match="params.download"):
        celeba.validate(params(celeba_root, variant="celeba_hq", download=True), 256)


def test_download_goes_through_torchvision_and_failure_is_a_data_error(tmp_path, monkeypatch):
    calls = []

    def offline(*args, **kwargs):
        calls.append((args, kwargs))
        raise RuntimeError("no internet")

    # a stand-in torchvision (importing the real one takes seconds): record the call, fail like offline
    monkeypatch.setitem(sys.modules, "torchvision", types.ModuleType("torchvision"))
    monkeypatch.setitem(sys.modules, "torchvision.datasets", types.SimpleNamespace(CelebA=offline))
    with pytest.raises(DataError, match="download into .* failed .*no internet"):
        celeba.build(params(tmp_path, download=True), 64)
    assert calls == [((str(tmp_path),), {"split": "all", "target_type": [], "download": True})]


def test_celeba_hq_whole_image_resize_and_split(hq_root):
    p = params(hq_root, variant="celeba_hq")
    splits = celeba.build(p, 32)
    assert {k: s.count for k, s in splits.items()} == {"train": 2, "test": 2}
    arrays = materialise(splits)
    assert {k: sorted(int(round(a[2].mean())) for a in v) for k, v in arrays.items()} == \
        {"train": [40, 80], "test": [120, 200]}
    # whole 64² image -> 32²: R = 4·x sampled at the centres of 2-pixel cells
    inner = slice(2, -2)
    np.testing.assert_allclose(arrays["train"][0, 0].astype(float).mean(0)[inner],
                               4 * expected_coordinate(0, 64, 32)[inner], atol=3)
    d = celeba.describe(p, 32)
    assert d["variant"] == "celeba_hq" and d["crop_box"] is None and d["source"] == "CelebA-HQ"


def test_celeba_hq_errors(hq_root):
    p = params(hq_root, variant="celeba_hq")
    with pytest.raises(DataError, match=r"0\.jpg is 64×64.*at least 128"):
        materialise(celeba.build(p, 128))
    coordinate_image(64, 48, 0).save(hq_root / "celeba_hq" / "1.png")
    with pytest.raises(DataError, match=r"1\.png is 64×48.*square"):
        materialise(celeba.build(p, 32))
    (hq_root / "celeba_hq" / "list_eval_partition.txt").write_text("0.jpg 0\n0.jpg 2\n")
    with pytest.raises(DataError, match="listed twice"):
        celeba.validate(p, 32)
    with pytest.raises(DataError, match=r"celeba_hq.*does not exist.*CelebAMask-HQ"):
        celeba.validate(params(hq_root / "x", variant="celeba_hq"), 256)
