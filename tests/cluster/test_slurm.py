"""The cluster profile against a real SLURM: a one-node cluster on loopback (local-slurm.sh).

Opt-in (root, Debian packages, minutes): BLURBENCH_CLUSTER_TESTS=1 pytest -m cluster tests/cluster;
always on in CI (CI=true).
"""

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "cluster" / "local-slurm.sh"
TINY_CONFIG = REPO / "tests" / "cluster" / "tiny_config.yaml"
# Rules that must run as SLURM jobs, and those among them that request the config's GPU.
HEAVY_RULES = {"prepare", "train", "evaluate"}
GPU_RULES = {"train", "evaluate"}

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.timeout(1800),  # the snakemake calls have their own, shorter timeouts
    pytest.mark.skipif(
        os.environ.get("BLURBENCH_CLUSTER_TESTS") != "1" and os.environ.get("CI") != "true",
        reason="real-SLURM tests (root, Debian packages, minutes) are opt-in: set "
               "BLURBENCH_CLUSTER_TESTS=1; CI (CI=true) always runs them",
    ),
]


def _run(cmd, timeout, **kwargs):
    """Run a command, failing the test with its output when it fails or hangs."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{cmd[0]} still running after {timeout}s:\n{e.stdout}\n{e.stderr}")
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _sacct(job_ids, fields):
    """One dict per job (allocation line only) from the accounting database."""
    out = _run(["sacct", "-X", "-n", "-P", "-j", ",".join(job_ids), "-o", ",".join(fields)], 60).stdout
    return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line]


def _wait_completed(job_ids, timeout=120):
    """Poll sacct until every job has ended; return their records."""
    deadline = time.monotonic() + timeout
    while True:
        rows = _sacct(job_ids, ["JobID", "State", "Start", "End", "ReqMem", "Comment"])
        ended = [r for r in rows if r["State"] not in ("PENDING", "RUNNING", "COMPLETING")]
        if len(ended) == len(job_ids):
            return rows
        assert time.monotonic() < deadline, f"jobs not finished after {timeout}s: {rows}"
        time.sleep(1)


@pytest.fixture(scope="session")
def slurm():
    """The local cluster, up for the session; stopped at the end unless it was already running."""
    already_up = subprocess.run(["bash", SCRIPT, "status"], capture_output=True).returncode == 0
    t0 = time.monotonic()
    _run(["bash", SCRIPT, "start"], 900)
    print(f"\nlocal SLURM up in {time.monotonic() - t0:.1f}s")
    yield
    if not already_up:
        _run(["bash", SCRIPT, "stop"], 300)


def test_sbatch_jobs_share_the_node_and_are_accounted(slurm, tmp_path):
    """Two 1-CPU jobs without a memory request run side by side (DefMemPerCPU), and sacct,
    which the snakemake plugin polls, reports both as COMPLETED."""
    ids = []
    for i in range(2):
        out = _run(["sbatch", "--parsable", "-c", "1", "-o", str(tmp_path / f"{i}.out"),
                    "--wrap", "sleep 4; echo ran $SLURM_JOB_ID"], 60).stdout
        ids.append(out.strip().split(";")[0])
    rows = {r["JobID"]: r for r in _wait_completed(ids)}
    assert [rows[j]["State"] for j in ids] == ["COMPLETED", "COMPLETED"], rows
    for i, job_id in enumerate(ids):
        assert (tmp_path / f"{i}.out").read_text().strip() == f"ran {job_id}"
    first, second = rows[ids[0]], rows[ids[1]]
    assert second["Start"] < first["End"], f"jobs ran one after the other: {rows}"


def _snakemake(args, workdir, log, timeout):
    """Run snakemake from the repository root (as the README does) into its own workdir."""
    env = dict(os.environ)
    # --directory moves the jobs' working directory out of the repository: keep the package importable.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    cmd = ["snakemake", *args, "--configfile", str(TINY_CONFIG), "--directory", str(workdir), "all_tables"]
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"snakemake still running after {timeout}s; log:\n{log.read_text()[-5000:]}")
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}; log:\n{log.read_text()[-5000:]}"
    return log.read_text()


def test_all_tables_through_the_slurm_profile_matches_a_local_run(slurm, tmp_path):
    """The README's cluster command: the heavy jobs went through sbatch, training and evaluation
    were given the GPU (so profiles/default's local cap of 0 GPUs did not apply), and the tables
    equal those of a local run of the same config."""
    local, cluster = tmp_path / "local", tmp_path / "cluster"
    # Locally the config's GPU request needs the cap lifted; the jobs compute on CPU (device: cpu).
    _snakemake(["--cores", "2", "--resources", "gpu=1"], local, tmp_path / "local.log", 900)
    t0 = time.monotonic()
    log = _snakemake(["--workflow-profile", "profiles/slurm",
                      # poll sacct after 5 s instead of 40 s: the tiny jobs take seconds
                      "--slurm-init-seconds-before-status-checks", "5"],
                     cluster, tmp_path / "cluster.log", 900)
    print(f"\ncluster run of all_tables: {time.monotonic() - t0:.0f}s")

    assert "Using workflow specific profile profiles/slurm " in log
    assert "profiles/default" not in log

    job_ids = re.findall(r"submitted with SLURM jobid (\d+)", log)
    assert job_ids, f"no job went through sbatch; log:\n{log[-3000:]}"
    rows = _sacct(job_ids, ["JobID", "State", "AllocTRES", "Comment"])
    assert {r["JobID"] for r in rows} == set(job_ids), "sacct lacks some submitted jobs"
    assert all(r["State"] == "COMPLETED" for r in rows), rows
    by_rule = {re.match(r"rule_([A-Za-z0-9_]+?)(_wildcards_|$)", r["Comment"]).group(1): r for r in rows}
    assert HEAVY_RULES <= set(by_rule), f"rules run through SLURM: {sorted(by_rule)}"
    for rule in GPU_RULES:
        assert "gres/gpu=1" in by_rule[rule]["AllocTRES"], f"{rule} got no GPU: {by_rule[rule]}"

    tables = sorted(p.name for p in (local / "results" / "tables").glob("*.csv"))
    assert "reconstruction.csv" in tables
    for name in tables:
        assert (cluster / "results" / "tables" / name).read_text() == \
            (local / "results" / "tables" / name).read_text(), f"{name} differs from the local run"
    recon = (cluster / "results" / "tables" / "reconstruction.csv").read_text()
    assert "l2" in recon and re.search(r"\d\.\d", recon), f"reconstruction.csv has no numbers:\n{recon}"
