# Training: one job trains every fold and seed of a (dataset, encoder, method) group, so that the process start-up
# (importing torch, loading data) is paid once per group; each run still writes its own metrics.json.


rule train:
    input:
        fold_files,
    output:
        expand(
            "results/runs/{{dataset}}/{{encoder}}/{{method}}/fold{fold}/seed{seed}/metrics.json", fold=FOLDS, seed=SEEDS
        ),
    log:
        "logs/runs/{dataset}/{encoder}/{method}/train.log",
    benchmark:
        "benchmarks/out/runs/{dataset}/{encoder}/{method}/train.tsv"
    params:
        spec=train_spec,
        folds=",".join(map(str, FOLDS)),
        code=code_hash("train"),
    threads: config["train"].get("threads", 1)
    priority: train_priority
    resources:
        gpu=train_gpus,
    conda:
        CONDA_ENV
    shell:
        "python -m sa2c.cli train --data-dir results/data/{wildcards.dataset} --run-dir results/runs/{wildcards.dataset}/{wildcards.encoder}/{wildcards.method} "
        "--log-dir logs/runs/{wildcards.dataset}/{wildcards.encoder}/{wildcards.method} --folds {params.folds} "
        "--spec {params.spec:q} --code-hash {params.code} --threads {threads} > {log:q} 2>&1"
