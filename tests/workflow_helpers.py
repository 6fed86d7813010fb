"""Run the real Snakefile on a small config in a temporary directory (used by end-to-end tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent

TINY = {
    "seeds": [0],
    "threads": 1,
    "model": {"latent_dim": 8, "base_width": 8, "max_width": 16},
    "train": {"steps": 8, "batch_size": 32, "n_probe": 4, "log_every": 4},
    "datasets": {"deadleaves": {"resolution": 32,
                                "params": {"n_train": 128, "n_test": 32, "channels": 1}}},
    "methods": {"l2": {}, "perceptual": {}, "focal_frequency": {},
                "blur_per_image": {"plugin": "blur_wiener", "params": {"kernel": {"size": 3}}},
                "mse": {}, "aff_mse": {}, "flow_affine": {}, "flow_spline": {}},
    "experiments": {"main": {"datasets": ["deadleaves"],
                             "methods": ["l2", "perceptual", "focal_frequency", "blur_per_image"]},
                    "ablations": {"eps": {"dataset": "deadleaves", "methods": ["blur_per_image"],
                                          "param": "blur.eps", "tag": "eps", "values": [0.5, 1.0]},
                                  "sigma2": {"dataset": "deadleaves", "methods": ["l2"],
                                             "param": "sigma2_divisor", "tag": "g", "values": [1, 4]}},
                    "convergence": {"factor": 2, "threshold_db": 0.1},
                    "sr": {"datasets": ["deadleaves"], "methods": ["mse", "aff_mse"],
                           "operator": {"name": "avgpool", "factor": 4}, "network": {"width": 8, "depth": 1}},
                    "flows": {"datasets": ["deadleaves"], "methods": ["flow_affine", "flow_spline"],
                              "network": {"n_couplings": 1, "hidden": 4, "features": 4}, "n_samples": 2,
                              "n_ood_images": 8}},
    "evaluate": {"n_fid": 16, "batch_size": 16, "n_examples": 4, "budget": True},
}


def write_config(workdir: Path, config: dict) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def snakemake(workdir: Path, *args: str, config: dict | None = None, timeout: int = 900,
              env: dict | None = None) -> subprocess.CompletedProcess:
    """`snakemake <args> --configfile <workdir>/config.yaml` with the repository's Snakefile."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           *args]
    if config is not None:
        cmd += ["--configfile", str(write_config(workdir, config))]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
