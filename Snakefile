# Reproduction workflow for "Supervised Advantage Actor-Critic for Recommender Systems" (SNQN, SA2C vs SQN, SAC).
#   snakemake --cores 8 all                        every table and figure
#   snakemake --cores 8 paper_tables/table2.tex    one table (only the runs it needs)
from snakemake.utils import min_version, validate

min_version("9.11")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True
