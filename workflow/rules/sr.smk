# The super-resolution task (experiments.sr): its runs train and evaluate through the same rules as
# the VAE's (the method plugin's TASK says which); here only what is the SR task's own.


rule comparison_sr:
    """Every SR method against the SR reference (mse), paired, with CIs (blurbench.comparison)."""
    input:
        files_of(SR_COMPARISON_FILES),
    output:
        csv=layout.table_file("comparison_sr", "csv"),
        md=layout.table_file("comparison_sr", "md"),
        tex=layout.table_file("comparison_sr", "tex"),
        html=report(
            layout.table_file("comparison_sr", "html"),
            caption="../report/table_comparison_sr.rst",
            category="Comparison",
            labels={"table": "comparison_sr"},
        ),
    log:
        layout.log_file("comparison_sr"),
    benchmark:
        layout.benchmark_file("comparison_sr")
    conda:
        CONDA_ENV
    params:
        files=json.dumps(SR_COMPARISON_FILES, sort_keys=True),
        main=json.dumps({k: SR[k] for k in ("datasets", "methods", "reference")} if SR else {}, sort_keys=True),
        n_boot=GRID.config["evaluate"]["n_boot"],
        n_boot_set=GRID.config["evaluate"]["n_boot_set"],
        out_dir=lambda wc, output: os.path.dirname(output.csv),
    shell:
        "python -m blurbench comparison --name comparison_sr --files {params.files:q} --main {params.main:q} "
        "--out {params.out_dir:q} --n-boot {params.n_boot} --n-boot-set {params.n_boot_set} > {log:q} 2>&1"


rule figures_sr:
    """LR, A⁺y, each SR method's output and the HR image, per SR dataset (blurbench.figures.sr_qualitative)."""
    input:
        files_of(SR_FIGURE_FILES),
    output:
        png=[
            report(
                layout.figure_file(n, "png"),
                caption="../report/figure_qualitative_sr.rst",
                category="Figures",
                subcategory="Super-resolution",
                labels={"figure": n},
            )
            for n in SR_FIGURES
        ],
        pdf=[layout.figure_file(n, "pdf") for n in SR_FIGURES],
    log:
        layout.log_file("figures_sr"),
    conda:
        CONDA_ENV
    params:
        files=json.dumps(SR_FIGURE_FILES),  # in the config's method order: the figure's rows
        seed=FIGURE_SEED,
        out_dir=lambda wc, output: os.path.dirname(output.pdf[0]) if output.pdf else "",
    shell:
        "python -m blurbench figures-sr --files {params.files:q} --out {params.out_dir:q} > {log:q} 2>&1"
