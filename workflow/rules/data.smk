# Data stage: raw files -> filtered events + Table 1 statistics -> five folds of transitions.


rule raw_rc15:
    output:
        "resources/raw/{dataset}/yoochoose-clicks.dat",
        "resources/raw/{dataset}/yoochoose-buys.dat",
    log:
        "logs/raw/{dataset}.log",
    params:
        spec=raw_spec,
    conda:
        CONDA_ENV
    shell:
        "python -m sa2c.cli raw --dataset {wildcards.dataset} --spec {params.spec:q} --out-dir resources/raw/{wildcards.dataset} > {log:q} 2>&1"


rule raw_retailrocket:
    output:
        "resources/raw/{dataset}/events.csv",
    log:
        "logs/raw/{dataset}.log",
    params:
        spec=raw_spec,
    conda:
        CONDA_ENV
    shell:
        "python -m sa2c.cli raw --dataset {wildcards.dataset} --spec {params.spec:q} --out-dir resources/raw/{wildcards.dataset} > {log:q} 2>&1"


rule preprocess:
    input:
        raw_files,
    output:
        events="results/data/{dataset}/events.npz",
        stats="results/data/{dataset}/stats.json",
    log:
        "logs/data/{dataset}/preprocess.log",
    params:
        spec=dataset_spec,
        code=code_hash("data"),
    conda:
        CONDA_ENV
    shell:
        "python -m sa2c.cli preprocess --dataset {wildcards.dataset} --spec {params.spec:q} --raw-dir resources/raw/{wildcards.dataset} "
        "--out-dir results/data/{wildcards.dataset} > {log:q} 2>&1"


rule folds:
    input:
        "results/data/{dataset}/events.npz",
    output:
        expand("results/data/{{dataset}}/fold{fold}/{split}.npz", fold=range(5), split=["train", "valid", "test"]),
    log:
        "logs/data/{dataset}/folds.log",
    params:
        seed=config["splits"].get("seed", 0),
        code=code_hash("data"),
    conda:
        CONDA_ENV
    shell:
        "python -m sa2c.cli folds --events {input:q} --out-dir results/data/{wildcards.dataset} --seed {params.seed} > {log:q} 2>&1"
