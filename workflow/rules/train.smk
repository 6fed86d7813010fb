# Train one VAE per (dataset, variant, seed). The checkpoint is not an output: a failed or killed
# job keeps it and a rerun resumes from it. The only param is the run's training identity.


rule train:
    input:
        **SPLIT,
    output:
        **RUN_FILE,
    log:
        layout.log_file("train", RUN_JOB),
    benchmark:
        layout.benchmark_file("train", RUN_JOB)
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 120 * attempt,
        gpu=GPU,
    params:
        spec=run_spec,
        data_dir=lambda wc, input: os.path.dirname(input.train),
        out_dir=lambda wc, output: os.path.dirname(output.model),
        checkpoint=layout.checkpoint_path("{dataset}", "{variant}", "{seed}"),
    shell:
        "python -m blurbench train --spec {params.spec:q} --data {params.data_dir:q} --out {params.out_dir:q} "
        "--checkpoint {params.checkpoint:q} --threads {threads} --device {DEVICE} > {log:q} 2>&1"
