# Conditional flows for SR (experiments.flows): their runs train and evaluate through the same rules as
# the VAE's (the method plugin's TASK says which), and their tables come from the tables rule; here only
# what is the flows' own: the paired comparison of artifact rates and the samples figure.


rule comparison_flows:
    """Each coupling's artifact rate per condition set against the reference's, paired by LR input
    (blurbench.comparison.compare_flows)."""
    input:
        files_of(FLOWS_COMPARISON_FILES),
    output:
        csv=layout.table_file("comparison_flows", "csv"),
        md=layout.table_file("comparison_flows", "md"),
        tex=layout.table_file("comparison_flows", "tex"),
        html=report(
            layout.table_file("comparison_flows", "html"),
            caption="../report/table_comparison_flows.rst",
            category="Comparison",
            labels={"table": "comparison_flows"},
        ),
    log:
        layout.log_file("comparison_flows"),
    benchmark:
        layout.benchmark_file("comparison_flows")
    conda:
        CONDA_ENV
    params:
        files=json.dumps(FLOWS_COMPARISON_FILES, sort_keys=True),
        main=json.dumps({k: FLOWS[k] for k in ("datasets", "methods", "reference")} if FLOWS else {}, sort_keys=True),
        n_boot=GRID.config["evaluate"]["n_boot"],
        n_boot_set=GRID.config["evaluate"]["n_boot_set"],
        out_dir=lambda wc, output: os.path.dirname(output.csv),
    shell:
        "python -m blurbench comparison --name comparison_flows --files {params.files:q} --main {params.main:q} "
        "--out {params.out_dir:q} --n-boot {params.n_boot} --n-boot-set {params.n_boot_set} > {log:q} 2>&1"


rule figures_flows:
    """Per condition set, the LR inputs and one sample of each flow method, artifacts in red (blurbench.flows.figure)."""
    input:
        files_of(FLOWS_FIGURE_FILES),
    output:
        png=[
            report(
                layout.figure_file(n, "png"),
                caption="../report/figure_flows.rst",
                category="Figures",
                subcategory="Conditional flows",
                labels={"figure": n},
            )
            for n in FLOWS_FIGURES
        ],
        pdf=[layout.figure_file(n, "pdf") for n in FLOWS_FIGURES],
    log:
        layout.log_file("figures_flows"),
    conda:
        CONDA_ENV
    params:
        files=json.dumps(FLOWS_FIGURE_FILES, sort_keys=True),
        seed=FIGURE_SEED,
        out_dir=lambda wc, output: os.path.dirname(output.pdf[0]) if output.pdf else "",
    shell:
        "python -m blurbench figures-flows --files {params.files:q} --out {params.out_dir:q} > {log:q} 2>&1"
