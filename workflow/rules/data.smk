# Prepare each dataset once into uint8 arrays that training memory-maps.


rule prepare:
    output:
        train=f"{DATA}/train.npy",
        test=f"{DATA}/test.npy",
        meta=f"{DATA}/meta.json",
    params:
        spec=dataset_spec,
        out_dir=lambda wc, output: os.path.dirname(output.train),
    log:
        f"{RESULTS}/logs/prepare/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare/{{dataset}}.tsv"
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        CONDA_ENV
    shell:
        "python -m blurbench prepare --spec {params.spec:q} --out {params.out_dir:q} "
        "> {log:q} 2>&1"


rule fid_stats:
    input:
        test=f"{DATA}/test.npy",
    output:
        stats=layout.fid_stats_path("{dataset}"),
    params:
        n=lambda wc: GRID.config["evaluate"]["n_fid"],
        batch_size=lambda wc: GRID.config["evaluate"]["batch_size"],
    threads: THREADS
    log:
        f"{RESULTS}/logs/fid_stats/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fid_stats/{{dataset}}.tsv"
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=GPU,
    conda:
        CONDA_ENV
    shell:
        "python -m blurbench fid-stats --data {input.test:q} --n {params.n} --out {output.stats:q} "
        "--batch-size {params.batch_size} --device {DEVICE} --threads {threads} > {log:q} 2>&1"


rule baselines:
    """Trivial baselines and the blur ladder of one dataset's test split, scored like the runs."""
    input:
        train=f"{DATA}/train.npy",
        test=f"{DATA}/test.npy",
        fid_stats=fid_stats_input,
    output:
        metrics=f"{BASELINES}/metrics.csv",
    params:
        spec=baseline_spec,
        data_dir=lambda wc, input: os.path.dirname(input.test),
        fid_flag=lambda wc, input: f"--fid-stats {input.fid_stats}" if input.fid_stats else "",
    threads: THREADS
    log:
        f"{RESULTS}/logs/baselines/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/baselines/{{dataset}}.tsv"
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=GPU,
    conda:
        CONDA_ENV
    shell:
        "python -m blurbench baselines --spec {params.spec:q} --data {params.data_dir:q} {params.fid_flag} "
        "--out {output.metrics:q} --threads {threads} --device {DEVICE} > {log:q} 2>&1"


rule run_grid:
    """The expanded grid (one row per run with its parameters) and the effective config, for provenance."""
    output:
        runs=report(f"{RESULTS}/runs.tsv", category="Provenance", labels={"file": "runs.tsv"},
                    caption="../report/provenance_runs.rst"),
        config=report(f"{RESULTS}/config_used.yaml", category="Provenance",
                      labels={"file": "config_used.yaml"}, caption="../report/provenance_config.rst"),
    params:
        grid=lambda wc: json.dumps(GRID.run_rows(), sort_keys=True),
        config=lambda wc: json.dumps(GRID.config, sort_keys=True),
    localrule: True
    run:
        from blurbench.config import write_grid_files

        write_grid_files(GRID, output.runs, output.config)


rule fetch_weights:
    """Download every pretrained network the config needs into the torch hub cache (run it on a
    login node with internet; compute nodes then find the weights offline)."""
    params:
        names=lambda wc: " ".join(weights_needed()),
    log:
        f"{RESULTS}/logs/fetch_weights.log",
    localrule: True
    conda:
        CONDA_ENV
    shell:
        "python -m blurbench fetch-weights {params.names} 2>&1 | tee {log:q}"
