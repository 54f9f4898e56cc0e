"""Config validation, the run grid, code hashes, and agreement of pyproject.toml with environment.yml."""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

from sa2c import codehash
from sa2c.config import (
    TrainConfig,
    check_workflow_config,
    config_hash,
    experiment_runs,
    method_variants,
    resolve_train_config,
)

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load(open(ROOT / "workflow" / "schemas" / "config.schema.yaml"))


def load(name="config.yaml"):
    return yaml.safe_load(open(ROOT / "config" / name))


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml", "test.yaml"])
def test_shipped_configs_are_valid(name):
    config = load(name)
    jsonschema.validate(config, SCHEMA)
    check_workflow_config(config)


def test_paper_config_has_the_papers_settings():
    config = load("paper.yaml")
    assert config["folds"] == [0, 1, 2, 3, 4]
    assert config["datasets"]["rc15"]["train"]["lr"] == 0.01
    assert config["datasets"]["retailrocket"]["train"]["lr"] == 0.005
    cfg = resolve_train_config(config, "rc15", "gru", "sa2c", 0)
    assert (cfg.gamma, cfg.reward_click, cfg.reward_buy, cfg.n_negatives, cfg.batch_size, cfg.embedding_dim) == (
        0.5, 0.2, 1.0, 10, 256, 64)
    assert cfg.warmup_steps == 15000 and cfg.warmup_fraction is None and cfg.eval_every == 4000


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda c: c["train"].update(learning_rate=0.1), "learning_rate"),
        (lambda c: c["train"].update(lr=-1.0), "lr"),
        (lambda c: c["methods"]["snqn"].update(n_negatives=0), "n_negatives"),
        (lambda c: c.update(encoders=["gru", "transformer"]), "transformer"),
        (lambda c: c.update(unknown_key=1), "unknown_key"),
        (lambda c: c["datasets"]["rc15-synth"].update(format="csv"), "csv"),
    ],
)
def test_bad_values_are_rejected_naming_the_key(mutate, key):
    config = load()
    mutate(config)
    with pytest.raises(jsonschema.ValidationError) as err:
        jsonschema.validate(config, SCHEMA)
    assert key in str(err.value)


def test_cross_references_are_checked():
    config = load()
    config["experiments"]["main_methods"].append("sa3c")
    with pytest.raises(ValueError, match="sa3c"):
        check_workflow_config(config)
    config = load()
    config["paper_datasets"]["rc15"] = "rc16"
    with pytest.raises(ValueError, match="rc16"):
        check_workflow_config(config)


def test_snakemake_stops_on_a_bad_config_naming_the_key(tmp_path):
    bad = load()
    bad["train"]["epochz"] = 3
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--snakefile", str(ROOT / "Snakefile"),
                             "--directory", str(tmp_path), "--configfile", str(path)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "epochz" in result.stdout + result.stderr


def test_sweeps_reuse_the_base_variant_and_nothing_is_listed_twice():
    config = load()
    variants = method_variants(config)
    # r_neg 0.0 and |N| = 10 are SNQN's own settings: no duplicate variant
    assert "snqn_rneg0" not in variants and "snqn_neg10" not in variants
    assert variants["snqn_rneg-0.5"] == {"method": "snqn", "r_negative": -0.5}
    assert variants["snqn_neg50"] == {"method": "snqn", "n_negatives": 50}
    runs = experiment_runs(config)
    assert ("rc15-synth", "gru", "snqn") in runs["table6"]
    assert len(runs["table2"]) == 4 * 5 and len(set(runs["table2"])) == 20
    assert runs["figure4"][0][0] == "retailrocket-synth"


def test_train_config_layers_and_identity():
    config = load()
    cfg = resolve_train_config(config, "retailrocket-synth", "sasrec", "dqn", 3)
    assert (cfg.lr, cfg.method, cfg.r_negative, cfg.encoder, cfg.seed) == (0.005, "dqn", -1.0, "sasrec", 3)
    assert config_hash(cfg) == config_hash(TrainConfig(**cfg.to_dict()))
    assert config_hash(cfg) != config_hash(TrainConfig(**{**cfg.to_dict(), "gamma": 0.6}))
    # where a run executes is not part of its identity
    assert config_hash(cfg) == config_hash(TrainConfig(**{**cfg.to_dict(), "threads": 2, "device": "cpu"}))
    with pytest.raises(ValueError, match="unknown training config key"):
        TrainConfig.from_dict({"lrr": 0.1})


def test_code_hash_separates_stages(tmp_path, monkeypatch):
    copy = tmp_path / "sa2c"
    shutil.copytree(codehash.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(codehash, "PACKAGE", copy)
    before = {stage: codehash.code_hash(stage) for stage in codehash.STAGES}
    template = next((copy / "report" / "templates").iterdir())
    template.write_text(template.read_text() + "\n% changed\n")
    after_template = {stage: codehash.code_hash(stage) for stage in codehash.STAGES}
    assert after_template["report"] != before["report"]
    assert after_template["train"] == before["train"] and after_template["data"] == before["data"]
    (copy / "losses.py").write_text((copy / "losses.py").read_text() + "\n# changed\n")
    assert codehash.code_hash("train") != after_template["train"]
    assert codehash.code_hash("data") == before["data"]


def _names(requirements):
    return {re.split(r"[<>=!~ ]", r.strip(), maxsplit=1)[0].lower(): r.replace(" ", "") for r in requirements}


def test_environment_yml_agrees_with_pyproject():
    project = tomllib.load(open(ROOT / "pyproject.toml", "rb"))["project"]
    extras = project["optional-dependencies"]
    wanted = _names(project["dependencies"] + extras["test"] + extras["slurm"])  # environment.yml has the extras too
    env = yaml.safe_load(open(ROOT / "environment.yml"))["dependencies"]
    listed = [d for d in env if isinstance(d, str)] + [p for d in env if isinstance(d, dict) for p in d["pip"]]
    have = _names([d for d in listed if not d.startswith(("python", "pip"))] + [d for d in listed if d.startswith("pip:")])
    assert have == wanted
    assert wanted["torch"] == "torch==2.13.0" and wanted["snakemake"] == "snakemake>=9.11,<10"


def test_longest_training_jobs_are_scheduled_first(tmp_path):
    """Training jobs carry a priority = estimated cost (encoder x method x epochs x folds x seeds)."""
    cfg = load()
    result = subprocess.run([sys.executable, "-m", "snakemake", "all", "-n", "--cores", "2", "--snakefile",
                             str(ROOT / "Snakefile"), "--directory", str(tmp_path), "--configfile",
                             str(ROOT / "config" / "config.yaml")], capture_output=True, text=True, check=True)
    pattern = r"wildcards: dataset=rc15-synth, encoder=(\w+), method=([\w.-]+)\n\s+priority: ([\d.]+)"
    found = {(e, m): float(p) for e, m, p in re.findall(pattern, result.stdout + result.stderr)}
    runs = len(cfg["folds"]) * len(cfg["seeds"])
    epochs = cfg["train"]["epochs"]
    assert found[("nextitnet", "sa2c")] == pytest.approx(4.5 * 2.3 * epochs * runs)  # the costliest group
    assert found[("gru", "base")] == pytest.approx(1.0 * 1.0 * epochs * runs)
    assert max(found.values()) == found[("nextitnet", "sa2c")] > found[("sasrec", "snqn")] > found[("gru", "base")]
