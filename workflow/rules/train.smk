# Train one VAE per (dataset, variant, seed). The checkpoint is not an output: a failed or killed
# job keeps it and a rerun resumes from it.


rule train:
    input:
        train=f"{RESULTS}/data/{{dataset}}/train.npy",
        test=f"{RESULTS}/data/{{dataset}}/test.npy",
    output:
        model=f"{RESULTS}/runs/{{dataset}}/{{variant}}/seed{{seed}}/model.pt",
        log_csv=f"{RESULTS}/runs/{{dataset}}/{{variant}}/seed{{seed}}/train_log.csv",
        probe=f"{RESULTS}/runs/{{dataset}}/{{variant}}/seed{{seed}}/probe.npz",
    params:
        spec=run_spec,
        data_dir=lambda wc, input: os.path.dirname(input.train),
        out_dir=lambda wc, output: os.path.dirname(output.model),
        checkpoint=f"{RESULTS}/checkpoints/{{dataset}}/{{variant}}/seed{{seed}}/last.pt",
    threads: GRID.config["threads"]
    log:
        f"{RESULTS}/logs/train/{{dataset}}/{{variant}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{dataset}}/{{variant}}/seed{{seed}}.tsv"
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 120 * attempt,
        gpu=GRID.config["gpu"],
    conda:
        CONDA_ENV
    shell:
        "python -m blurbench train --spec {params.spec:q} --data {params.data_dir:q} --out {params.out_dir:q} "
        "--checkpoint {params.checkpoint:q} --threads {threads} > {log:q} 2>&1"
