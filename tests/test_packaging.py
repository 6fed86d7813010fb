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
