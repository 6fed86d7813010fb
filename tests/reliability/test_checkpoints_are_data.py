"""Checkpoints and models are loaded with weights_only=True: nothing executes code from a results file."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_every_torch_load_passes_weights_only_true():
    calls = []
    for path in list((REPO / "blurbench").rglob("*.py")) + list((REPO / "methods").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "load" \
                    and getattr(node.func.value, "id", "") == "torch":
                kw = {k.arg: k.value for k in node.keywords}
                calls.append((path.name, node.lineno, isinstance(kw.get("weights_only"), ast.Constant)
                              and kw["weights_only"].value is True))
    assert calls, "no torch.load found: the test would be vacuous"
    assert all(ok for *_, ok in calls), [c for c in calls if not c[2]]


def test_no_pickle_loading_of_results():
    for path in (REPO / "blurbench").rglob("*.py"):
        text = path.read_text()
        assert "allow_pickle=True" not in text, path
        assert "pickle.load" not in text, path
