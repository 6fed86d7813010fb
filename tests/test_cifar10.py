"""CIFAR-10 loader on fixtures in the real layout: pickled dicts with b"data" (uint8 N×3072) and b"labels"."""

import io
import pickle
import struct
import sys
import types

import numpy as np
import pytest

from blurbench import plugins
from blurbench.errors import ConfigError, DataError

cifar10 = plugins.load_dataset("cifar10")

TRAIN_SIZES = (3, 2, 2, 1, 2)  # images in data_batch_1..5 (10,000 each in the real data)
TEST_SIZE = 4


def batch_images(batch_id, n):
    """Image k of batch b: red plane = ramp 0..255 over the 1024 pixels, green = b, blue = k."""
    ramp = (np.arange(1024) // 4).astype(np.uint8)
    data = np.empty((n, 3072), np.uint8)
    data[:, :1024] = ramp
    data[:, 1024:2048] = batch_id
    data[:, 2048:] = np.arange(n, dtype=np.uint8)[:, None]
    return data


class _Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 `str` (BINSTRING), as the original batches (pickled by Python 2) hold them."""

    def save_bytes(self, obj):
        n = len(obj)
        self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj if n < 256
                   else pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch = {**pickle._Pickler.dispatch, bytes: save_bytes}


def write_batch(path, data, labels, python2=True):
    """A batch dict pickled like the originals (protocol 2, Python-2 strings, numpy 1.x module names)."""
    batch = {b"batch_label": b"fixture", b"labels": labels, b"data": data,
             b"filenames": [b"img%d.png" % i for i in range(len(data))]}
    if not python2:  # as a Python 3 / numpy 2 user would re-pickle it
        path.write_bytes(pickle.dumps(batch, protocol=2))
        return
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(batch)
    raw = buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    assert b"cnumpy.core.multiarray\n_reconstruct" in raw and b"U\x04data" in raw
    path.write_bytes(raw)


@pytest.fixture
def cifar_root(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i, n in enumerate(TRAIN_SIZES, 1):
        write_batch(folder / f"data_batch_{i}", batch_images(i, n), list(range(n)), python2=(i != 2))
    write_batch(folder / "test_batch", batch_images(99, TEST_SIZE), [0] * TEST_SIZE)
    return tmp_path


def params(root, **kw):
    return {**cifar10.PARAMS, "root": str(root), **kw}


def materialise(splits):
    return {k: np.stack(list(s.images)) for k, s in splits.items()}


def test_splits_shapes_layout_and_disjointness(cifar_root):
    splits = cifar10.build(params(cifar_root), 32)
    assert {k: s.count for k, s in splits.items()} == {"train": sum(TRAIN_SIZES), "test": TEST_SIZE}
    arrays = materialise(splits)
    for name, arr in arrays.items():
        assert arr.shape == (splits[name].count, 3, 32, 32) and arr.dtype == np.uint8
    # red plane is row-major 32×32: pixel (row 1, col 0) is flat index 32 -> value 8
    assert arrays["train"][0, 0, 1, 0] == 8 and arrays["train"][0, 0, 31, 31] == 255
    batches = [int(a[1, 0, 0]) for a in arrays["train"]]
    assert batches == [b for b, n in enumerate(TRAIN_SIZES, 1) for _ in range(n)]  # files in order
    assert set(arrays["test"][:, 1, 0, 0]) == {99}
    assert [int(a[2, 0, 0]) for a in arrays["test"]] == list(range(TEST_SIZE))


def test_matches_torchvision_decoding(tmp_path, monkeypatch):
    """Cross-check: torchvision's CIFAR10 reads the same Python-2-style batches to the same pixels."""
    from torchvision.datasets import CIFAR10

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i, n in enumerate(TRAIN_SIZES, 1):
        write_batch(folder / f"data_batch_{i}", batch_images(i, n), list(range(n)))
    write_batch(folder / "test_batch", batch_images(99, TEST_SIZE), [0] * TEST_SIZE)
    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: True)  # fixtures lack the real MD5s
    monkeypatch.setattr(CIFAR10, "_load_meta", lambda self: None)  # no batches.meta (class names) needed
    ours = materialise(cifar10.build(params(tmp_path), 32))
    for split, train in (("train", True), ("test", False)):
        reference = CIFAR10(str(tmp_path), train=train).data  # N×32×32×3
        np.testing.assert_array_equal(ours[split], reference.transpose(0, 3, 1, 2))


def test_prepare_writes_the_arrays_and_provenance(cifar_root, tmp_path):
    from blurbench.data import open_split, prepare

    meta = prepare("cifar10", params(cifar_root), 32, tmp_path / "out")
    n_monitor = max(1, sum(TRAIN_SIZES) // 8)  # the end of the training stream is held out (monitor)
    assert meta["counts"] == {"train": sum(TRAIN_SIZES) - n_monitor, "test": TEST_SIZE, "monitor": n_monitor}
    assert open_split(tmp_path / "out" / "test.npy").shape == (TEST_SIZE, 3, 32, 32)
    assert "test_batch" in meta["provenance"]["split_rule"]


def test_caps_take_the_first_images(cifar_root):
    splits = cifar10.build(params(cifar_root, n_train=4, n_test=1), 32)
    arrays = materialise(splits)
    assert splits["train"].count == 4 and splits["test"].count == 1
    assert [(int(a[1, 0, 0]), int(a[2, 0, 0])) for a in arrays["train"]] == [(1, 0), (1, 1), (1, 2), (2, 0)]


def test_missing_root_and_missing_batch(cifar_root, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=rf"{missing} \(params.root, the data root\) does not exist.*toronto"):
        cifar10.validate(params(missing), 32)
    (cifar_root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match=r"cifar-10-batches-py/data_batch_3 does not exist"):
        cifar10.build(params(cifar_root), 32)


def test_truncated_batch_names_the_file(cifar_root):
    path = cifar_root / "cifar-10-batches-py" / "data_batch_4"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=r"corrupt batch file .*data_batch_4"):
        cifar10.build(params(cifar_root), 32)


def test_wrong_content_names_the_file(cifar_root):
    path = cifar_root / "cifar-10-batches-py" / "test_batch"
    write_batch(path, np.zeros((2, 100), np.uint8), [0, 0])
    with pytest.raises(DataError, match=r"corrupt batch file .*test_batch.*uint8 N×3072.*\(2, 100\)"):
        cifar10.build(params(cifar_root), 32)
    with open(path, "wb") as f:
        pickle.dump([1, 2, 3], f, protocol=2)
    with pytest.raises(DataError, match=r"test_batch.*got NoneType"):
        cifar10.build(params(cifar_root), 32)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return (os.mkdir, (self.marker,))


def test_pickle_with_code_is_refused_and_not_run(cifar_root):
    marker = cifar_root / "pwned"
    path = cifar_root / "cifar-10-batches-py" / "data_batch_1"
    with open(path, "wb") as f:
        pickle.dump({b"data": _Payload(str(marker))}, f, protocol=2)
    with pytest.raises(DataError, match=r"data_batch_1.*refused to load posix.mkdir"):
        cifar10.build(params(cifar_root), 32)
    assert not marker.exists()


def test_resolution_and_params(cifar_root):
    with pytest.raises(DataError, match="resolution 64 is not supported"):
        cifar10.validate(params(cifar_root), 64)
    with pytest.raises(ConfigError, match="params.n_train"):
        cifar10.validate(params(cifar_root, n_train=0), 32)
    assert cifar10.RESOLUTIONS == (32,) and cifar10.channels({}) == 3
    assert "test_batch" in cifar10.describe(params(cifar_root), 32)["split_rule"]


def test_download_goes_through_torchvision_and_failure_is_a_data_error(tmp_path, monkeypatch):
    calls = []

    def offline(*args, **kwargs):
        calls.append((args, kwargs))
        raise RuntimeError("no internet")

    monkeypatch.setitem(sys.modules, "torchvision", types.ModuleType("torchvision"))
    monkeypatch.setitem(sys.modules, "torchvision.datasets", types.SimpleNamespace(CIFAR10=offline))
    with pytest.raises(DataError, match="download into .* failed .*no internet"):
        cifar10.build(params(tmp_path, download=True), 32)
    assert calls == [((str(tmp_path),), {"train": True, "download": True})]
