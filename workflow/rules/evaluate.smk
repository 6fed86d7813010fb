# Evaluate each trained run on its test split, then gather every run and every dataset's
# baselines into results/metrics.csv (columns: blurbench/results_schema.py).


rule evaluate:
    input:
        unpack(flow_eval_input),
        model=RUN_FILE["model"],
        train_log=RUN_FILE["train_log"],
        test=SPLIT["test"],
        fid_stats=fid_stats_input,
    output:
        **EVAL_FILE,
    log:
        layout.log_file("evaluate", RUN_JOB),
    benchmark:
        layout.benchmark_file("evaluate", RUN_JOB)
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
        other_flag=lambda wc, input: f"--other-data {os.path.dirname(input.other)}" if "other" in input.keys() else "",
    shell:
        "python -m blurbench evaluate --spec {params.spec:q} --model {input.model:q} "
        "--data {params.data_dir:q} {params.fid_flag} {params.other_flag} "
        "--train-log {input.train_log:q} --out {params.out_dir:q} "
        "--threads {threads} --device {DEVICE} > {log:q} 2>&1"


rule aggregate:
    input:
        all_metric_files(),
    output:
        layout.metrics_csv(),
    log:
        layout.log_file("aggregate"),
    conda:
        CONDA_ENV
    shell:
        "python -m blurbench aggregate --out {output:q} {input:q} > {log:q} 2>&1"
