# Prepare each dataset once into uint8 arrays that training memory-maps.


rule prepare:
    output:
        train=f"{RESULTS}/data/{{dataset}}/train.npy",
        test=f"{RESULTS}/data/{{dataset}}/test.npy",
        meta=f"{RESULTS}/data/{{dataset}}/meta.json",
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
        test=f"{RESULTS}/data/{{dataset}}/test.npy",
    output:
        stats=f"{RESULTS}/fid_stats/{{dataset}}_test.npz",
    params:
        n=lambda wc: GRID.config["evaluate"]["n_fid"],
        batch_size=lambda wc: GRID.config["evaluate"]["batch_size"],
        device=lambda wc: GRID.config["device"],
    threads: GRID.config["threads"]
    log:
        f"{RESULTS}/logs/fid_stats/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fid_stats/{{dataset}}.tsv"
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=GRID.config["gpu"],
    conda:
        CONDA_ENV
    shell:
        "python -m blurbench fid-stats --data {input.test:q} --n {params.n} --out {output.stats:q} "
        "--batch-size {params.batch_size} --device {params.device} --threads {threads} > {log:q} 2>&1"



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
