"""`snakemake --lint` with an allow-list: CI fails on any finding not listed here, and on a listed one
that is gone (so the list never outgrows the workflow).

`snakemake --lint` exits 1 on any finding, justified or not, and snakemake 9's command line ignores
`--lint json`, so this reads the text report: `Lints for rule <name> (line …):` or `Lints for
snakefile <path>:`, then one `    * <title>:` line per finding.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_DEVICE = ("The device is where a job runs, not what it computes: a global in the shell command, not a "
           "param, so moving a run from CPU to GPU does not rerun it (workflow/rules/common.smk).")
# (item, lint title) -> why the workflow keeps it
ALLOWED = {
    (f"rule {rule}", "Shell command directly uses variable DEVICE from outside of the rule"): _DEVICE
    for rule in ("fid_stats", "baselines", "train", "evaluate", "evaluate_budget")
}
ALLOWED[("rule timing", "Param root is a prefix of input or output file but hardcoded")] = (
    "root is the benchmarks folder the inputs are read relative to (a rule per sub-folder), taken from "
    "blurbench.layout like the inputs themselves, not a path typed in the rule.")

HEADER = re.compile(r"^Lints for (rule \S+|snakefile \S+)(?: \(line \d+, .*\))?:$")
FINDING = re.compile(r"^    \* (.+):$")


def findings(report: str) -> set[tuple[str, str]]:
    """(item, title) of every lint in `report`; ValueError when a header or finding line does not parse."""
    found, item = set(), None
    for line in report.splitlines():
        if line.startswith("Lints for "):
            match = HEADER.match(line)
            if not match:
                raise ValueError(f"unparsed lint header: {line!r}")
            item = match.group(1)
        elif line.startswith("    * "):
            match = FINDING.match(line)
            if not match or item is None:
                raise ValueError(f"unparsed lint finding: {line!r}")
            found.add((item, match.group(1)))
    return found


def main() -> int:
    out = subprocess.run(["snakemake", "--lint"], cwd=REPO, capture_output=True, text=True)
    report = out.stdout + out.stderr
    found = findings(report)
    if out.returncode != 0 and not found:
        print(f"snakemake --lint failed without lint findings:\n{report}", file=sys.stderr)
        return 1
    new = sorted(found - set(ALLOWED))
    stale = sorted(set(ALLOWED) - found)
    for item, title in new:
        print(f"lint: {item}: {title} (fix it, or add it to ALLOWED in .ci/lint_workflow.py with a reason)",
              file=sys.stderr)
    for item, title in stale:
        print(f"lint: {item}: '{title}' is allowed but no longer reported: remove it from ALLOWED",
              file=sys.stderr)
    if new:
        print(report, file=sys.stderr)
    print(f"snakemake --lint: {len(found)} finding(s), {len(found) - len(new)} allowed, {len(new)} not; "
          f"{len(stale)} stale allowance(s)")
    return 1 if new or stale else 0


if __name__ == "__main__":
    sys.exit(main())
