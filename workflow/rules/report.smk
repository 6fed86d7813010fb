# Tables and figures from results/metrics.csv and the per-run artefacts, marked for the HTML report
# (`snakemake --report results/report.html`; captions in workflow/report/). File names come from
# blurbench.tables.table_names / blurbench.figures.figure_names, the same lists the code writes.
import json


rule tables:
    input:
        metrics=layout.metrics_csv(),
    output:
        csv=[layout.table_file(n, "csv") for n in TABLES],
        md=[layout.table_file(n, "md") for n in TABLES],
        tex=[layout.table_file(n, "tex") for n in TABLES],
        html=[
            report(layout.table_file(n, "html"), caption=_table_caption(n), category="Tables", labels={"table": n})
            for n in TABLES
        ],
        adequacy=layout.adequacy_csv(),
    log:
        layout.log_file("tables"),
    conda:
        CONDA_ENV
    params:
        experiments=json.dumps(EXPERIMENTS, sort_keys=True),
        min_gain_db=GRID.config["evaluate"]["min_gain_db"],
        floor_sigma=GRID.config["evaluate"]["floor_sigma"],
        out_dir=lambda wc, output: os.path.dirname(output.csv[0]),
    shell:
        "python -m blurbench tables --metrics {input.metrics:q} --out {params.out_dir:q} "
        "--adequacy {output.adequacy:q} --experiments {params.experiments:q} "
        "--min-gain-db {params.min_gain_db} --floor-sigma {params.floor_sigma} > {log:q} 2>&1"


rule comparison:
    """Every method against the reference, paired, with bootstrap CIs (blurbench.comparison)."""
    input:
        files_of(COMPARISON_FILES),
    output:
        csv=layout.table_file("comparison", "csv"),
        md=layout.table_file("comparison", "md"),
        tex=layout.table_file("comparison", "tex"),
        html=report(
            layout.table_file("comparison", "html"),
            caption="../report/table_comparison.rst",
            category="Comparison",
            labels={"table": "comparison"},
        ),
    log:
        layout.log_file("comparison"),
    benchmark:
        layout.benchmark_file("comparison")
    conda:
        CONDA_ENV
    params:
        files=json.dumps(COMPARISON_FILES, sort_keys=True),
        main=json.dumps({k: MAIN[k] for k in ("datasets", "methods", "reference")}, sort_keys=True),
        n_boot=GRID.config["evaluate"]["n_boot"],
        n_boot_set=GRID.config["evaluate"]["n_boot_set"],
        out_dir=lambda wc, output: os.path.dirname(output.csv),
    shell:
        "python -m blurbench comparison --files {params.files:q} --main {params.main:q} "
        "--out {params.out_dir:q} --n-boot {params.n_boot} --n-boot-set {params.n_boot_set} > {log:q} 2>&1"


rule figures:
    input:
        metrics=layout.metrics_csv(),
        runs=files_of(FIGURE_FILES),
    output:
        png=[
            report(
                layout.figure_file(n, "png"),
                caption=_figure_caption(n),
                category="Figures",
                subcategory=FIGURE_SUBCATEGORY[n.split("_")[0]],
                labels={"figure": n},
            )
            for n in FIGURES
        ],
        pdf=[layout.figure_file(n, "pdf") for n in FIGURES],
    log:
        layout.log_file("figures"),
    conda:
        CONDA_ENV
    params:
        files=json.dumps(FIGURE_FILES, sort_keys=True),
        experiments=json.dumps(EXPERIMENTS, sort_keys=True),
        seed=FIGURE_SEED,
        out_dir=lambda wc, output: os.path.dirname(output.pdf[0]),
    shell:
        "python -m blurbench figures --files {params.files:q} --metrics {input.metrics:q} "
        "--out {params.out_dir:q} --experiments {params.experiments:q} --seed {params.seed} > {log:q} 2>&1"


rule timing:
    """CPU seconds per rule and per job (results/timing.csv), from the jobs' benchmark files."""
    input:
        [layout.benchmark_file("train", rid) for rid in GRID.runs]
        + [layout.benchmark_file("evaluate", rid) for rid in GRID.runs if rid not in CONVERGENCE_RUNS]
        + [
            layout.benchmark_file("evaluate_budget", layout.budget_job(rid, layout.format_value(f)))
            for rid in (GRID.main if GRID.config["evaluate"]["budget"] else [])
            for f in layout.BUDGET_FRACTIONS[:-1]
        ]
        + [
            layout.benchmark_file(rule, d)
            for d in RUN_DATASETS
            for rule in ("prepare", "baselines") + (("fid_stats",) if GRID.config["evaluate"]["fid"] else ())
        ]
        + ([layout.benchmark_file("comparison")] if HAS_MAIN else [])
        + ([layout.benchmark_file("comparison_sr")] if SR else [])
        + ([layout.benchmark_file("comparison_flows")] if FLOWS else []),
    output:
        layout.timing_csv(),
    log:
        layout.log_file("timing"),
    conda:
        CONDA_ENV
    params:
        root=os.path.dirname(layout.benchmark_file("comparison")),
    shell:
        "python -m blurbench timing --root {params.root:q} --out {output:q} {input:q} > {log:q} 2>&1"


rule all_tables:
    input:
        rules.comparison.output if HAS_MAIN else [],
        rules.tables.output,
        rules.run_grid.output,
        rules.timing.output,
        rules.budget.output if GRID.config["evaluate"]["budget"] else [],
        rules.comparison_sr.output if SR else [],
        rules.comparison_flows.output if FLOWS else [],


onsuccess:
    # One warning line when some run did not learn (tables mark it with a footnote); not an error.
    _adequacy = layout.adequacy_csv()
    if os.path.exists(_adequacy):
        import csv

        with open(_adequacy) as _f:
            _rows = list(csv.DictReader(_f))
        _bad = [r["run_id"] for r in _rows if r["undertrained"] == "True"]
        _unconverged = [r["run_id"] for r in _rows if r.get("unconverged") == "True"]
        if _bad:
            print(
                f"WARNING: {len(_bad)} undertrained run(s), less than "
                f"{GRID.config['evaluate']['min_gain_db']:g} dB above the best trivial baseline"
                + (f" (SR: {SR['min_gain_db']:g} dB above bicubic)" if SR else "")
                + ": "
                + ", ".join(_bad),
                file=sys.stderr,
            )
        if _unconverged:
            print(
                f"WARNING: {len(_unconverged)} run(s) not converged, training for longer still gains "
                f"{GRID.config['experiments']['convergence']['threshold_db']:g} dB or more: "
                + ", ".join(_unconverged),
                file=sys.stderr,
            )
        # and one when the reference model misses the fidelity floor: its findings are a demonstration
        import pandas as pd
        from blurbench.tables.summaries import floor_misses

        _below = floor_misses(pd.read_csv(_adequacy), MAIN["reference"])
        if _below:
            print(
                "WARNING: below the fidelity floor, findings there are a demonstration: " + "; ".join(_below),
                file=sys.stderr,
            )


rule all_figures:
    input:
        rules.figures.output if HAS_MAIN else [],
        rules.figures_sr.output if SR else [],
        rules.figures_flows.output if FLOWS else [],


rule toys:
    """The super-resolution papers' 2-D toys (blurbench.toys): seconds each, no data."""
    output:
        **{k: layout.toy_file(k) for k in layout.TOY_FILES if not k.endswith("figure")},
        sr_figure=report(
            layout.toy_file("sr_figure"), caption="../report/figure_toy_sr.rst", category="Super-resolution toys"
        ),
        flow_figure=report(
            layout.toy_file("flow_figure"), caption="../report/figure_toy_flow.rst", category="Super-resolution toys"
        ),
    log:
        layout.log_file("toys"),
    benchmark:
        layout.benchmark_file("toys")
    conda:
        CONDA_ENV
    threads: THREADS
    params:
        out=lambda wc, output: json.dumps(dict(output.items()), sort_keys=True),
    shell:
        "python -m blurbench toys --out {params.out:q} --seed 0 --threads {threads} > {log:q} 2>&1"


rule all_toys:
    input:
        rules.toys.output,
