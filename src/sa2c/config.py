"""Typed configuration: the training hyperparameters of one run, and the experiment grid.

`TrainConfig` holds every hyperparameter of one training run; its defaults equal the paper's (and the authors'
code's). The workflow config (config/*.yaml, validated by workflow/schemas/config.schema.yaml) is turned into
TrainConfigs by `resolve_train_config`, and into the list of runs behind each table and figure by `experiment_runs`.
Both the Snakefile and the reporting code call these, so no run is listed by hand twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METHODS = ("ce", "sqn", "sac", "snqn", "sa2c", "dqn")
ENCODERS = ("gru", "caser", "nextitnet", "sasrec")
FORMATS = ("rc15", "retailrocket")
# Methods whose networks carry a Q head (evaluated on both heads); DQN has only the Q head.
Q_METHODS = ("sqn", "sac", "snqn", "sa2c", "dqn")


@dataclass
class TrainConfig:
    """Hyperparameters of one run. Defaults are the paper's settings (SPEC.md, "Methods")."""

    method: str = "ce"
    encoder: str = "gru"
    history: int = 10  # state length (items of history)
    embedding_dim: int = 64
    dropout: float = 0.1
    batch_size: int = 256
    lr: float = 0.01  # 0.01 on RC15, 0.005 on RetailRocket
    lr_actor: float = 0.001  # SA2C: the new Adam after the warm-up
    gamma: float = 0.5
    reward_click: float = 0.2
    reward_buy: float = 1.0
    r_negative: float = 0.0
    n_negatives: int = 10
    epochs: float = 50.0
    # SA2C warm-up T: `warmup_steps`, unless `warmup_fraction` (of all training steps) is set.
    warmup_steps: int = 15000
    warmup_fraction: float | None = None
    # Validation every `eval_every` steps, unless `evals_per_epoch` is set.
    eval_every: int = 4000
    evals_per_epoch: float | None = None
    # The checkpoint kept for each head: best validation value of "<event>/<metric>", event in click|purchase|mean.
    select_metric: str = "mean/ndcg@10"
    # Advantage clip (authors' code: clip_by_value(advantage, clip, 10)); the lower bound is a named quirk.
    advantage_clip_low: float = 0.0
    advantage_clip_high: float = 10.0
    # Off-policy correction (Table 5): ips = clip(pi/beta, ips_clip_low, ips_clip_high) ** smooth; 0 = none.
    smooth: float = 0.0
    ips_clip_low: float = 0.1
    ips_clip_high: float = 10.0
    # Quirks of the authors' code, each a named option with the code's default.
    behaviour_from: str = "all"  # item frequency beta(a) from "all" splits (code) or "train" only
    train_empty_state: bool = True  # first event of a session (empty history) is a training transition
    eval_empty_state: bool = True  # ... and is predicted in evaluation
    share_selector_pass: bool = True  # argmax selector for negatives reuses Q_main(s) of the forward pass
    eval_batch_size: int = 512
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 1
    checkpoint_every: int = 2000  # steps between resumable checkpoints (also written at every validation)

    def __post_init__(self) -> None:
        errors = []
        if self.method not in METHODS:
            errors.append(f"method={self.method!r} is not one of {', '.join(METHODS)}")
        if self.encoder not in ENCODERS:
            errors.append(f"encoder={self.encoder!r} is not one of {', '.join(ENCODERS)}")
        if self.lr <= 0 or self.lr_actor <= 0:
            errors.append(f"lr={self.lr} and lr_actor={self.lr_actor} must be > 0")
        if self.batch_size < 1:
            errors.append(f"batch_size={self.batch_size} must be >= 1")
        if self.n_negatives < 1 and self.method in ("snqn", "sa2c", "dqn"):
            errors.append(f"n_negatives={self.n_negatives} must be >= 1 for method {self.method}")
        if not 0 <= self.gamma <= 1:
            errors.append(f"gamma={self.gamma} must be in [0, 1]")
        if self.epochs <= 0:
            errors.append(f"epochs={self.epochs} must be > 0")
        if self.behaviour_from not in ("all", "train"):
            errors.append(f"behaviour_from={self.behaviour_from!r} must be 'all' or 'train'")
        if self.device not in ("auto", "cpu", "cuda"):
            errors.append(f"device={self.device!r} must be auto, cpu or cuda")
        event, _, metric = self.select_metric.partition("/")
        if event not in ("click", "purchase", "mean") or metric not in METRIC_NAMES:
            errors.append(f"select_metric={self.select_metric!r} must be '<click|purchase|mean>/<{'|'.join(METRIC_NAMES)}>'")
        if errors:
            raise ValueError("invalid training config: " + "; ".join(errors))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training config key(s): {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def heads(self) -> tuple[str, ...]:
        """Heads evaluated for this method (both heads come from the same run)."""
        if self.method == "ce":
            return ("supervised",)
        if self.method == "dqn":
            return ("q",)
        return ("supervised", "q")

    def relative_cost(self) -> float:
        """Rough training cost of this run relative to a GRU-CE run of the same length, for scheduling only.

        From step times measured at the default config's scale (one thread): per step, NextItNet ~4.5x GRU, SASRec
        ~1.2x, Caser ~0.9x; SQN/SAC ~2x CE (the target network and the selector pass), SNQN/SA2C/DQN ~2.3x.
        """
        encoder = {"gru": 1.0, "caser": 0.9, "nextitnet": 4.5, "sasrec": 1.2}[self.encoder]
        method = {"ce": 1.0, "sqn": 2.0, "sac": 2.0}.get(self.method, 2.3)
        return encoder * method * self.epochs


KS = (5, 10, 20)
METRIC_NAMES = tuple(f"{m}@{k}" for k in KS for m in ("hr", "ndcg")) + ("off_ndcg@10",)

# Settings that only decide where/how a run executes, not its numbers: left out of the run's identity hash.
NON_IDENTITY_KEYS = ("device", "threads", "eval_batch_size", "checkpoint_every")


def config_hash(cfg: TrainConfig) -> str:
    values = {k: v for k, v in cfg.to_dict().items() if k not in NON_IDENTITY_KEYS}
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------------------------
# The experiment grid


def _fmt_value(value: float) -> str:
    text = f"{value:g}"
    return text


def method_variants(config: dict) -> dict[str, dict[str, Any]]:
    """All named run variants: the configured `methods` plus those derived from the sweeps.

    A sweep value equal to the base variant's own setting reuses the base variant (no duplicate run).
    Derived names: `<base>_rneg<value>` (Table 6) and `<base>_neg<count>` (Figures 3-4).
    """
    variants = {name: dict(spec) for name, spec in config["methods"].items()}
    exp = config["experiments"]
    defaults = TrainConfig()
    nr = exp["negative_reward"]
    base = variants[nr["method"]]
    for value in nr["values"]:
        if float(value) != float(base.get("r_negative", defaults.r_negative)):
            variants[f"{nr['method']}_rneg{_fmt_value(value)}"] = {**base, "r_negative": float(value)}
    ns = exp["negative_samples"]
    base = variants[ns["method"]]
    for count in ns["values"]:
        if int(count) != int(base.get("n_negatives", defaults.n_negatives)):
            variants[f"{ns['method']}_neg{int(count)}"] = {**base, "n_negatives": int(count)}
    return variants


def negative_reward_variant(config: dict, value: float) -> str:
    """Name of the run variant behind one Table 6 row."""
    nr = config["experiments"]["negative_reward"]
    name = f"{nr['method']}_rneg{_fmt_value(value)}"
    return name if name in method_variants(config) else nr["method"]


def negative_samples_variant(config: dict, count: int) -> str:
    """Name of the run variant behind one point of Figures 3-4."""
    ns = config["experiments"]["negative_samples"]
    name = f"{ns['method']}_neg{int(count)}"
    return name if name in method_variants(config) else ns["method"]


def dataset_roles(config: dict) -> dict[str, str]:
    """Role in the paper ('rc15', 'retailrocket') -> dataset name that plays it in this config."""
    return dict(config["paper_datasets"])


def experiment_runs(config: dict) -> dict[str, list[tuple[str, str, str]]]:
    """Target name -> the (dataset, encoder, method variant) groups it needs (each over all folds and seeds)."""
    roles = dataset_roles(config)
    exp = config["experiments"]
    runs: dict[str, list[tuple[str, str, str]]] = {}
    for target, role in (("table2", "rc15"), ("table3", "retailrocket")):
        runs[target] = [(roles[role], enc, m) for enc in config["encoders"] for m in exp["main_methods"]]
    q = exp["qhead"]
    runs["table4"] = [(roles[r], q["encoder"], m) for r in ("rc15", "retailrocket") for m in q["methods"]]
    off = exp["offpolicy"]
    runs["table5"] = [(roles[r], off["encoder"], m) for r in ("rc15", "retailrocket") for m in off["methods"]]
    nr = exp["negative_reward"]
    runs["table6"] = [(roles["rc15"], nr["encoder"], negative_reward_variant(config, v)) for v in nr["values"]]
    conv = exp["convergence"]
    runs["figure2"] = [(roles["rc15"], conv["encoder"], m) for m in conv["methods"]]
    ns = exp["negative_samples"]
    for target, role in (("figure3", "rc15"), ("figure4", "retailrocket")):
        runs[target] = [(roles[role], ns["encoder"], negative_samples_variant(config, n)) for n in ns["values"]]
    return runs


def all_run_groups(config: dict) -> list[tuple[str, str, str]]:
    seen: dict[tuple[str, str, str], None] = {}
    for groups in experiment_runs(config).values():
        for group in groups:
            seen.setdefault(group, None)
    return list(seen)


def resolve_train_config(config: dict, dataset: str, encoder: str, method: str, seed: int) -> TrainConfig:
    """Layering, later wins: TrainConfig defaults < config.train < dataset's train < method variant < run."""
    variants = method_variants(config)
    if method not in variants:
        raise KeyError(f"unknown method variant {method!r}; configured: {', '.join(sorted(variants))}")
    if dataset not in config["datasets"]:
        raise KeyError(f"unknown dataset {dataset!r}; configured: {', '.join(sorted(config['datasets']))}")
    values: dict[str, Any] = {}
    values.update(config.get("train", {}))
    values.update(config["datasets"][dataset].get("train", {}))
    values.update(variants[method])
    values.update(encoder=encoder, seed=int(seed))
    return TrainConfig.from_dict(values)


def load_yaml(path: str | Path) -> dict:
    import yaml

    with open(path) as fh:
        return yaml.safe_load(fh)


def check_workflow_config(config: dict) -> None:
    """Cross-references the JSON schema cannot express; raises ValueError naming the key."""
    errors = []
    for role, name in config["paper_datasets"].items():
        if name not in config["datasets"]:
            errors.append(f"paper_datasets.{role}={name!r} is not a configured dataset ({', '.join(config['datasets'])})")
    methods = config["methods"]
    exp = config["experiments"]
    refs = [("experiments.main_methods", m) for m in exp["main_methods"]]
    for key in ("qhead", "offpolicy", "convergence"):
        refs += [(f"experiments.{key}.methods", m) for m in exp[key]["methods"]]
    for key in ("negative_reward", "negative_samples"):
        refs.append((f"experiments.{key}.method", exp[key]["method"]))
    for key, name in refs:
        if name not in methods:
            errors.append(f"{key} names method {name!r}, which is not under `methods` ({', '.join(methods)})")
    if not errors:
        for name in config["datasets"]:
            for method in method_variants(config):
                try:
                    resolve_train_config(config, name, "gru", method, 0)
                except ValueError as err:
                    errors.append(f"datasets.{name} / methods.{method}: {err}")
                    break
    if errors:
        raise ValueError("config error: " + "; ".join(errors))
