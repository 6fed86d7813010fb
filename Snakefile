# blurbench: reproduce "Explicitly Minimizing the Blur Error of Variational Autoencoders".
# Flow: config -> run grid -> prepare -> train -> evaluate -> aggregate -> tables / figures -> report.
# Default: `snakemake --cores 8 all_tables` (embedded data, offline, CPU).

configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        rules.all_tables.input,
        rules.all_figures.input,
