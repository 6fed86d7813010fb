# Prepare each dataset once into uint8 arrays that training memory-maps.


rule prepare:
    output:
        **SPLIT,
        meta=f"{layout.data_dir('{dataset}')}/{layout.META}",
    log:
        layout.log_file("prepare", "{dataset}"),
    benchmark:
        layout.benchmark_file("prepare", "{dataset}")
    conda:
        CONDA_ENV
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        spec=dataset_spec,
        out_dir=lambda wc, output: os.path.dirname(output.train),
    shell:
        "python -m blurbench prepare --spec {params.spec:q} --out {params.out_dir:q} " "> {log:q} 2>&1"


rule fid_stats:
    input:
        test=SPLIT["test"],
    output:
        stats=layout.fid_stats_path("{dataset}"),
    log:
        layout.log_file("fid_stats", "{dataset}"),
    benchmark:
        layout.benchmark_file("fid_stats", "{dataset}")
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=GPU,
    params:
        n=lambda wc: GRID.config["evaluate"]["n_fid"],
        batch_size=lambda wc: GRID.config["evaluate"]["batch_size"],
    shell:
        "python -m blurbench fid-stats --data {input.test:q} --n {params.n} --out {output.stats:q} "
        "--batch-size {params.batch_size} --device {DEVICE} --threads {threads} > {log:q} 2>&1"


rule baselines:
    """Trivial baselines and the blur ladder of one dataset's test split, scored like the runs."""
    input:
        train=SPLIT["train"],
        test=SPLIT["test"],
        fid_stats=fid_stats_input,
    output:
        metrics=layout.baselines_metrics("{dataset}"),
    log:
        layout.log_file("baselines", "{dataset}"),
    benchmark:
        layout.benchmark_file("baselines", "{dataset}")
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=GPU,
    params:
        spec=baseline_spec,
        data_dir=lambda wc, input: os.path.dirname(input.test),
        fid_flag=lambda wc, input: f"--fid-stats {input.fid_stats}" if input.fid_stats else "",
    shell:
        "python -m blurbench baselines --spec {params.spec:q} --data {params.data_dir:q} {params.fid_flag} "
        "--out {output.metrics:q} --threads {threads} --device {DEVICE} > {log:q} 2>&1"


rule run_grid:
    """The expanded grid (one row per run with its parameters) and the effective config, for provenance."""
    output:
        runs=report(
            layout.runs_tsv(),
            category="Provenance",
            labels={"file": os.path.basename(layout.runs_tsv())},
            caption="../report/provenance_runs.rst",
        ),
        config=report(
            layout.config_used(),
            category="Provenance",
            labels={"file": os.path.basename(layout.config_used())},
            caption="../report/provenance_config.rst",
        ),
    log:
        layout.log_file("run_grid"),
    localrule: True
    params:
        grid=lambda wc: json.dumps(GRID.run_rows(), sort_keys=True),
        config=lambda wc: json.dumps(GRID.config, sort_keys=True),
    run:
        from blurbench.config import write_grid_files

        write_grid_files(GRID, output.runs, output.config)


rule fetch_weights:
    """Download every pretrained network the config needs into the torch hub cache (run it on a
    login node with internet; compute nodes then find the weights offline)."""
    log:
        layout.log_file("fetch_weights"),
    localrule: True
    conda:
        CONDA_ENV
    params:
        names=lambda wc: " ".join(weights_needed()),
    shell:
        "python -m blurbench fetch-weights {params.names} 2>&1 | tee {log:q}"
