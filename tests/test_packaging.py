"""The three dependency lists (pyproject, conda environment, the rules' conda env) cannot drift."""

import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def pip_section(path):
    deps = yaml.safe_load(path.read_text())["dependencies"]
    return next(d["pip"] for d in deps if isinstance(d, dict))


def test_rule_environment_lists_exactly_the_project_dependencies():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert pip_section(REPO / "workflow" / "envs" / "blurbench.yaml") == project


def test_user_environment_installs_the_project_itself():
    assert pip_section(REPO / "environment.yml") == ["-e .[test]"]
