# Tables and figures from results/metrics.csv and the per-run artefacts, marked for the HTML report
# (`snakemake --report results/report.html`; captions in workflow/report/). File names come from
# blurbench.tables.table_names / blurbench.figures.figure_names, the same lists the code writes.
import json

rule tables:
    input:
        metrics=f"{RESULTS}/metrics.csv",
    output:
        csv=expand(f"{RESULTS}/tables/{{name}}.csv", name=TABLES),
        md=expand(f"{RESULTS}/tables/{{name}}.md", name=TABLES),
        tex=expand(f"{RESULTS}/tables/{{name}}.tex", name=TABLES),
        html=[report(f"{RESULTS}/tables/{n}.html", caption=_table_caption(n), category="Tables",
                     labels={"table": n}) for n in TABLES],
        adequacy=f"{RESULTS}/tables/adequacy.csv",
    params:
        experiments=json.dumps(EXPERIMENTS, sort_keys=True),
        min_gain_db=GRID.config["evaluate"]["min_gain_db"],
        out_dir=lambda wc, output: os.path.dirname(output.csv[0]),
    log:
        f"{RESULTS}/logs/tables.log",
    conda:
        CONDA_ENV
    shell:
        "python -m blurbench tables --metrics {input.metrics:q} --out {params.out_dir:q} "
        "--experiments {params.experiments:q} --min-gain-db {params.min_gain_db} > {log:q} 2>&1"


rule comparison:
    """Every method against the reference, paired, with bootstrap CIs (blurbench.comparison)."""
    input:
        per_image=[f"{layout.run_dir(d, m, s)}/eval/per_image.csv" for d in MAIN["datasets"]
                   for m in MAIN["methods"] for s in GRID.config["seeds"]],
        features=[f"{layout.run_dir(d, m, s)}/eval/features.npz" for d in MAIN["datasets"]
                  for m in MAIN["methods"] for s in GRID.config["seeds"]],
        baselines=[f"{layout.baselines_dir(d)}/metrics.csv" for d in MAIN["datasets"]],
        fid_stats=[layout.fid_stats_path(d) for d in MAIN["datasets"]] if GRID.config["evaluate"]["fid"] else [],
    output:
        csv=f"{RESULTS}/tables/comparison.csv",
        md=f"{RESULTS}/tables/comparison.md",
        tex=f"{RESULTS}/tables/comparison.tex",
        html=report(f"{RESULTS}/tables/comparison.html", caption="../report/table_comparison.rst",
                    category="Comparison", labels={"table": "comparison"}),
    params:
        main=json.dumps({k: MAIN[k] for k in ("datasets", "methods", "reference")}, sort_keys=True),
        seeds=",".join(map(str, GRID.config["seeds"])),
        n_boot=GRID.config["evaluate"]["n_boot"],
        n_boot_set=GRID.config["evaluate"]["n_boot_set"],
        out_dir=lambda wc, output: os.path.dirname(output.csv),
    log:
        f"{RESULTS}/logs/comparison.log",
    benchmark:
        f"{RESULTS}/benchmarks/comparison.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m blurbench comparison --main {params.main:q} --seeds {params.seeds} --results {RESULTS} "
        "--out {params.out_dir:q} --n-boot {params.n_boot} --n-boot-set {params.n_boot_set} > {log:q} 2>&1"


rule figures:
    input:
        metrics=f"{RESULTS}/metrics.csv",
        examples=[f"{r}/eval/examples.npz" for r in FIGURE_RUNS],
        spectra=[f"{r}/eval/spectra.npz" for r in FIGURE_RUNS],
        train_logs=[f"{r}/train_log.csv" for r in FIGURE_RUNS],
        probes=[f"{r}/probe.npz" for r in KERNEL_RUNS],
    output:
        png=[report(f"{RESULTS}/figures/{n}.png", caption=_figure_caption(n), category="Figures",
                    subcategory=FIGURE_SUBCATEGORY[n.split("_")[0]], labels={"figure": n})
             for n in FIGURES],
        pdf=expand(f"{RESULTS}/figures/{{name}}.pdf", name=FIGURES),
    params:
        experiments=json.dumps(EXPERIMENTS, sort_keys=True),
        kernel_methods=",".join(KERNEL_METHODS),
        seed=FIGURE_SEED,
        results=lambda wc, input: os.path.dirname(input.metrics),
        out_dir=lambda wc, output: os.path.dirname(output.pdf[0]),
    log:
        f"{RESULTS}/logs/figures.log",
    conda:
        CONDA_ENV
    shell:
        "python -m blurbench figures --results {params.results:q} --metrics {input.metrics:q} "
        "--out {params.out_dir:q} --experiments {params.experiments:q} "
        "--kernel-methods {params.kernel_methods:q} --seed {params.seed} > {log:q} 2>&1"


rule timing:
    """CPU seconds per rule and per job (results/timing.csv), from the jobs' benchmark files."""
    input:
        [f"{RESULTS}/benchmarks/{rule}/{layout.run_id(s.dataset, s.variant, s.seed)}.tsv"
         for s in GRID.runs.values() for rule in ("train", "evaluate")]
        + [f"{RESULTS}/benchmarks/{rule}/{d}.tsv" for d in RUN_DATASETS
           for rule in ("prepare", "baselines") + (("fid_stats",) if GRID.config["evaluate"]["fid"] else ())]
        + [f"{RESULTS}/benchmarks/comparison.tsv"],
    output:
        f"{RESULTS}/timing.csv",
    log:
        f"{RESULTS}/logs/timing.log",
    conda:
        CONDA_ENV
    shell:
        "python -m blurbench timing --root {RESULTS}/benchmarks --out {output:q} {input:q} > {log:q} 2>&1"


rule all_tables:
    input:
        rules.comparison.output,
        rules.tables.output,
        rules.run_grid.output,
        rules.timing.output,


onsuccess:
    # One warning line when some run did not learn (tables mark it with a footnote); not an error.
    _adequacy = f"{RESULTS}/tables/adequacy.csv"
    if os.path.exists(_adequacy):
        import csv

        with open(_adequacy) as _f:
            _bad = [r["run_id"] for r in csv.DictReader(_f) if r["undertrained"] == "True"]
        if _bad:
            print(f"WARNING: {len(_bad)} undertrained run(s), less than "
                  f"{GRID.config['evaluate']['min_gain_db']:g} dB above the best trivial baseline: "
                  + ", ".join(_bad), file=sys.stderr)


rule all_figures:
    input:
        rules.figures.output,
