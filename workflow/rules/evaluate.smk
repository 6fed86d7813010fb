# Evaluate each trained run on its test split, then gather every run and every dataset's
# baselines into results/metrics.csv (columns: blurbench/results_schema.py).


rule evaluate:
    input:
        model=f"{RUN}/model.pt",
        train_log=f"{RUN}/train_log.csv",
        test=f"{DATA}/test.npy",
        fid_stats=fid_stats_input,
        baselines=f"{BASELINES}/metrics.csv",
    output:
        metrics=f"{RUN}/eval/metrics.csv",
        per_image=f"{RUN}/eval/per_image.csv",
        features=f"{RUN}/eval/features.npz",
        examples=f"{RUN}/eval/examples.npz",
        spectra=f"{RUN}/eval/spectra.npz",
        recon=f"{RUN}/eval/recon.png",
        samples=f"{RUN}/eval/samples.png",
        provenance=f"{RUN}/eval/provenance.json",
    params:
        spec=eval_spec,
        data_dir=lambda wc, input: os.path.dirname(input.test),
        out_dir=lambda wc, output: os.path.dirname(output.metrics),
        fid_flag=lambda wc, input: f"--fid-stats {input.fid_stats}" if input.fid_stats else "",
    threads: THREADS
    log:
        f"{RESULTS}/logs/evaluate/{{dataset}}/{{variant}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{dataset}}/{{variant}}/seed{{seed}}.tsv"
    resources:
        mem_mb=lambda wc, attempt: 6000 * attempt,
        runtime=lambda wc, attempt: 60 * attempt,
        gpu=GPU,
    conda:
        CONDA_ENV
    shell:
        "python -m blurbench evaluate --spec {params.spec:q} --model {input.model:q} "
        "--data {params.data_dir:q} {params.fid_flag} --baselines {input.baselines:q} --train-log {input.train_log:q} --out {params.out_dir:q} "
        "--threads {threads} --device {DEVICE} > {log:q} 2>&1"


rule aggregate:
    input:
        all_metric_files(),
    output:
        f"{RESULTS}/metrics.csv",
    log:
        f"{RESULTS}/logs/aggregate.log",
    conda:
        CONDA_ENV
    shell:
        "python -m blurbench aggregate --out {output:q} {input:q} > {log:q} 2>&1"
