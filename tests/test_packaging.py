"""The three dependency lists (pyproject, conda environment, the rules' conda env) cannot drift, and the
wheel holds every blurbench module and runs the tables command outside the repository."""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
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


# Imported by snakemake's HTML report only when a report is made, so snakemake does not require them.
REPORT_NEEDS = {"jinja2", "pygments"}


def _name(requirement: str) -> str:
    import re

    return re.split(r"[ <>=!~;\[(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _closure(names) -> set:
    """The installed distributions `names` pull in, without extras (what `pip install -e .` gives)."""
    from importlib.metadata import PackageNotFoundError, requires

    seen, todo = set(), [_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            reqs = requires(name) or []
        except PackageNotFoundError:
            continue
        todo += [_name(r) for r in reqs if "extra ==" not in r.replace('"', "").replace("'", "")]
    return seen


def test_the_report_works_after_the_first_readme_command_alone():
    """`snakemake --report` needs jinja2 and pygments; the test extras (pytest pulls in pygments)
    must not be what provides them."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    missing = REPORT_NEEDS - _closure(project)
    assert not missing, f"snakemake --report needs {sorted(missing)}: declare them in pyproject.toml"


# Generated and cached files of a working tree: a clean clone has none of them.
NOT_IN_A_CLONE = (".git", "results", "build", "dist", "*.egg-info", "__pycache__", ".snakemake", ".pytest_cache",
                  ".venv", ".scratch")


def _run(cmd, cwd, env=None):
    out = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.mark.slow
def test_the_wheel_installs_and_runs_the_tables_command_outside_the_repository(tmp_path):
    """An editable install hides a wheel that lacks a subpackage: build one from a copy of the tree,
    install it alone into a venv that sees the installed dependencies, and use it from elsewhere."""
    import json
    import zipfile

    from test_tables import MAIN, MAIN_ROWS, write_csv

    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(*NOT_IN_A_CLONE))
    _run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-q",
          "-w", tmp_path / "dist"], cwd=src)
    wheel, = (tmp_path / "dist").glob("blurbench-*.whl")
    files = zipfile.ZipFile(wheel).namelist()
    assert {f.split("/", 1)[0] for f in files} == {"blurbench", wheel.name.split("-py")[0] + ".dist-info"}
    modules = sorted(f[:-len(".py")].replace("/", ".").removesuffix(".__init__") for f in files
                     if f.endswith(".py") and f != "blurbench/__main__.py")
    on_disk = {p.relative_to(REPO).with_suffix("").as_posix().replace("/", ".").removesuffix(".__init__")
               for p in (REPO / "blurbench").rglob("*.py") if p.name != "__main__.py"}
    assert set(modules) == on_disk and "blurbench.tables" in modules

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BLURBENCH_PLUGIN_ROOT")}
    # pip comes from the system site packages; --force-reinstall: the editable install has the same version
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--force-reinstall", "-q", wheel],
         cwd=tmp_path, env=env)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    imported = _run([python, "-c", "import importlib, sys\n"
                     "for m in sys.argv[1:]: importlib.import_module(m)\n"
                     "print(importlib.import_module('blurbench').__file__)", *modules], cwd=outside, env=env)
    assert Path(imported.strip()).is_relative_to(venv), f"the venv imported blurbench from {imported}"

    metrics = write_csv(outside / "metrics.csv", MAIN_ROWS)
    experiments = json.dumps({"main": {**MAIN, "reference": MAIN["methods"][0]}, "ablations": {}})
    out = _run([python, "-m", "blurbench", "tables", "--metrics", metrics, "--out", outside / "tables",
                "--adequacy", outside / "adequacy.csv", "--experiments", experiments, "--min-gain-db", "3.0",
                "--floor-sigma", "2"],
               cwd=outside, env=env)
    assert "undertrained:" in out and (outside / "adequacy.csv").is_file()
    md = (outside / "tables" / "reconstruction.md").read_text(encoding="utf-8")
    assert "| d1 | a | **0.0110 ± 0.0014** |" in md
