import os

# blurbench: reproduce "Explicitly Minimizing the Blur Error of Variational Autoencoders".
# Flow: config -> run grid -> prepare -> train -> evaluate -> aggregate -> tables / figures -> report.
# Default: `snakemake --cores 8 all_tables` (embedded data, offline, CPU).


# The embedded default, unless the user gives --configfile: Snakemake would otherwise merge the
# two configs key by key and a paper run would inherit the default's datasets.
if not workflow.overwrite_configfiles:

    configfile: os.path.join(workflow.basedir, "config", "config.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/budget.smk"
include: "workflow/rules/sr.smk"
include: "workflow/rules/flows.smk"
include: "workflow/rules/report.smk"


# Light steps run where Snakemake runs (on a cluster: the login node), not as jobs.
localrules:
    all,
    all_tables,
    all_figures,
    aggregate,
    tables,
    comparison,
    comparison_sr,
    comparison_flows,
    budget,
    convergence,
    timing,
    figures,
    figures_sr,
    figures_flows,


rule all:
    default_target: True
    input:
        rules.all_tables.input,
        rules.all_figures.input,
        rules.all_toys.input,
