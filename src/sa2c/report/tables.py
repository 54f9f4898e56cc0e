"""The paper's tables as LaTeX (Jinja2 templates in templates/) and CSV, the document that includes them, its PDF.

Each table is a spec (specs.py: which runs fill which rows and columns) filled with numbers here: the mean over the
(fold, seed) runs of each cell, its sample std and n, and paired tests against the compared rows (stats.py). The
CSV beside each .tex holds the same cells at full precision; the .tex shows them rounded to `DIGITS` decimals.

Missing and undefined cells: a run the table needs that is not among the inputs, a head or metric absent from a
run's metrics.json, or an undefined click metric, is a UserError naming the run (never a blank cell). The one
exception is purchase metrics of a test split without purchases (metrics.json has them null, with n = 0): a cell
whose runs all lack purchases shows "n/a", one where only some do is the mean of the others, marked with an
asterisk (n in the CSV says over how many runs); the caption explains either case when it occurs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from sa2c import config as grid
from sa2c.errors import UserError
from sa2c.io import atomic_path, read_json, write_text
from sa2c.report.aggregate import load_runs, require_runs, run_path
from sa2c.report.specs import (
    EVENT_LABELS,
    MARK_PAIR,
    MARK_REFERENCE,
    ROLE_LABELS,
    Column,
    Comparison,
    DatasetInfo,
    Row,
    TableSpec,
    dataset_info,
    encoder_label,
    load_published,
    method_row_label,
    table_spec,
    tex_escape,
)
from sa2c.report.stats import WILCOXON_MIN_N_FOR_005, PairedTest, Summary, paired_test, summarize

DIGITS = 4
TEMPLATES = Path(__file__).with_name("templates")
META_PREFIX = "% sa2c-report: "
# A cell averaged over fewer runs than expected (some test splits had no purchases) carries this mark.
MARK_PARTIAL = "ast"


def template_env() -> jinja2.Environment:
    """Jinja2 with delimiters that cannot clash with LaTeX: \\BLOCK{...}, \\VAR{...}, \\#{...}."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        block_start_string=r"\BLOCK{",
        block_end_string="}",
        variable_start_string=r"\VAR{",
        variable_end_string="}",
        comment_start_string=r"\#{",
        comment_end_string="}",
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["tex"] = tex_escape
    env.filters["caption"] = one_paragraph
    # The shared macros (cell, dataset, protocol, tests) as `m` in every template.
    env.globals["m"] = env.get_template("_macros.tex.j2").module
    return env


def one_paragraph(text: str) -> str:
    """A caption's text without blank lines (a paragraph break inside \\caption is a LaTeX error)."""
    return re.sub(r"\n\s*\n", "\n", text).strip()


def render_template(name: str, context: dict[str, Any]) -> str:
    """Templates see their whole context as `ctx` (so that macros can be handed it in one piece)."""
    return template_env().get_template(name).render(ctx=context)


def fmt(value: float, digits: int = DIGITS) -> str:
    return f"{value:.{digits}f}"


def _report_settings(config: dict) -> tuple[float, bool]:
    report = config.get("report", {})
    alpha = float(report.get("significance_level", 0.05))
    if not 0 < alpha < 1:
        raise UserError(f"config key report.significance_level={alpha} must be between 0 and 1")
    return alpha, bool(report.get("show_std", False))


def run_pairs(config: dict) -> list[tuple[int, int]]:
    return [(int(f), int(s)) for f in config["folds"] for s in config["seeds"]]


def _meta(name: str, config: dict, infos: list[DatasetInfo]) -> str:
    """A machine-readable first line: which config and datasets produced the table (read by render_document)."""
    from sa2c.codehash import code_hash

    meta = {
        "table": name,
        "datasets": [{"role": i.role, "name": i.name, "synthetic": i.synthetic} for i in infos],
        "folds": list(config["folds"]),
        "seeds": list(config["seeds"]),
        "config_sha256": hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16],
        "report_code": code_hash("report"),
    }
    return json.dumps(meta, sort_keys=True)


# --------------------------------------------------------------------------------------------------------------
# Looking up cells in the runs


class RunIndex:
    """The tidy runs frame as dictionaries, with errors that name the run, its file and the missing metric."""

    KEY = ["dataset", "encoder", "method", "fold", "seed", "head", "split", "event", "metric"]

    def __init__(self, frame: pd.DataFrame, target: str):
        self.target = target
        self.frame = frame
        self.values = dict(zip(frame[self.KEY].itertuples(index=False, name=None), frame["value"]))
        self.paths: dict[tuple, str] = {}
        self.heads: dict[tuple, set[str]] = {}
        cols = ["dataset", "encoder", "method", "fold", "seed"]
        for *run, head, path in frame[cols + ["head", "path"]].drop_duplicates(cols + ["head"]).itertuples(index=False, name=None):
            self.paths[tuple(run)] = path
            self.heads.setdefault(tuple(run), set()).add(head)

    def require(self, runs: list[tuple]) -> None:
        require_runs(self.frame, runs, self.target)

    def series(self, row: Row, column: Column, split: str, pairs: list[tuple[int, int]], row_label: str) -> pd.Series:
        """The cell's value in every (fold, seed) run; NaN where the metric is undefined (no such events)."""
        values = {}
        for fold, seed in pairs:
            run = (row.dataset, row.encoder, row.method, fold, seed)
            where = f"{split}.{row.head}.{column.event}.{column.metric}"
            if row.head not in self.heads[run]:
                raise UserError(
                    f"{self.paths[run]}: run {run_path(*run)} has no {row.head!r} head (it has: "
                    f"{', '.join(sorted(self.heads[run]))}), but {self.target} row {row_label!r} needs {where}. "
                    f"Check the method variant {row.method!r} in the config."
                )
            key = run + (row.head, split, column.event, column.metric)
            if key not in self.values:
                raise UserError(
                    f"{self.paths[run]}: metric {where} is missing, but {self.target} row {row_label!r} needs it; "
                    f"rerun this run with the current code (delete the file)."
                )
            value = self.values[key]
            if math.isnan(value) and column.event != "purchase":
                raise UserError(
                    f"{self.paths[run]}: metric {where} is undefined (the {split} split has no {column.event} events), "
                    f"but {self.target} row {row_label!r} needs it; the split is too small - use more sessions."
                )
            values[(fold, seed)] = value
        return pd.Series(values, dtype=float).rename_axis(["fold", "seed"])


# --------------------------------------------------------------------------------------------------------------
# Filling a spec with numbers


@dataclass
class Cell:
    column: Column
    values: pd.Series  # by (fold, seed)
    summary: Summary
    n_expected: int
    tests: list[tuple[Comparison, PairedTest]] = field(default_factory=list)
    best: bool = False
    marks: list[str] = field(default_factory=list)

    @property
    def undefined(self) -> bool:
        return self.summary.n == 0

    @property
    def partial(self) -> bool:
        return 0 < self.summary.n < self.n_expected


@dataclass
class FilledRow:
    row: Row
    cells: list[Cell]


@dataclass
class FilledGroup:
    label: str
    header_tex: str | None
    rows: list[FilledRow]


def fill(spec: TableSpec, index: RunIndex, pairs: list[tuple[int, int]], alpha: float) -> list[FilledGroup]:
    index.require([(r.dataset, r.encoder, r.method, f, s) for g in spec.groups for r in g.rows for f, s in pairs])
    groups = []
    for group in spec.groups:
        rows = []
        for row in group.rows:
            cells = []
            for column in spec.columns:
                values = index.series(row, column, spec.split, pairs, row.label)
                cells.append(Cell(column, values, summarize(values), len(pairs)))
            rows.append(FilledRow(row, cells))
        by_key = {fr.row.key: fr for fr in rows}
        for fr in rows:
            for comparison in fr.row.comparisons:
                ref = by_key[comparison.ref]
                for cell, ref_cell in zip(fr.cells, ref.cells):
                    test = paired_test(cell.values, ref_cell.values)
                    cell.tests.append((comparison, test))
                    if comparison.mark and test.improves(alpha):
                        cell.marks.append(comparison.mark)
            for cell in fr.cells:
                if cell.partial:
                    cell.marks.append(MARK_PARTIAL)
        # Bold: the best mean per column within the group, as displayed (ties at DIGITS decimals all bold).
        for j in range(len(spec.columns)):
            shown = [round(fr.cells[j].summary.mean, DIGITS) for fr in rows if not fr.cells[j].undefined]
            if shown:
                top = max(shown)
                for fr in rows:
                    cell = fr.cells[j]
                    cell.best = not cell.undefined and round(cell.summary.mean, DIGITS) == top
        groups.append(FilledGroup(group.label, group.label_tex, rows))
    return groups


def table_frame(name: str, spec: TableSpec, groups: list[FilledGroup]) -> pd.DataFrame:
    """Tidy CSV: one row per table row x column, with mean, std, n and the paired tests (full precision)."""
    records = []
    refs: dict[str, None] = {}
    for group in groups:
        for fr in group.rows:
            for comparison in fr.row.comparisons:
                refs.setdefault(comparison.ref, None)
    for group in groups:
        labels = {fr.row.key: fr.row.label for fr in group.rows}
        for fr in group.rows:
            row = fr.row
            for cell in fr.cells:
                rec: dict[str, Any] = {
                    "table": name,
                    "group": group.label,
                    "row": row.label,
                    "dataset": row.dataset,
                    "encoder": row.encoder,
                    "method": row.method,
                    "head": row.head,
                    "split": spec.split,
                    "event": cell.column.event,
                    "metric": cell.column.metric,
                    "mean": cell.summary.mean,
                    "std": cell.summary.std,
                    "n": cell.summary.n,
                    "n_expected": cell.n_expected,
                    "best_in_group": cell.best,
                    "marks": " ".join(cell.marks),
                }
                for ref in refs:
                    for stat in ("ref_row", "diff", "n_pairs", "p_ttest", "p_wilcoxon"):
                        rec[f"{stat}_vs_{ref}"] = float("nan") if stat != "ref_row" else ""
                for comparison, test in cell.tests:
                    ref = comparison.ref
                    rec[f"ref_row_vs_{ref}"] = labels[ref]
                    rec[f"diff_vs_{ref}"] = test.mean_diff
                    rec[f"n_pairs_vs_{ref}"] = test.n_pairs
                    rec[f"p_ttest_vs_{ref}"] = test.p_ttest
                    rec[f"p_wilcoxon_vs_{ref}"] = test.p_wilcoxon
                records.append(rec)
    return pd.DataFrame.from_records(records)


def _column_groups(columns: list[Column]) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for j, column in enumerate(columns):
        if groups and groups[-1]["event"] == column.event:
            groups[-1]["span"] += 1
            groups[-1]["last"] = j + 2
        else:
            groups.append({"event": column.event, "label": EVENT_LABELS.get(column.event, column.event), "span": 1, "first": j + 2, "last": j + 2})
    return groups


def _cell_context(cell: Cell, show_std: bool) -> dict[str, Any]:
    return {
        "na": cell.undefined,
        "text": "" if cell.undefined else fmt(cell.summary.mean),
        "std": "" if (cell.undefined or not show_std) else ("--" if math.isnan(cell.summary.std) else fmt(cell.summary.std)),
        "bold": cell.best,
        "marks": ["\\" + m for m in cell.marks],
    }


def _results_context(name: str, config: dict, spec: TableSpec, groups: list[FilledGroup], alpha: float, show_std: bool) -> dict:
    pairs = run_pairs(config)
    cells = [c for g in groups for fr in g.rows for c in fr.cells]
    marks_used = {m for g in groups for fr in g.rows for comp in fr.row.comparisons if (m := comp.mark)}
    # The reference row named in the caption (Tables 4-6: the same row label in every group).
    ref_keys = {c.ref for g in groups for fr in g.rows for c in fr.row.comparisons if c.mark == MARK_REFERENCE}
    ref_label = ""
    if ref_keys:
        first = groups[0].rows
        ref_label = next((fr.row.label_tex for fr in first if fr.row.key in ref_keys), "")
    encoders = list(dict.fromkeys(fr.row.encoder for g in groups for fr in g.rows))
    nr = config["experiments"]["negative_reward"]
    return {
        "name": name,
        "meta": _meta(name, config, spec.datasets),
        "datasets": spec.datasets,
        "dataset": spec.datasets[0],
        "encoder": encoder_label(encoders[0]) if encoders else "",
        "columns": spec.columns,
        "column_groups": _column_groups(spec.columns),
        "ncols": len(spec.columns),
        "groups": [
            {
                "header": g.header_tex,
                "rows": [{"label": fr.row.label_tex, "cells": [_cell_context(c, show_std) for c in fr.cells]} for fr in g.rows],
            }
            for g in groups
        ],
        "show_std": show_std,
        "alpha": f"{alpha:g}",
        "n_runs": len(pairs),
        "n_folds": len(config["folds"]),
        "n_seeds": len(config["seeds"]),
        "few_pairs": len(pairs) < WILCOXON_MIN_N_FOR_005,
        "wilcoxon_min": WILCOXON_MIN_N_FOR_005,
        "any_na": any(c.undefined for c in cells),
        "any_partial": any(c.partial for c in cells),
        "mark_reference": MARK_REFERENCE in marks_used,
        "mark_pair": MARK_PAIR in marks_used,
        "reference_label": ref_label,
        "nr_model": method_row_label(grid.method_variants(config), nr["encoder"], nr["method"]),
        "fontsize": "\\small" if len(spec.columns) > 6 else "",
    }


def _write_outputs(out_tex: Path, out_csv: Path, tex: str, frame: pd.DataFrame) -> None:
    with atomic_path(out_csv, suffix=".csv") as tmp:
        frame.to_csv(tmp, index=False)
    write_text(out_tex, tex)


def render_table(name: str, config: dict, inputs: list[Path], out_tex: Path, out_csv: Path) -> None:
    """Render one paper table (table1..table6, paper_vs_run) as a LaTeX `table` environment and a tidy CSV."""
    if name == "table1":
        tex, frame = _dataset_table(config, inputs)
    elif name == "paper_vs_run":
        tex, frame = _paper_vs_run(config, inputs)
    else:
        alpha, show_std = _report_settings(config)
        spec = table_spec(config, name)
        groups = fill(spec, RunIndex(load_runs(inputs), name), run_pairs(config), alpha)
        frame = table_frame(name, spec, groups)
        tex = render_template(f"{name}.tex.j2", _results_context(name, config, spec, groups, alpha, show_std))
    _write_outputs(Path(out_tex), Path(out_csv), tex, frame)


# --------------------------------------------------------------------------------------------------------------
# Table 1: dataset statistics


STAT_ROWS = [("sessions", "Sessions"), ("items", "Items"), ("clicks", "Clicks"), ("purchases", "Purchases")]
# Printed when the preprocess step reports them (SPEC: the popularity baseline shows the data are long-tailed but
# not trivial); the paper does not report them.
OPTIONAL_ROWS = [("popularity_click_hr@10", "Popularity: click HR@10"), ("popularity_purchase_hr@10", "Popularity: purchase HR@10")]


def _stats_with_derived(stats: dict[str, Any]) -> dict[str, float]:
    values = {key: float(stats[key]) for key, _ in STAT_ROWS}
    events = values["clicks"] + values["purchases"]
    values["purchase_share"] = values["purchases"] / events if events else float("nan")
    values["events_per_session"] = events / values["sessions"] if values["sessions"] else float("nan")
    for key, _ in OPTIONAL_ROWS:
        value = stats.get(key)
        values[key] = float(value) if isinstance(value, (int, float)) else float("nan")
    return values


def _dataset_table(config: dict, inputs: list[Path]) -> tuple[str, pd.DataFrame]:
    published = load_published()["dataset_stats"]
    by_name: dict[str, Path] = {}
    for path in map(Path, inputs):
        by_name[path.parent.name] = path
    columns, groups, records = [], [], []
    infos = [dataset_info(config, role) for role in ("rc15", "retailrocket")]
    for info in infos:
        path = by_name.get(info.name)
        if path is None:
            raise UserError(
                f"table1 needs results/data/{info.name}/stats.json (dataset {info.name!r} plays {info.role_label}), "
                f"but it is not among the inputs; run snakemake results/data/{info.name}/stats.json"
            )
        try:
            stats = read_json(path)
        except (OSError, ValueError) as err:
            raise UserError(f"{path}: cannot read dataset statistics ({err}); rerun the preprocess step") from None
        missing = [key for key, _ in STAT_ROWS if not isinstance(stats.get(key), (int, float))]
        if missing:
            raise UserError(f"{path}: key(s) {', '.join(missing)} missing or not numbers; rerun the preprocess step")
        sources = []
        if info.role in published:
            sources.append(("paper", "published", published[info.role]))
        sources.append(("this run", f"{info.name} (synthetic)" if info.synthetic else info.name, stats))
        groups.append({"label": tex_escape(info.role_label), "span": len(sources), "first": len(columns) + 2, "last": len(columns) + 1 + len(sources)})
        for source, label, raw in sources:
            values = _stats_with_derived(raw)
            columns.append({"label": tex_escape(label), "values": values})
            for key, value in values.items():
                records.append(
                    {"statistic": key, "role": info.role, "dataset": info.name if source == "this run" else published[info.role]["label"],
                     "source": source, "synthetic": info.synthetic if source == "this run" else False, "value": value}
                )
    rows = []
    for key, label in STAT_ROWS:
        rows.append({"label": label, "cells": [f"{int(round(c['values'][key])):,}" for c in columns]})
    rows.append({"label": "Purchases / events (\\%)", "cells": [f"{100 * c['values']['purchase_share']:.2f}" for c in columns]})
    rows.append({"label": "Events per session", "cells": [f"{c['values']['events_per_session']:.2f}" for c in columns]})
    shown_optional = [(key, label) for key, label in OPTIONAL_ROWS if any(not math.isnan(c["values"][key]) for c in columns)]
    for key, label in shown_optional:
        rows.append({"label": label, "cells": ["--" if math.isnan(c["values"][key]) else f"{c['values'][key]:.3f}" for c in columns]})
    records = [r for r in records if not (r["statistic"] in dict(OPTIONAL_ROWS) and math.isnan(r["value"]))]
    context = {
        "name": "table1",
        "meta": _meta("table1", config, infos),
        "datasets": infos,
        "columns": columns,
        "column_groups": groups,
        "rows": rows,
        "any_synthetic": any(i.synthetic for i in infos),
        "popularity": bool(shown_optional),
    }
    return render_template("table1.tex.j2", context), pd.DataFrame.from_records(records)


# --------------------------------------------------------------------------------------------------------------
# Published cells beside this run's


def _paper_vs_run(config: dict, inputs: list[Path]) -> tuple[str, pd.DataFrame]:
    published = load_published()
    alpha, _ = _report_settings(config)
    pairs = run_pairs(config)
    variants = grid.method_variants(config)
    main = config["experiments"]["main_methods"]
    base_variant = next((m for m in main if variants.get(m, {}).get("method") == "ce"), None)
    sa2c_variant = next(
        (m for m in main if variants.get(m, {}).get("method") == "sa2c" and float(variants[m].get("smooth", 0.0)) == 0.0), None
    )
    index = RunIndex(load_runs(inputs), "paper_vs_run")
    rows, records, infos, not_run = [], [], [], []
    for cell in published["cells"]:
        info = dataset_info(config, cell["role"])
        if info not in infos:
            infos.append(info)
        column = Column(cell["event"], cell["metric"])
        paper_delta = cell["sa2c"] - cell["base"]
        row = {
            "paper_dataset": tex_escape(info.role_label),
            "metric": f"{EVENT_LABELS[cell['event']]} {column.label}",
            "paper": [fmt(cell["base"]), fmt(cell["sa2c"]), f"{paper_delta:+.{DIGITS}f}", f"{100 * paper_delta / cell['base']:+.1f}\\%"],
            "dataset": tex_escape(info.name) + (" (synthetic)" if info.synthetic else ""),
        }
        common = {"role": cell["role"], "paper_table": cell["table"], "encoder": cell["encoder"], "head": cell["head"],
                  "event": cell["event"], "metric": cell["metric"]}
        for quantity, value in (("base", cell["base"]), ("sa2c", cell["sa2c"]), ("delta", paper_delta), ("relative_delta", paper_delta / cell["base"])):
            records.append({**common, "source": "paper", "dataset": published["dataset_stats"][cell["role"]]["label"], "synthetic": False,
                            "quantity": quantity, "mean": value, "std": float("nan"), "n": float("nan"),
                            "p_ttest": float("nan"), "p_wilcoxon": float("nan")})
        if cell["encoder"] not in config["encoders"] or base_variant is None or sa2c_variant is None:
            # The configuration trains no such runs (e.g. a small test config): say so instead of a number.
            not_run.append(f"{encoder_label(cell['encoder'])} on {info.name}")
            row["run"] = ["not run"] * 4 + ["--"]
            rows.append(row)
            continue
        spec_rows = {
            v: Row(v, f"{encoder_label(cell['encoder'])} {v}", "", info.name, cell["encoder"], v, cell["head"]) for v in (base_variant, sa2c_variant)
        }
        index.require([(info.name, cell["encoder"], v, f, s) for v in spec_rows for f, s in pairs])
        base_values = index.series(spec_rows[base_variant], column, "test", pairs, f"{info.role_label} {column.event} base")
        sa2c_values = index.series(spec_rows[sa2c_variant], column, "test", pairs, f"{info.role_label} {column.event} SA2C")
        base, sa2c = summarize(base_values), summarize(sa2c_values)
        if base.n == 0 or sa2c.n == 0:
            row["run"] = ["n/a"] * 4 + ["--"]
            delta = rel = float("nan")
            test = PairedTest(0, float("nan"), float("nan"), float("nan"))
        else:
            delta = sa2c.mean - base.mean
            rel = delta / base.mean if base.mean else float("nan")
            test = paired_test(sa2c_values, base_values)
            mark = "$^{\\dagger}$" if test.improves(alpha) else ""
            row["run"] = [fmt(base.mean), fmt(sa2c.mean), f"{delta:+.{DIGITS}f}{mark}",
                          "--" if math.isnan(rel) else f"{100 * rel:+.1f}\\%",
                          "--" if math.isnan(test.p_ttest) else f"{test.p_ttest:.3f}"]
        for quantity, summary in (("base", base), ("sa2c", sa2c)):
            records.append({**common, "source": "this run", "dataset": info.name, "synthetic": info.synthetic, "quantity": quantity,
                            "mean": summary.mean, "std": summary.std, "n": summary.n, "p_ttest": float("nan"), "p_wilcoxon": float("nan")})
        for quantity, value in (("delta", delta), ("relative_delta", rel)):
            records.append({**common, "source": "this run", "dataset": info.name, "synthetic": info.synthetic, "quantity": quantity,
                            "mean": value, "std": float("nan"), "n": test.n_pairs, "p_ttest": test.p_ttest, "p_wilcoxon": test.p_wilcoxon})
        rows.append(row)
    context = {
        "name": "paper_vs_run",
        "meta": _meta("paper_vs_run", config, infos),
        "source": tex_escape(published["source"]),
        "datasets": infos,
        "rows": rows,
        "any_synthetic": any(i.synthetic for i in infos),
        "not_run": [tex_escape(x) for x in not_run],
        "any_na": any(r["run"][0] == "n/a" for r in rows),
        "alpha": f"{alpha:g}",
        "n_runs": len(pairs),
    }
    return render_template("paper_vs_run.tex.j2", context), pd.DataFrame.from_records(records)


# --------------------------------------------------------------------------------------------------------------
# The document and its PDF


def read_meta(tex: Path) -> dict[str, Any]:
    """The `% sa2c-report: {...}` line a table file starts with ({} if it has none)."""
    try:
        with open(tex) as fh:
            for line in fh:
                if line.startswith(META_PREFIX):
                    return json.loads(line[len(META_PREFIX):])
    except (OSError, ValueError):
        pass
    return {}


def render_document(inputs: list[Path], out: Path) -> None:
    """paper_tables/tables.tex: an article that \\input's every table, with a header naming its config and data."""
    out = Path(out)
    tables, datasets, metas = [], {}, []
    for path in map(Path, inputs):
        if not path.is_file():
            raise UserError(f"{path}: table file not found; render it first (snakemake {path})")
        relative = os.path.relpath(path.resolve(), out.resolve().parent)
        # TeX reads `../` paths literally but cannot search for them; files outside the document's folder go in absolute.
        target = Path(relative).as_posix() if not relative.startswith("..") else path.resolve().as_posix()
        if re.search(r"[\s%#{}\\]", target):
            raise UserError(f"{path}: LaTeX cannot \\input a path with spaces or special characters ({target}); move the file")
        tables.append(target)
        meta = read_meta(path)
        metas.append(meta)
        for d in meta.get("datasets", []):
            datasets.setdefault(d["name"], d)
    settings = {(tuple(m["folds"]), tuple(m["seeds"]), m["config_sha256"], m["report_code"]) for m in metas if "folds" in m}
    context = {
        "tables": tables,
        "datasets": [
            {"name": tex_escape(d["name"]), "role": tex_escape(ROLE_LABELS.get(d["role"], d["role"])), "synthetic": d["synthetic"]}
            for d in datasets.values()
        ],
        "settings": [
            {"folds": ", ".join(map(str, f)), "seeds": ", ".join(map(str, s)), "config": c, "code": code} for f, s, c, code in sorted(settings)
        ],
        "any_synthetic": any(d["synthetic"] for d in datasets.values()),
    }
    write_text(out, render_template("document.tex.j2", context))


def _latex_errors(log: str) -> str:
    """The error lines of a LaTeX log: each '!' line with the two lines after it (they hold 'l.<n> ...')."""
    lines = log.splitlines()
    picked = []
    for i, line in enumerate(lines):
        if line.startswith("!"):
            picked.extend(lines[i : i + 3])
    return "\n".join(picked[:30]) or "\n".join(lines[-20:])


def compile_pdf(tex: Path, out: Path, runs: int = 2, timeout: float = 300) -> None:
    """Compile `tex` with pdflatex in a temporary copy of its folder; move the PDF onto `out` atomically."""
    tex, out = Path(tex), Path(out)
    exe = shutil.which("pdflatex")
    if exe is None:
        raise UserError(
            "pdflatex is not installed, so paper_tables/tables.pdf cannot be built; install it "
            "(Debian/Ubuntu: apt-get install texlive-latex-base texlive-latex-recommended) or build only the .tex targets"
        )
    if not tex.is_file():
        raise UserError(f"{tex}: LaTeX file not found; render it first (snakemake {tex})")
    with tempfile.TemporaryDirectory(prefix="sa2c-latex-") as tmpdir:
        work = Path(tmpdir) / "doc"
        # Copy the sources only: earlier outputs (PDF, aux) must not leak into this build.
        shutil.copytree(tex.parent, work, ignore=shutil.ignore_patterns("*.pdf", "*.aux", "*.log", ".*", "*.png"))
        log_path = work / (tex.stem + ".log")
        for attempt in range(runs):
            cmd = [exe, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", tex.name]
            try:
                proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, errors="replace", timeout=timeout)
            except subprocess.TimeoutExpired:
                raise UserError(f"{tex}: pdflatex took longer than {timeout:g} s; see the .tex for a runaway input") from None
            log = log_path.read_text(errors="replace") if log_path.exists() else proc.stdout
            if proc.returncode != 0:
                raise UserError(f"{tex}: pdflatex failed (exit {proc.returncode}):\n{_latex_errors(log)}")
            # One pass suffices for tables without cross-references; rerun only when LaTeX asks for it.
            if "Rerun to get" not in log and "Label(s) may have changed" not in log:
                break
        pdf = work / (tex.stem + ".pdf")
        if not pdf.is_file():
            raise UserError(f"{tex}: pdflatex produced no PDF:\n{_latex_errors(log)}")
        with atomic_path(out, suffix=".pdf") as tmp:
            shutil.copyfile(pdf, tmp)
