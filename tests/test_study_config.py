"""config/study.yaml is the default config plus the study's overrides, never a second copy that drifts."""

import copy
from pathlib import Path

import pytest
import yaml

from blurbench import study_config
from blurbench.config import build_grid, load_yaml
from blurbench.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
DEFAULT = REPO / "config" / "config.yaml"
STUDY = REPO / "config" / "study.yaml"


def test_committed_study_is_what_the_default_and_the_overrides_give():
    assert STUDY.read_text() == study_config.render(load_yaml(DEFAULT)), (
        "config/study.yaml is stale: python -c \"from blurbench.study_config import write; "
        "write('config/config.yaml', 'config/study.yaml')\"")


def test_a_change_to_the_default_reaches_the_study_and_only_the_overrides_differ():
    default = load_yaml(DEFAULT)
    default["train"]["batch_size"] = 17
    default["datasets"]["shapes"]["params"]["n_test"] = 99
    study = yaml.safe_load(study_config.render(default))
    expected = copy.deepcopy(default)
    expected["seeds"] = [0, 1, 2]
    expected["model"]["latent_dim"] = 128
    expected["train"].update(steps=3600, lr=3e-3, schedule="cosine")
    expected["datasets"]["shapes"]["params"]["n_train"] = 16384
    expected["datasets"]["mri"]["train"] = {"steps": 1800}
    expected["experiments"]["convergence"] = {"factor": 2, "threshold_db": 0.1}
    expected["evaluate"].update(budget=True, n_fid=128, fid_ablations=True)  # the default's are cut for time
    del expected["experiments"]["sr"]  # the SR task has its own study
    del expected["experiments"]["flows"]  # and the flows are in neither study
    assert study == expected
    assert default["experiments"].keys() >= {"sr", "flows"}  # the input is not mutated


def test_nested_overrides_merge_key_by_key():
    default = {"train": {"steps": 600, "lr": 0.001}, "seeds": [0]}
    assert study_config.apply(default, {"train": {"steps": 2000}}, (), {}) == {"train": {"steps": 2000, "lr": 0.001},
                                                                           "seeds": [0]}


@pytest.mark.parametrize("overrides, removed, key", [
    ({"train": {"step": 2000}}, (), "study override 'train.step'"),
    ({"seed": [0, 1]}, (), "study override 'seed'"),
    ({}, ("experiments.ablations.nope",), "study removal 'experiments.ablations.nope'"),
    ({}, ("seeds.x",), "study removal 'seeds.x'"),
])
def test_a_key_the_default_lacks_is_an_error_naming_it(overrides, removed, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.") + ".*no such key"):
        study_config.apply(load_yaml(DEFAULT), overrides, removed)


def test_an_addition_the_default_already_has_is_an_error_naming_it():
    with pytest.raises(ValueError, match=r"study addition 'train\.steps'.*already"):
        study_config.apply(load_yaml(DEFAULT), {}, (), {"train": {"steps": 5}})


def test_the_study_checks_convergence_and_evaluates_the_budget_ladder():
    grid = build_grid(load_yaml(STUDY), check_data=False)
    assert len(grid.convergence) == len(grid.config["experiments"]["main"]["datasets"]) * len(
        grid.config["experiments"]["main"]["methods"])
    assert grid.config["evaluate"]["budget"] and grid.runs["mri/l2/seed0"].train["steps"] == 1800


def test_the_study_is_a_valid_config_with_its_seeds_and_without_the_dropped_ablations():
    grid = build_grid(load_yaml(STUDY), check_data=False)
    assert {spec.seed for spec in grid.runs.values()} == {0, 1, 2}
    assert set(grid.ablations) == {"sigma2", "normalize_gain"}


def test_the_sr_study_trains_every_sr_method_on_both_datasets_and_no_vae():
    assert (REPO / "config" / "sr.yaml").read_text() == study_config.render(load_yaml(DEFAULT), "sr")
    grid = build_grid(load_yaml(REPO / "config" / "sr.yaml"), check_data=False)
    sr = grid.config["experiments"]["sr"]
    assert not grid.main and "main" not in grid.config["experiments"] and not grid.ablations
    assert set(sr["datasets"]) == {"shapes64", "mri64"} and len(sr["methods"]) == 5
    assert sorted(grid.runs) == sorted(grid.sr) and len(grid.sr) == 2 * 5 * 3


def test_the_flows_study_trains_both_couplings_on_both_datasets_each_the_others_ood_and_no_vae():
    assert (REPO / "config" / "flows.yaml").read_text() == study_config.render(load_yaml(DEFAULT), "flows")
    grid = build_grid(load_yaml(REPO / "config" / "flows.yaml"), check_data=False)
    flows = grid.config["experiments"]["flows"]
    assert not grid.main and not grid.sr and not grid.ablations
    assert flows["other"] == {"shapes64": "mri64", "mri64": "shapes64"}
    assert sorted(grid.runs) == sorted(grid.flows) and len(grid.flows) == 2 * 2 * 3
    assert grid.runs["mri64/flow_spline/seed2"].train["schedule"] == "cosine"


def test_a_config_with_neither_study_is_refused():
    config = load_yaml(DEFAULT)
    del config["experiments"]["main"], config["experiments"]["sr"], config["experiments"]["flows"]
    with pytest.raises(ConfigError, match=r"'experiments': none of 'main'.*'sr'.*and 'flows'"):
        build_grid(config, check_data=False)
