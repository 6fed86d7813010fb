"""Where a number came from: code version and commit, library versions, device, host and times.

Each trained model and each run's metrics get a `provenance.json`; metric rows carry the commit,
device and host as columns, so a table can be traced to the code and the machine that made it.
"""

from __future__ import annotations

import datetime
import json
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .atomic import write_text
from .layout import REPO_ROOT

FIELDS = ("blurbench_version", "git_commit", "git_dirty", "torch_version", "cuda_version",
          "cudnn_version", "device", "host", "started", "finished")
NOT_GIT = "not a git checkout"


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state() -> tuple[str, bool | str]:
    """(commit, dirty) of the checkout the harness runs from; (NOT_GIT, NOT_GIT) outside git.

    Dirty means tracked files differ from the commit; generated results are ignored by git.
    """
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return NOT_GIT, NOT_GIT
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit, bool(status)


def device_name(device) -> str:
    """'cpu (<processor>)' or the CUDA device's name."""
    import torch

    if device == "none":
        return "none (not trained)"
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()})"


def collect(device, started: str) -> dict:
    """Every field of FIELDS but "finished" for a job that runs on `device` since `started`
    (`write` stamps "finished", so the two times bracket the work between them)."""
    import torch

    try:
        own = version("blurbench")
    except PackageNotFoundError:
        own = "not installed"
    commit, dirty = git_state()
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {"blurbench_version": own, "git_commit": commit, "git_dirty": dirty,
            "torch_version": torch.__version__, "cuda_version": torch.version.cuda or "none",
            "cudnn_version": str(cudnn) if cudnn else "none", "device": device_name(device),
            "host": platform.node(), "started": started}


def write(path: str | Path, record: dict) -> None:
    """Write `record` with "finished" = now: call it when the job's work is done."""
    write_text(path, json.dumps({**record, "finished": now()}, indent=2, sort_keys=True) + "\n")


def row_columns(record: dict) -> dict:
    """The provenance columns of metrics.csv (see results_schema.ROW_FIELDS)."""
    dirty = record["git_dirty"]
    commit = record["git_commit"] + ("-dirty" if dirty is True else "")
    return {"commit": commit, "device": record["device"], "host": record["host"]}
