"""`config/study.yaml`, generated: the default config plus the study's overrides (OVERRIDES, REMOVED).

Not a Snakemake overlay: the Snakefile loads the default only without `--configfile` (a paper run
must not inherit the default's datasets), and a merge cannot delete the ablations the study drops.
So the study file is written whole from `config/config.yaml` and this module, and
tests/test_study_config.py fails when the committed file differs from what they give: a change to
the default reaches the study by regenerating it, never by a second hand edit.
"""

from __future__ import annotations

import copy
from pathlib import Path

# What the study changes. Dicts merge key by key into the default's; any other value replaces the
# default's. Every key must exist in the default, so a misspelt key is an error, not a new setting.
OVERRIDES = {"seeds": [0, 1, 2]}
# Dotted keys the study deletes from the default.
REMOVED = ("experiments.ablations.eps", "experiments.ablations.kernel_size")


def _override(config: dict, overrides: dict, prefix: str) -> None:
    for key, value in overrides.items():
        path = f"{prefix}{key}"
        if key not in config:
            raise ValueError(f"study override '{path}': the default config has no such key; expected one of "
                             f"{', '.join(map(str, config))}")
        if isinstance(value, dict) and isinstance(config[key], dict):
            _override(config[key], value, f"{path}.")
        else:
            config[key] = copy.deepcopy(value)


def _remove(config: dict, dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    node = config
    for key in parents:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict) or leaf not in node:
        raise ValueError(f"study removal '{dotted}': the default config has no such key")
    del node[leaf]


def apply(default: dict, overrides: dict = OVERRIDES, removed: tuple = REMOVED) -> dict:
    """A copy of `default` with `overrides` merged in and the `removed` keys deleted."""
    config = copy.deepcopy(default)
    _override(config, overrides, "")
    for dotted in removed:
        _remove(config, dotted)
    return config


def header() -> str:
    seeds = OVERRIDES["seeds"]
    dropped = ", ".join(d.rsplit(".", 1)[1] for d in REMOVED)
    return (f"# The CPU study: the default grid and controls on the embedded data with {len(seeds)} seeds, so the\n"
            "# comparison table's confidence intervals cover seed-to-seed variation (hierarchical bootstrap).\n"
            f"# Left out: the {dropped} ablations. Measured: see README, \"What this harness finds\".\n"
            "#   snakemake --cores 2 all_tables --configfile config/study.yaml\n"
            "# Generated from config/config.yaml (what each key means) and blurbench/study_config.py (what\n"
            "# the study changes) by blurbench.study_config.write: edit those and regenerate, not this file.\n")


def render(default: dict) -> str:
    """The study file's text for a default config (a dict)."""
    import yaml

    body = yaml.safe_dump(apply(default), sort_keys=False, default_flow_style=None, allow_unicode=True,
                          width=110)
    return header() + "\n" + body


def write(default_path: str | Path, out_path: str | Path) -> None:
    """Write the study file generated from the default config at `default_path` (atomically)."""
    from .atomic import write_text
    from .config import load_yaml

    write_text(out_path, render(load_yaml(default_path)))
