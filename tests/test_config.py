"""Config validation gives one clear line naming the key; the grid expands runs once, canonically."""

import copy

import pytest

from blurbench.config import build_grid
from blurbench.layout import format_value
from blurbench.errors import ConfigError

BASE = {
    "seeds": [0, 1],
    "datasets": {"toy": {"resolution": 16}},
    "methods": {"l2": {}},
    "experiments": {"main": {"datasets": ["toy"], "methods": ["l2"]}},
}


def with_(path, value, base=BASE):
    cfg = copy.deepcopy(base)
    node = cfg
    *parents, last = path
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value
    return cfg


def test_grid_has_one_run_per_dataset_method_seed(toy_plugin_root):
    grid = build_grid(BASE)
    assert sorted(grid.runs) == ["toy/l2/seed0", "toy/l2/seed1"]
    spec = grid.runs["toy/l2/seed0"]
    assert spec.channels == 3 and spec.resolution == 16 and spec.train["steps"] == 2000


@pytest.mark.parametrize("value, text", [(0.5, "0.5"), (1.0, "1"), (7, "7"), (0.25, "0.25"),
                                         (1e-4, "0.0001"), (0.1 + 0.2, "0.30000000000000004")])
def test_format_value_has_one_spelling(value, text):
    assert format_value(value) == text


@pytest.mark.parametrize("path, value, key", [
    (["train", "lr"], -1e-3, "train.lr"),
    (["train", "steps"], 0, "train.steps"),
    (["experiments", "main", "methods"], ["nonexistent"], "experiments.main.methods"),
    (["datasets", "toy", "resolution"], 64, "datasets.toy.resolution"),
    (["model", "sigma2"], 0, "model.sigma2"),
    (["trian"], {"lr": 1}, "trian"),
    (["methods", "l2", "params"], {"foo": 1}, "methods.l2.params.foo"),
    (["methods", "bad"], {"plugin": "no_such_method"}, "methods.bad.plugin"),
])
def test_bad_config_names_the_key(toy_plugin_root, path, value, key):
    with pytest.raises(ConfigError) as err:
        build_grid(with_(path, value))
    message = str(err.value)
    assert key in message and "\n" not in message


def test_ablation_point_equal_to_main_reuses_the_main_run(toy_plugin_root, tmp_path):
    # a throwaway method plugin with one numeric parameter
    (toy_plugin_root / "methods").unlink()
    (toy_plugin_root / "methods").mkdir()
    (toy_plugin_root / "methods" / "knob.py").write_text(
        "from blurbench.errors import ConfigError\n"
        "PARAMS = {'blur': {'eps': 1.0}}\n"
        "def validate(p):\n"
        "    if not 0 <= p['blur']['eps'] <= 1: raise ConfigError('blur.eps must be in [0, 1]')\n"
        "from blurbench.method_api import ReconstructionTerm\n"
        "class Term(ReconstructionTerm): pass\n")
    cfg = with_(["methods"], {"knob": {}})
    cfg["experiments"] = {"main": {"datasets": ["toy"], "methods": ["knob"]},
                          "ablations": {"eps": {"dataset": "toy", "methods": ["knob"], "param": "blur.eps",
                                                "values": [0.25, 1.0]}}}
    grid = build_grid(cfg)
    assert sorted(grid.runs) == ["toy/knob/seed0", "toy/knob/seed1",
                                 "toy/knob__eps0.25/seed0", "toy/knob__eps0.25/seed1"]
    assert grid.runs["toy/knob__eps0.25/seed0"].params["blur"]["eps"] == 0.25
    assert grid.evals["toy/knob__eps0.25/seed0"].swept == {"blur.eps": 0.25}
    assert grid.ablations["eps"]["runs"][("knob", 1.0)] == ["toy/knob/seed0", "toy/knob/seed1"]
    cfg["experiments"]["ablations"]["eps"]["values"] = [1.5]
    with pytest.raises(ConfigError, match="blur.eps"):
        build_grid(cfg)
    cfg["experiments"]["ablations"]["eps"]["param"] = "blur.nope"
    with pytest.raises(ConfigError, match="blur.nope"):
        build_grid(cfg)


def test_training_identity_holds_no_evaluation_device_or_threads(toy_plugin_root):
    grid = build_grid(BASE)
    identity = grid.runs["toy/l2/seed0"].to_json()
    changed = with_(["evaluate"], {"n_fid": 100, "hfer_cutoff": 0.3, "lpips": False})
    changed.update(device="cpu", threads=7)
    other = build_grid(changed)
    assert other.runs["toy/l2/seed0"].to_json() == identity
    assert other.evals["toy/l2/seed0"].to_json() != grid.evals["toy/l2/seed0"].to_json()
    assert build_grid(with_(["train", "lr"], 0.01)).runs["toy/l2/seed0"].to_json() != identity


def test_a_kernel_larger_than_a_dataset_stops_at_validation_naming_the_dataset(toy_plugin_root):
    cfg = with_(["methods"], {"l2": {}, "blur": {"plugin": "blur_wiener", "params": {"kernel": {"size": 41}}}})
    cfg["datasets"] = {"toy": {"resolution": 32}}
    cfg["experiments"]["main"]["methods"] = ["l2", "blur"]
    with pytest.raises(ConfigError) as err:
        build_grid(cfg)
    message = str(err.value)
    assert "kernel.size" in message and "'toy'" in message and "32" in message and "\n" not in message


def test_runs_tsv_and_effective_config(toy_plugin_root, tmp_path):
    import csv

    import yaml

    from blurbench.config import write_grid_files

    grid = build_grid(BASE)
    write_grid_files(grid, tmp_path / "runs.tsv", tmp_path / "config.yaml")
    rows = list(csv.DictReader(open(tmp_path / "runs.tsv"), delimiter="\t"))
    assert [r["run_id"] for r in rows] == ["toy/l2/seed0", "toy/l2/seed1"]
    assert rows[0]["train.steps"] == "2000" and rows[1]["seed"] == "1"
    assert yaml.safe_load(open(tmp_path / "config.yaml"))["evaluate"]["n_fid"] == grid.config["evaluate"]["n_fid"]


def test_floor_sigma_must_be_a_ladder_row():
    with pytest.raises(ConfigError, match=r"evaluate.floor_sigma.*3 is not a σ of evaluate.blur_ladder"):
        build_grid(with_(["evaluate", "floor_sigma"], 3.0), check_data=False)
