"""Where the time goes: CPU and wall seconds per rule and per job, from Snakemake's benchmark files.

Every heavy rule has a `benchmark:` file (`results/benchmarks/<rule>/<target>.tsv`, columns `s` and
`cpu_time` among others); this gathers them into one CSV with a row per job and a total per rule.
Snakemake samples a job's processes about once a second, so `cpu_s` misses a job's start-up (a
20 CPU-s training job read 14.5 here); `wall_s` is exact.
"""

from __future__ import annotations

from pathlib import Path

from .atomic import write_text


def gather(benchmark_files: list[str | Path], root: str | Path):
    """One row per job (rule, target, wall_s, cpu_s), then one `total` row per rule, CPU-heaviest first."""
    import pandas as pd

    root = Path(root)
    rows = []
    for path in map(Path, benchmark_files):
        rel = path.relative_to(root).with_suffix("")
        bench = pd.read_csv(path, sep="\t")
        rows.append({"rule": rel.parts[0], "target": "/".join(rel.parts[1:]),
                     "wall_s": float(bench["s"].iloc[-1]), "cpu_s": float(bench["cpu_time"].iloc[-1])})
    jobs = pd.DataFrame(rows, columns=["rule", "target", "wall_s", "cpu_s"])
    totals = (jobs.groupby("rule", as_index=False)[["wall_s", "cpu_s"]].sum()
              .assign(target="total").sort_values("cpu_s", ascending=False))
    order = {r: i for i, r in enumerate(totals["rule"])}
    jobs = jobs.sort_values(["rule", "cpu_s"], key=lambda c: c.map(order) if c.name == "rule" else -c)
    return pd.concat([totals[jobs.columns], jobs], ignore_index=True)


def write(benchmark_files: list[str | Path], root: str | Path, out: str | Path) -> None:
    write_text(out, gather(benchmark_files, root).to_csv(index=False, float_format="%.2f"))
