"""The README states what the default config does: its table is generated from config/config.yaml."""

from pathlib import Path

from blurbench import readme

REPO = Path(__file__).resolve().parent.parent


def test_readme_default_run_table_matches_the_config():
    text = (REPO / "README.md").read_text()
    assert readme.current_block(text) == readme.block(REPO / "config" / "config.yaml"), \
        "README.md is stale: run `python -m blurbench readme`"


def test_the_generated_table_follows_the_config(tmp_path):
    import yaml

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["evaluate"]["n_fid"] = 99
    cfg["train"]["steps"] = 123
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    table = readme.default_run_table(path)
    assert "N = 99" in table and "123 optimiser steps" in table


def test_readme_names_the_results_schema_as_the_definition_of_the_csv():
    assert "`blurbench/results_schema.py` is the one place that defines `metrics.csv`" in (REPO / "README.md").read_text()
