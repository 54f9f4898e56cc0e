"""Helpers for the report tests: fake but well-formed metrics.json files (docs/results-format.md), small configs.

Imported by the other tests/test_report_*.py files; the tests here check the helpers themselves.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Callable

from sa2c import config as grid
from sa2c.io import read_json

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("hr@5", "ndcg@5", "hr@10", "ndcg@10", "hr@20", "ndcg@20", "off_ndcg@10")
N_EVENTS = {"click": 1000, "purchase": 40}

# value(dataset, encoder, method, fold, seed, head, split, event, metric) -> float or None
ValueFn = Callable[..., float | None]


def default_value(dataset, encoder, method, fold, seed, head, split, event, metric) -> float:
    """Distinct, hand-computable numbers: a per-method level plus small fold/seed/metric offsets."""
    level = {"base": 0.20, "sqn": 0.21, "snqn": 0.23, "sac": 0.22, "sa2c": 0.25, "dqn": 0.10}.get(method.split("_")[0], 0.15)
    return round(
        level
        + 0.01 * METRICS.index(metric)
        + (0.1 if event == "purchase" else 0.0)
        + (0.05 if head == "q" else 0.0)
        + 0.001 * fold
        + 0.0001 * seed
        + (0.002 if split == "valid" else 0.0),
        6,
    )


def block(values: dict[tuple[str, str], float | None], n: dict[str, int] | None = None) -> dict:
    """A BLOCK: per event type its n and metrics; a purchase n of 0 makes the purchase metrics null."""
    n = {**N_EVENTS, **(n or {})}
    out = {}
    for event in ("click", "purchase"):
        out[event] = {"n": n[event]}
        for metric in METRICS:
            out[event][metric] = None if n[event] == 0 else values[(event, metric)]
    out["all"] = {"n": n["click"] + n["purchase"], "reward@5": 12.5, "reward@10": 20.0, "reward@20": 31.0}
    return out


def heads_of(config: dict, method: str) -> list[str]:
    kind = grid.method_variants(config)[method]["method"]
    return {"ce": ["supervised"], "dqn": ["q"]}.get(kind, ["supervised", "q"])


def write_run(
    root: Path,
    dataset: str,
    encoder: str,
    method: str,
    fold: int,
    seed: int,
    heads: list[str],
    value: ValueFn = default_value,
    n_test: dict[str, int] | None = None,
    curve_steps: tuple[int, ...] = (100, 200, 300),
) -> Path:
    """Write results/runs/.../metrics.json under `root`; returns its path."""

    def values(head: str, split: str, step: int | None = None) -> dict:
        table = {}
        for event in ("click", "purchase"):
            for metric in METRICS:
                v = value(dataset, encoder, method, fold, seed, head, split, event, metric)
                if step is not None and v is not None:
                    v = round(v * step / max(curve_steps), 6)  # a rising validation curve
                table[(event, metric)] = v
        return table

    curve = [
        {"step": step, "epoch": step / 200, "metrics": {h: block(values(h, "valid", step)) for h in heads}} for step in curve_steps
    ]
    data = {
        "run": {"dataset": dataset, "encoder": encoder, "method": method, "base_method": method, "fold": fold, "seed": seed},
        "identity": {"config_hash": "0" * 16, "code_hash": "0" * 16},
        "config": {},
        "heads": heads,
        "validation_curve": curve,
        "best": {h: {"step": curve_steps[-1], "select_metric": "mean/ndcg@10", "value": 0.2} for h in heads},
        "valid": {h: block(values(h, "valid")) for h in heads},
        "test": {h: block(values(h, "test"), n_test) for h in heads},
        "train": {"steps": 300, "epochs": 1.5, "warmup_steps": 150, "wall_time_s": 1.0, "transitions_per_s": 1.0,
                  "eval_events_per_s": 1.0, "final_losses": {}},
        "versions": {"python": "3.11", "torch": "2", "numpy": "2", "sa2c": "0.1.0"},
        "device": "cpu",
    }
    path = root / f"results/runs/{dataset}/{encoder}/{method}/fold{fold}/seed{seed}/metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def write_groups(root: Path, config: dict, groups, value: ValueFn = default_value, **kwargs) -> list[Path]:
    """Every fold and seed of each (dataset, encoder, method) group."""
    paths = []
    for dataset, encoder, method in dict.fromkeys(groups):
        for fold in config["folds"]:
            for seed in config["seeds"]:
                paths.append(write_run(root, dataset, encoder, method, fold, seed, heads_of(config, method), value, **kwargs))
    return paths


def small_config(folds=(0, 1, 2), seeds=(0, 1), encoders=("gru", "sasrec"), **report) -> dict:
    """config/config.yaml with fewer folds, seeds, encoders and sweep values."""
    config = copy.deepcopy(grid.load_yaml(ROOT / "config/config.yaml"))
    config["folds"] = list(folds)
    config["seeds"] = list(seeds)
    config["encoders"] = list(encoders)
    config["experiments"]["negative_reward"]["values"] = [0.0, -0.5, -1.0]
    config["experiments"]["negative_samples"]["values"] = [1, 10, 50]
    config["report"].update(report)
    return config


def tex_body(tex: str) -> list[list[tuple[str, list[str]]]]:
    """The rows of a rendered results table: groups (split at \\midrule) of (row label, cell strings)."""
    body = tex.split("\\midrule", 1)[1].split("\\bottomrule", 1)[0]
    groups: list[list[tuple[str, list[str]]]] = [[]]
    for line in body.splitlines():
        line = line.strip()
        if line == "\\midrule":
            groups.append([])
        elif line.endswith("\\\\") and not line.startswith("\\multicolumn"):
            label, *cells = [part.strip() for part in line[:-2].split(" & ")]
            groups[-1].append((label, cells))
    return [g for g in groups if g]


def parse_cell(cell: str) -> dict:
    """A rendered cell: its mean (and std) as printed, whether bold, its marks."""
    numbers = re.findall(r"\d+\.\d+", cell)
    marks = re.findall(r"\$\^\{([^$]*)\}\$", cell)
    return {
        "na": cell == "n/a",
        "mean": numbers[0] if numbers else None,
        "std": numbers[1] if len(numbers) > 1 else None,
        "bold": "\\textbf{" in cell,
        "marks": marks[0].split(",") if marks else [],
    }


def test_written_run_follows_the_results_format(tmp_path):
    path = write_run(tmp_path, "rc15-synth", "gru", "snqn", 1, 0, ["supervised", "q"], n_test={"purchase": 0})
    data = read_json(path)
    assert path.as_posix().endswith("results/runs/rc15-synth/gru/snqn/fold1/seed0/metrics.json")
    assert data["test"]["q"]["purchase"]["n"] == 0 and data["test"]["q"]["purchase"]["hr@10"] is None
    assert data["valid"]["supervised"]["click"]["hr@10"] == default_value("rc15-synth", "gru", "snqn", 1, 0, "supervised", "valid", "click", "hr@10")
    assert [p["step"] for p in data["validation_curve"]] == [100, 200, 300]


def test_small_config_is_valid():
    config = small_config()
    grid.check_workflow_config(config)
    assert config["folds"] == [0, 1, 2] and config["encoders"] == ["gru", "sasrec"]
