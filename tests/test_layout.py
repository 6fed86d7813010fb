"""Every per-run, per-dataset and results-wide file name is spelled in blurbench/layout.py alone.

The writers (train, evaluate, baselines, data), the readers (comparison, tables, figures) and the
workflow rules take the names from `blurbench.layout`, so renaming an output is one edit. This test
reads every string literal of the package, the workflow and the benchmarks (docstrings and comments
aside) and fails on one that spells such a name.
"""

import ast
import re
from pathlib import Path

from blurbench import layout

REPO = Path(__file__).resolve().parent.parent
NAMES = sorted({*layout.TRAIN_FILES.values(), *layout.EVAL_FILES.values(), layout.CHECKPOINT, layout.META,
                layout.split_array("train"), layout.split_array("test"), layout.ADEQUACY,
                "timing.csv", "runs.tsv", "config_used.yaml"})


def _python_literals(path: Path):
    """(line, text) of each string constant that is not a docstring."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def _workflow_literals(path: Path):
    """(line, text) of each quoted string of a Snakefile, comments and docstrings aside."""
    for i, line in enumerate(path.read_text().splitlines(), 1):
        code = line.split("#", 1)[0]
        if code.strip().startswith('"""'):
            continue
        for m in re.finditer(r'"([^"]*)"|\'([^\']*)\'', code):
            yield i, m.group(1) or m.group(2) or ""


def offenders():
    files = [p for p in (REPO / "blurbench").rglob("*.py") if p.name != "layout.py"]
    files += list((REPO / "benchmarks").glob("*.py"))
    found = []
    for path in files:
        found += [(path, i, t) for i, t in _python_literals(path) for n in NAMES if n in t]
    for path in [REPO / "Snakefile", *(REPO / "workflow" / "rules").glob("*.smk")]:
        found += [(path, i, t) for i, t in _workflow_literals(path) for n in NAMES if n in t]
    return [f"{p.relative_to(REPO)}:{i}: {t!r}" for p, i, t in found]


def test_file_names_live_in_layout_only():
    bad = offenders()
    assert not bad, "file names spelled outside blurbench/layout.py:\n" + "\n".join(bad)


def test_the_check_sees_a_spelled_name(tmp_path, monkeypatch):
    """The scan is not vacuous: a literal naming a per-run file is caught."""
    assert any(n in t for _, t in _python_literals(Path(layout.__file__)) for n in NAMES)
    probe = tmp_path / "probe.py"
    probe.write_text('"""Writes per_image.csv (a docstring may say so)."""\nPATH = "eval/per_image.csv"\n')
    hits = [t for _, t in _python_literals(probe) if any(n in t for n in NAMES)]
    assert hits == ["eval/per_image.csv"]
