"""Reading runs' metrics.json files (docs/results-format.md) into tidy tables; `results/metrics.csv`.

Every other reporting module (tables, figures) reads runs through `load_runs` / `load_curves`, so the
metrics.json format is parsed, and checked, in this one place.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from sa2c.errors import UserError
from sa2c.io import atomic_path, read_json

# One run is identified by these; a tidy row adds head, split, event and metric.
RUN_COLS = ["dataset", "encoder", "method", "fold", "seed"]
TIDY_COLS = RUN_COLS + ["head", "split", "event", "metric", "value"]
CURVE_COLS = RUN_COLS + ["head", "eval", "step", "epoch", "event", "metric", "value"]
SPLITS = ("valid", "test")
EVENTS = ("click", "purchase", "all")
HEADS = ("supervised", "q")

# results/runs/{dataset}/{encoder}/{method}/fold{fold}/seed{seed}/metrics.json
_RUN_PATH = re.compile(r"(?P<dataset>[^/]+)/(?P<encoder>[^/]+)/(?P<method>[^/]+)/fold(?P<fold>\d+)/seed(?P<seed>\d+)/metrics\.json$")


def _fail(path: Path, what: str) -> UserError:
    return UserError(
        f"{path}: {what}. The file does not follow docs/results-format.md; delete it and rerun its training job "
        f"(snakemake rebuilds missing metrics.json files)."
    )


def read_run(path: str | Path) -> dict[str, Any]:
    """One metrics.json, checked for what the reports need: run identity, heads, and a BLOCK per head and split."""
    path = Path(path)
    try:
        data = read_json(path)
    except FileNotFoundError:
        raise UserError(f"{path}: metrics file not found; run the training job that writes it (snakemake {path})") from None
    except ValueError as err:
        raise _fail(path, f"not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise _fail(path, "top level is not an object")
    for key in ("run", "heads", "valid", "test"):
        if key not in data:
            raise _fail(path, f"key {key!r} is missing")
    run = data["run"]
    for key in RUN_COLS:
        if key not in run:
            raise _fail(path, f"key 'run.{key}' is missing")
    try:
        run = {**run, "fold": int(run["fold"]), "seed": int(run["seed"])}
    except (TypeError, ValueError):
        raise _fail(path, f"run.fold={run['fold']!r} / run.seed={run['seed']!r} are not integers") from None
    # The path names the run too; a file copied to the wrong place would silently fill the wrong table cell.
    match = _RUN_PATH.search(path.as_posix())
    if match:
        from_path = {k: (int(v) if k in ("fold", "seed") else v) for k, v in match.groupdict().items()}
        differing = [f"{k}: file says {run[k]!r}, path says {from_path[k]!r}" for k in RUN_COLS if run[k] != from_path[k]]
        if differing:
            raise _fail(path, "its 'run' block does not match its location (" + "; ".join(differing) + ")")
    heads = data["heads"]
    if not isinstance(heads, list) or not heads or any(h not in HEADS for h in heads):
        raise _fail(path, f"heads={heads!r} must be a non-empty list of {', '.join(HEADS)}")
    for split in SPLITS:
        for head in heads:
            block = data[split].get(head) if isinstance(data[split], dict) else None
            if block is None:
                raise _fail(path, f"'{split}.{head}' is missing although head {head!r} is listed in 'heads'")
            _check_block(path, f"{split}.{head}", block)
    data["run"] = run
    return data


def _check_block(path: Path, where: str, block: Any) -> None:
    if not isinstance(block, dict):
        raise _fail(path, f"'{where}' is not an object")
    for event in EVENTS:
        metrics = block.get(event)
        if not isinstance(metrics, dict) or "n" not in metrics:
            raise _fail(path, f"'{where}.{event}' is missing or has no 'n'")
        for metric, value in metrics.items():
            if value is None:
                if metrics["n"]:
                    raise _fail(path, f"'{where}.{event}.{metric}' is null although n={metrics['n']} events were evaluated")
            elif not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise _fail(path, f"'{where}.{event}.{metric}'={value!r} is not a finite number or null")


def _block_rows(block: dict[str, Any]) -> Iterable[tuple[str, str, float]]:
    for event in EVENTS:
        metrics = block[event]
        yield event, "n", float(metrics["n"])
        for metric, value in metrics.items():
            if metric != "n":
                yield event, metric, (float("nan") if value is None else float(value))


def _check_unique(paths: dict[tuple, Path], run: dict[str, Any], path: Path) -> None:
    key = tuple(run[k] for k in RUN_COLS)
    if key in paths:
        raise UserError(f"{path} and {paths[key]} both hold run {dict(zip(RUN_COLS, key))}; keep one of them")
    paths[key] = path


def _unique_runs(inputs: Iterable[str | Path]):
    """(path, metrics.json content, run key) of each input, checking that no run appears twice."""
    seen: dict[tuple, Path] = {}
    for path in map(Path, inputs):
        data = read_run(path)
        _check_unique(seen, data["run"], path)
        yield path, data, tuple(data["run"][k] for k in RUN_COLS)


def load_runs(inputs: Iterable[str | Path]) -> pd.DataFrame:
    """Tidy frame of every run's final metrics: one row per run x head x split x event x metric.

    Columns: dataset, encoder, method, fold, seed, head, split, event, metric, value, path. A metric that is not
    defined (its event type has no events in the split) is NaN; each event's event count is the metric "n".
    """
    rows: list[tuple] = []
    for path, data, ident in _unique_runs(inputs):
        for split in SPLITS:
            for head in data["heads"]:
                for event, metric, value in _block_rows(data[split][head]):
                    rows.append((*ident, head, split, event, metric, value, str(path)))
    frame = pd.DataFrame(rows, columns=TIDY_COLS + ["path"])
    return frame.astype({"fold": "int64", "seed": "int64", "value": "float64"})


def load_curves(inputs: Iterable[str | Path]) -> pd.DataFrame:
    """Tidy frame of every run's validation curve: one row per run x head x evaluation x event x metric.

    Columns: dataset, encoder, method, fold, seed, head, eval (0-based index of the evaluation), step, epoch, event,
    metric, value.
    """
    rows: list[tuple] = []
    for path, data, ident in _unique_runs(inputs):
        curve = data.get("validation_curve")
        if not isinstance(curve, list):
            raise _fail(path, "'validation_curve' is missing or not a list")
        for index, point in enumerate(curve):
            if not isinstance(point, dict) or "step" not in point or not isinstance(point.get("metrics"), dict):
                raise _fail(path, f"validation_curve[{index}] has no 'step' or 'metrics'")
            for head, block in point["metrics"].items():
                _check_block(path, f"validation_curve[{index}].metrics.{head}", block)
                for event, metric, value in _block_rows(block):
                    rows.append((*ident, head, index, int(point["step"]), float(point.get("epoch", float("nan"))), event, metric, value))
    frame = pd.DataFrame(rows, columns=CURVE_COLS)
    return frame.astype({"fold": "int64", "seed": "int64", "eval": "int64", "step": "int64", "value": "float64"})


def run_path(dataset: str, encoder: str, method: str, fold: int, seed: int) -> str:
    """Where the workflow writes a run's metrics.json (relative to the project root)."""
    return f"results/runs/{dataset}/{encoder}/{method}/fold{fold}/seed{seed}/metrics.json"


def require_runs(frame: pd.DataFrame, runs: Iterable[tuple], target: str) -> None:
    """Raise a UserError naming every (dataset, encoder, method, fold, seed) run of `runs` that `frame` lacks."""
    present = set(frame[RUN_COLS].drop_duplicates().itertuples(index=False, name=None))
    missing = [r for r in dict.fromkeys(runs) if r not in present]
    if missing:
        shown = "; ".join(
            f"{run_path(*r)} (dataset={r[0]}, encoder={r[1]}, method={r[2]}, fold={r[3]}, seed={r[4]})" for r in missing[:8]
        )
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        raise UserError(
            f"{target} needs {len(missing)} run(s) that are not among its inputs: {shown}{more}. "
            f"Train them first (snakemake builds every run a table or figure needs, e.g. snakemake {target_path(target)})."
        )


def target_path(target: str) -> str:
    return f"figures/{target}.pdf" if target.startswith("figure") else f"paper_tables/{target}.tex"


def write_metrics_csv(inputs: list[Path], out: Path) -> None:
    """results/metrics.csv: `load_runs` without the path column, sorted; undefined metrics are empty cells."""
    frame = load_runs(inputs)[TIDY_COLS]
    frame = frame.sort_values(TIDY_COLS[:-1], kind="stable").reset_index(drop=True)
    with atomic_path(out, suffix=".csv") as tmp:
        frame.to_csv(tmp, index=False)  # full precision (repr of each float)
