# Convergence and the verdict across training budgets (blurbench.convergence, blurbench.budget).
# Evaluation only: the budget states are outputs of the main runs' training, never a new run.


wildcard_constraints:
    fraction="|".join(layout.format_value(f) for f in layout.BUDGET_FRACTIONS[:-1]).replace(".", r"\."),


rule evaluate_budget:
    """A main run's training state at a fraction of its steps, evaluated like a finished run."""
    input:
        state=f'{layout.run_dir("{dataset}", "{variant}", "{seed}")}/{layout.BUDGET_STATE}',
        test=SPLIT["test"],
        fid_stats=fid_stats_input,
    output:
        **{k: layout.budget_eval_file("{dataset}", "{variant}", "{seed}", "{fraction}", k) for k in layout.EVAL_FILES},
    log:
        layout.log_file("evaluate_budget", layout.budget_job(RUN_JOB, "{fraction}")),
    benchmark:
        layout.benchmark_file("evaluate_budget", layout.budget_job(RUN_JOB, "{fraction}"))
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        mem_mb=lambda wc, attempt: 6000 * attempt,
        runtime=lambda wc, attempt: 60 * attempt,
        gpu=GPU,
    params:
        spec=eval_spec,
        data_dir=lambda wc, input: os.path.dirname(input.test),
        out_dir=lambda wc, output: os.path.dirname(output.metrics),
        fid_flag=lambda wc, input: f"--fid-stats {input.fid_stats}" if input.fid_stats else "",
    shell:
        "python -m blurbench evaluate --spec {params.spec:q} --model {input.state:q} "
        "--data {params.data_dir:q} {params.fid_flag} --out {params.out_dir:q} "
        "--threads {threads} --device {DEVICE} > {log:q} 2>&1"


rule budget:
    """Every method against the reference at 1/8, 1/4, 1/2 and all of the steps: table and figures."""
    input:
        files_of(BUDGET_FILES),
    output:
        csv=layout.budget_csv(),
        png=[
            report(
                layout.figure_file(n, "png"),
                caption="../report/figure_budget.rst",
                category="Figures",
                subcategory="Training budget",
                labels={"figure": n},
            )
            for n in BUDGET_FIGURES
        ],
        pdf=[layout.figure_file(n, "pdf") for n in BUDGET_FIGURES],
    log:
        layout.log_file("budget"),
    benchmark:
        layout.benchmark_file("budget")
    conda:
        CONDA_ENV
    params:
        files=json.dumps(BUDGET_FILES),  # in the config's method order: the figure's colours
        reference=MAIN["reference"],
        steps=json.dumps(BUDGET_STEPS, sort_keys=True),
        n_boot=GRID.config["evaluate"]["n_boot"],
        n_boot_set=GRID.config["evaluate"]["n_boot_set"],
        figures=lambda wc, output: os.path.dirname(output.pdf[0]),
    shell:
        "python -m blurbench budget --files {params.files:q} --reference {params.reference} "
        "--steps {params.steps:q} --out-csv {output.csv:q} --figures {params.figures:q} "
        "--n-boot {params.n_boot} --n-boot-set {params.n_boot_set} > {log:q} 2>&1"


rule convergence:
    """Each main dataset and method: what training for factor x the steps gains on the monitor split."""
    input:
        [pair[k] for pair in CONVERGENCE_PAIRS for k in ("log", "longer_log")],
    output:
        layout.convergence_metrics(),
    log:
        layout.log_file("convergence"),
    conda:
        CONDA_ENV
    params:
        pairs=json.dumps(CONVERGENCE_PAIRS, sort_keys=True),
        factor=GRID.config["experiments"].get("convergence", {}).get("factor", 0),
        threshold_db=GRID.config["experiments"].get("convergence", {}).get("threshold_db", 0),
    shell:
        "python -m blurbench convergence --pairs {params.pairs:q} --factor {params.factor} "
        "--threshold-db {params.threshold_db} --out {output:q} > {log:q} 2>&1"
