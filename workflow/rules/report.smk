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
        rules.run_grid.output,


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
