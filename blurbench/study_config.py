"""The study configs, generated: the default config plus each study's changes (`STUDIES`).

`config/study.yaml` is the converged VAE study, `config/sr.yaml` the super-resolution study. Not
Snakemake overlays: the Snakefile loads the default only without `--configfile` (a paper run must
not inherit the default's datasets), and a merge cannot delete what a study drops. So each file is
written whole from `config/config.yaml` and this module, and tests/test_study_config.py fails when
a committed file differs from what they give: a change to the default reaches the studies by
regenerating them, never by a second hand edit.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Study:
    """What a study changes in the default. `overrides`: dicts merge key by key into the default's,
    any other value replaces the default's, and every key must exist in the default (a misspelt key
    is an error, not a new setting). `added`: keys the default lacks (their parent must exist).
    `removed`: dotted keys deleted. `header`: the file's opening comment."""

    overrides: dict
    added: dict = field(default_factory=dict)
    removed: tuple = ()
    header: str = ""


# The converged VAE study: models in the regime the paper's question is about (issue 24 measured
# the levers: a 128-d latent, a cosine schedule at a higher peak rate, 8x the shapes and 6x the steps
# take shapes L2 past the sigma = 2 px floor; mri passes it at a shorter budget and overfits beyond
# ~2,400 steps).
VAE_STUDY = Study(
    overrides={
        "seeds": [0, 1, 2],
        "model": {"latent_dim": 128},
        "train": {"steps": 3600, "lr": 3.0e-3, "schedule": "cosine"},
        "datasets": {"shapes": {"params": {"n_train": 16384}}},
        "evaluate": {"budget": True, "n_fid": 128, "fid_ablations": True},
    },
    added={
        "datasets": {"mri": {"train": {"steps": 1800}}},
        "experiments": {"convergence": {"factor": 2, "threshold_db": 0.1}},
    },
    removed=("experiments.sr", "experiments.flows"),
    header=("# The converged CPU study: the main grid and the beta controls on the embedded data, 3 seeds,\n"
            "# models past the fidelity floor, each main run checked against twice its steps (convergence)\n"
            "# and evaluated at 1/8, 1/4, 1/2 of its steps (the budget table and figures).\n"
            "# Left out: the eps, kernel_size ablations, the SR task (config/sr.yaml) and the flows. Measured:\n"
            "# see README, \"What this harness finds\".\n"
            "#   snakemake --cores 2 all_tables --configfile config/study.yaml\n"),
)

# The super-resolution study (Sønderby et al.'s methods and the blur-Wiener cross, x4 64² -> 16²):
# every SR method on both embedded datasets at 64², 3 seeds, and no VAE runs.
SR_STUDY = Study(
    overrides={
        "seeds": [0, 1, 2],
        "experiments": {"sr": {"datasets": ["shapes64", "mri64"],
                               "methods": ["mse", "aff_mse", "aff_blur", "aff_gan", "soft_gan"],
                               "train": {"steps": 1500}}},
        "evaluate": {"n_fid": 128, "fid_ablations": True},
    },
    added={"datasets": {"mri64": {"plugin": "mri", "resolution": 64}},
           "experiments": {"sr": {"train": {"schedule": "cosine", "lr": 3.0e-3}}}},
    removed=("experiments.main", "experiments.ablations", "experiments.flows", "datasets.shapes", "datasets.mri",
             "datasets.photos", "datasets.deadleaves"),
    header=("# The super-resolution study: mse, aff_mse, aff_blur, aff_gan and soft_gan, x4 (64² -> 16²) on the\n"
            "# embedded shapes and mri, 3 seeds; no VAE runs. Measured: see README, \"Super-resolution\".\n"
            "#   snakemake --cores 2 all_tables --configfile config/sr.yaml\n"),
)

# The conditional-flows study (Hong et al.'s three claims): affine against spline coupling, x4 on both
# embedded datasets at 64², 3 seeds, each dataset's other_dataset condition the other one; no VAE runs.
FLOWS_STUDY = Study(
    overrides={
        "seeds": [0, 1, 2],
        "experiments": {"flows": {"datasets": ["shapes64", "mri64"],
                                  "network": {"n_couplings": 4, "hidden": 32, "features": 16},
                                  "train": {"steps": 1000, "batch_size": 16},
                                  "n_samples": 8, "n_ood_images": 64, "other": {"shapes64": "mri64"}}},
        "evaluate": {"n_fid": 128},
    },
    added={"datasets": {"mri64": {"plugin": "mri", "resolution": 64}},
           "experiments": {"flows": {"other": {"mri64": "shapes64"},
                                     "train": {"schedule": "cosine"}}}},
    removed=("experiments.main", "experiments.ablations", "experiments.sr", "datasets.shapes", "datasets.mri",
             "datasets.photos", "datasets.deadleaves"),
    header=("# The conditional-flows study: flow_affine against flow_spline, x4 (64² -> 16²) on the embedded\n"
            "# shapes and mri, 3 seeds, every OOD condition set; no VAE runs. Measured: see README,\n"
            "# \"Conditional flows\".\n"
            "#   snakemake --cores 2 all_tables --configfile config/flows.yaml\n"),
)

STUDIES = {"study": VAE_STUDY, "sr": SR_STUDY, "flows": FLOWS_STUDY}  # name -> study; the file is config/<name>.yaml


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


def _add(config: dict, additions: dict, prefix: str) -> None:
    for key, value in additions.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            _add(config[key], value, f"{path}.")
        elif key in config:
            raise ValueError(f"study addition '{path}': the default config has this key already; "
                             "change it in OVERRIDES")
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


def apply(default: dict, overrides: dict = VAE_STUDY.overrides, removed: tuple = VAE_STUDY.removed,
          added: dict = VAE_STUDY.added) -> dict:
    """A copy of `default` with `overrides` merged in, `added` keys added and `removed` ones deleted."""
    config = copy.deepcopy(default)
    _override(config, overrides, "")
    _add(config, added, "")
    for dotted in removed:
        _remove(config, dotted)
    return config


def render(default: dict, name: str = "study") -> str:
    """The text of study `name`'s file for a default config (a dict)."""
    import yaml

    study = STUDIES[name]
    body = yaml.safe_dump(apply(default, study.overrides, study.removed, study.added), sort_keys=False,
                          default_flow_style=None, allow_unicode=True, width=110)
    generated = ("# Generated from config/config.yaml (what each key means) and blurbench/study_config.py (what\n"
                 "# the study changes) by blurbench.study_config.write: edit those and regenerate, not this file.\n")
    return study.header + generated + "\n" + body


def write(default_path: str | Path, out_path: str | Path, name: str = "study") -> None:
    """Write study `name`'s file generated from the default config at `default_path` (atomically)."""
    from .atomic import write_text
    from .config import load_yaml

    write_text(out_path, render(load_yaml(default_path), name))
