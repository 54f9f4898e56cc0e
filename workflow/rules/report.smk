# Reporting: tidy metrics, one LaTeX + CSV table per paper table (Jinja2), the figures, and one LaTeX document.


rule aggregate:
    input:
        run_metrics(grid.all_run_groups(config)),
    output:
        "results/metrics.csv",
    log:
        "logs/report/aggregate.log",
    params:
        code=code_hash("report"),
    conda:
        CONDA_ENV
    shell:
        "python -m sa2c.cli aggregate --out {output:q} {input:q} > {log:q} 2>&1"


rule table:
    input:
        table_inputs,
    output:
        tex="paper_tables/{table}.tex",
        csv="paper_tables/{table}.csv",
    log:
        "logs/report/{table}.log",
    params:
        config=workflow_config_json,
        code=code_hash("report"),
    conda:
        CONDA_ENV
    shell:
        "python -m sa2c.cli table --name {wildcards.table} --config-json {params.config:q} --out-tex {output.tex:q} "
        "--out-csv {output.csv:q} {input:q} > {log:q} 2>&1"


rule tables_document:
    input:
        expand("paper_tables/{table}.tex", table=TABLES),
    output:
        "paper_tables/tables.tex",
    log:
        "logs/report/tables_document.log",
    params:
        code=code_hash("report"),
    conda:
        CONDA_ENV
    shell:
        "python -m sa2c.cli document --out {output:q} {input:q} > {log:q} 2>&1"


rule tables_pdf:
    input:
        "paper_tables/tables.tex",
    output:
        "paper_tables/tables.pdf",
    log:
        "logs/report/tables_pdf.log",
    params:
        code=code_hash("report"),
    conda:
        CONDA_ENV
    shell:
        "python -m sa2c.cli pdf --tex {input:q} --out {output:q} > {log:q} 2>&1"


rule figure:
    input:
        figure_inputs,
    output:
        pdf="figures/{figure}.pdf",
        png="figures/{figure}.png",
    log:
        "logs/report/{figure}.log",
    params:
        config=workflow_config_json,
        code=code_hash("report"),
    conda:
        CONDA_ENV
    shell:
        "python -m sa2c.cli figure --name {wildcards.figure} --config-json {params.config:q} --out-pdf {output.pdf:q} "
        "--out-png {output.png:q} {input:q} > {log:q} 2>&1"
