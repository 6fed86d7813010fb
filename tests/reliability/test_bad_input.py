"""Bad input stops the workflow before any training, with one clear line naming the key, value or file."""

import copy
import gzip

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from workflow_helpers import snakemake

pytestmark = pytest.mark.slow

BASE = {
    "seeds": [0],
    "train": {"steps": 1, "batch_size": 16},
    "model": {"latent_dim": 4, "base_width": 4, "max_width": 8},
    "datasets": {"deadleaves": {"resolution": 16, "params": {"n_train": 16, "n_test": 8}}},
    "methods": {"l2": {}, "blur": {"plugin": "blur_wiener", "params": {"kernel": {"size": 3}}}},
    "experiments": {"main": {"datasets": ["deadleaves"], "methods": ["l2", "blur"]}},
    "evaluate": {"fid": False, "lpips": False},
}


def changed(path, value, base=BASE):
    cfg = copy.deepcopy(base)
    node = cfg
    *parents, last = path
    for p in parents:
        node = node[p]
    node[last] = value
    return cfg


def dataset(cfg, name, entry):
    cfg = copy.deepcopy(cfg)
    cfg["datasets"] = {name: entry}
    cfg["experiments"]["main"]["datasets"] = [name]
    return cfg


def celeba_with_corrupt_jpeg(tmp):
    folder = tmp / "data" / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    lines = []
    for i in range(4):
        name = f"{i + 1:06d}.jpg"
        Image.fromarray(np.full((218, 178, 3), 40 * i, np.uint8)).save(folder / name)
        lines.append(f"{name} {0 if i < 2 else 2}")
    (folder / "000004.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    (folder.parent / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return dataset(BASE, "celeba", {"plugin": "celeba", "resolution": 32,
                                    "params": {"root": str(tmp / "data")}}), "000004.jpg"


def hcp_with_truncated_nifti(tmp):
    for i, subject in enumerate(["100001", "100002", "100003"]):
        folder = tmp / "hcp" / subject / "T1w"
        folder.mkdir(parents=True)
        vol = np.zeros((24, 24, 12), np.float32)
        vol[4:20, 4:20, 2:10] = np.random.default_rng(i).uniform(50, 150, (16, 16, 8))
        path = folder / "T1w_acpc_dc_restore_brain.nii.gz"
        nib.save(nib.Nifti1Image(vol, np.eye(4)), path)
    data = path.read_bytes()
    path.write_bytes(gzip.compress(gzip.decompress(data)[:400]))
    return dataset(BASE, "hcp", {"plugin": "hcp", "resolution": 64,
                                 "params": {"root": str(tmp / "hcp")}}), "100003"


CASES = {
    "unknown method": (lambda t: changed(["experiments", "main", "methods"], ["l2", "l3"]), "l3"),
    "unknown dataset": (lambda t: changed(["experiments", "main", "datasets"], ["deadleafs"]), "deadleafs"),
    "even kernel size": (lambda t: changed(["methods", "blur", "params", "kernel", "size"], 4), "kernel.size"),
    "negative kernel size": (lambda t: changed(["methods", "blur", "params", "kernel", "size"], -3), "kernel.size"),
    "eps above 1": (lambda t: changed(["methods", "blur", "params", "blur"], {"eps": 1.5}), "blur.eps"),
    "C not positive": (lambda t: changed(["methods", "blur", "params", "blur"], {"C": 0}), "blur.C"),
    "negative learning rate": (lambda t: changed(["train", "lr"], -0.001), "train.lr"),
    "zero steps": (lambda t: changed(["train", "steps"], 0), "train.steps"),
    "unsupported resolution": (lambda t: changed(["datasets", "deadleaves", "resolution"], 48), "datasets.deadleaves.resolution"),
    "missing data root": (lambda t: dataset(BASE, "cifar10", {"plugin": "cifar10", "resolution": 32,
                                                              "params": {"root": str(t / "nowhere")}}), "nowhere"),
    "misspelled key": (lambda t: changed(["train"], {"steps": 1, "batch_szie": 16}), "batch_szie"),
    "corrupt image file": (celeba_with_corrupt_jpeg, None),
    "truncated NIfTI": (hcp_with_truncated_nifti, None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_before_training_naming_the_culprit(tmp_path, case):
    make, needle = CASES[case]
    made = make(tmp_path)
    config, needle = (made, needle) if needle else made
    result = snakemake(tmp_path / "work", "--cores", "1", "all_tables", config=config, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert needle in output, output[-2000:]
    assert not (tmp_path / "work" / "results" / "runs").exists(), "a training job ran"
    assert "Traceback" not in output
