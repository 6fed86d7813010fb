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
    params:
        experiments=json.dumps(EXPERIMENTS, sort_keys=True),
        out_dir=lambda wc, output: os.path.dirname(output.csv[0]),
    log:
        f"{RESULTS}/logs/tables.log",
    conda:
        CONDA_ENV
    shell:
        "python -m blurbench tables --metrics {input.metrics:q} --out {params.out_dir:q} "
        "--experiments {params.experiments:q} > {log:q} 2>&1"


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


rule all_tables:
    input:
        rules.tables.output,


rule all_figures:
    input:
        rules.figures.output,
