# Evaluate each trained run on its test split, then gather every run into results/metrics.csv.


rule evaluate:
    input:
        model=f"{RESULTS}/runs/{{dataset}}/{{variant}}/seed{{seed}}/model.pt",
        test=f"{RESULTS}/data/{{dataset}}/test.npy",
        fid_stats=fid_stats_input,
    output:
        metrics=f"{RESULTS}/runs/{{dataset}}/{{variant}}/seed{{seed}}/eval/metrics.csv",
        examples=f"{RESULTS}/runs/{{dataset}}/{{variant}}/seed{{seed}}/eval/examples.npz",
        spectra=f"{RESULTS}/runs/{{dataset}}/{{variant}}/seed{{seed}}/eval/spectra.npz",
        recon=f"{RESULTS}/runs/{{dataset}}/{{variant}}/seed{{seed}}/eval/recon.png",
        samples=f"{RESULTS}/runs/{{dataset}}/{{variant}}/seed{{seed}}/eval/samples.png",
    params:
        spec=run_spec,
        data_dir=lambda wc, input: os.path.dirname(input.test),
        out_dir=lambda wc, output: os.path.dirname(output.metrics),
        fid_flag=lambda wc, input: f"--fid-stats {input.fid_stats}" if input.fid_stats else "",
    threads: GRID.config["threads"]
    log:
        f"{RESULTS}/logs/evaluate/{{dataset}}/{{variant}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{dataset}}/{{variant}}/seed{{seed}}.tsv"
    resources:
        mem_mb=lambda wc, attempt: 6000 * attempt,
        runtime=lambda wc, attempt: 60 * attempt,
        gpu=GRID.config["gpu"],
    conda:
        CONDA_ENV
    shell:
        "python -m blurbench evaluate --spec {params.spec:q} --model {input.model:q} "
        "--data {params.data_dir:q} {params.fid_flag} --out {params.out_dir:q} "
        "--threads {threads} > {log:q} 2>&1"


rule aggregate:
    input:
        all_run_metrics(),
    output:
        f"{RESULTS}/metrics.csv",
    log:
        f"{RESULTS}/logs/aggregate.log",
    conda:
        CONDA_ENV
    shell:
        "python -m blurbench aggregate --out {output:q} {input:q} > {log:q} 2>&1"
