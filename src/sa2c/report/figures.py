"""The paper's figures: Figure 2 (validation convergence, SQN vs SNQN) and Figures 3-4 (metrics vs the number of
negative samples |N|), each as PDF and PNG.

Lines are means over the (fold, seed) runs; the shaded band is +-1 sample standard deviation over the same runs
(said in each figure). Figures are drawn on `matplotlib.figure.Figure` objects with the Agg canvas, so no global
pyplot state or display is involved.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.style

matplotlib.use("Agg")  # noqa: E402 - no display on workers
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, NullLocator

from sa2c import config as grid
from sa2c.errors import UserError
from sa2c.io import atomic_path
from sa2c.report.aggregate import load_curves, load_runs, require_runs
from sa2c.report.specs import Column, DatasetInfo, Row, dataset_info, method_row_label
from sa2c.report.tables import RunIndex, run_pairs

STYLE = "seaborn-v0_8-whitegrid"
BAND = "band: ±1 s.d. over {n} (fold, seed) runs"
EVENT_TITLES = {"purchase": "Purchase", "click": "Click"}
METRIC_TITLES = {"hr": "HR", "ndcg": "NDCG"}


def _legend(fig, ax, n_runs: int) -> None:
    """One legend under the panels: the lines of `ax` and the band's meaning."""
    handles, labels = ax.get_legend_handles_labels()
    handles.append(Patch(color="grey", alpha=0.2))
    labels.append(BAND.format(n=n_runs))
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False)


def _panel_grid() -> tuple[Figure, object, list[str]]:
    """The 2 x 2 panels (rows purchase, click) shared by Figures 2-4, and the colour cycle for their series."""
    fig = Figure(figsize=(9, 6.5))
    axes = fig.subplots(2, 2, sharex=True)
    return fig, axes, matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]


def _dataset_title(info: DatasetInfo) -> str:
    return f"{info.name} (synthetic, {info.role_label} role)" if info.synthetic else f"{info.name} ({info.role_label})"


def _save(fig: Figure, out_pdf: Path, out_png: Path) -> None:
    FigureCanvasAgg(fig)
    with atomic_path(out_pdf, suffix=".pdf") as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None})
    with atomic_path(out_png, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=150)


def _band(ax, x, mean, std, color) -> None:
    ok = ~np.isnan(std)
    if ok.any():
        ax.fill_between(np.asarray(x)[ok], (mean - std)[ok], (mean + std)[ok], color=color, alpha=0.2, linewidth=0)


# --------------------------------------------------------------------------------------------------------------
# Figure 2: convergence on the RC15 role's validation split


def convergence_series(curves: pd.DataFrame, run: tuple[str, str, str], head: str, event: str, metric: str) -> pd.DataFrame:
    """Mean, std and n over runs at each evaluation of one (dataset, encoder, method): columns step, mean, std, n.

    Runs of different folds can evaluate at different steps (an epoch's length depends on the fold's training set);
    then the k-th evaluations are averaged together and placed at their mean step.
    """
    dataset, encoder, method = run
    sub = curves[
        (curves.dataset == dataset) & (curves.encoder == encoder) & (curves.method == method) & (curves["head"] == head)
        & (curves.event == event) & (curves.metric == metric)
    ]
    if sub.empty:
        raise UserError(
            f"figure2: the runs of {dataset}/{encoder}/{method} have no validation curve for {head}.{event}.{metric} "
            f"(their metrics.json 'validation_curve' is empty or lacks the {head!r} head)"
        )
    steps = sub.groupby(["fold", "seed"])["step"].apply(lambda s: tuple(sorted(s)))
    key = "step" if steps.nunique() == 1 else "eval"
    grouped = sub.groupby(key)
    out = pd.DataFrame({"step": grouped["step"].mean(), "mean": grouped["value"].mean(), "std": grouped["value"].std(ddof=1),
                        "n": grouped["value"].count()})
    return out.reset_index(drop=True).sort_values("step")


def figure_convergence(config: dict, inputs: list[Path]) -> Figure:
    info = dataset_info(config, "rc15")
    groups = grid.experiment_runs(config)["figure2"]
    pairs = run_pairs(config)
    curves = load_curves(inputs)
    require_runs(curves, [(d, e, m, f, s) for d, e, m in groups for f, s in pairs], "figure2")
    variants = grid.method_variants(config)
    fig, axes, colors = _panel_grid()
    for i, event in enumerate(("purchase", "click")):
        for j, metric in enumerate(("hr@10", "ndcg@10")):
            ax = axes[i, j]
            for c, run in enumerate(groups):
                series = convergence_series(curves, run, "supervised", event, metric)
                color = colors[c % len(colors)]
                label = method_row_label(variants, run[1], run[2])
                ax.plot(series["step"], series["mean"], marker="o", markersize=3, color=color, label=label)
                _band(ax, series["step"].to_numpy(), series["mean"].to_numpy(), series["std"].to_numpy(), color)
            name, _, k = metric.partition("@")
            ax.set_title(f"({'abcd'[2 * i + j]}) {EVENT_TITLES[event]} {METRIC_TITLES[name]}@{k}")
            ax.set_ylabel(f"{METRIC_TITLES[name]}@{k} (validation)")
            if i == 1:
                ax.set_xlabel("training step")
    _legend(fig, axes[0, 0], len(pairs))
    fig.suptitle(f"Convergence on the validation split of {_dataset_title(info)}, supervised head\n(paper: Figure 2, RC15)")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


# --------------------------------------------------------------------------------------------------------------
# Figures 3 and 4: metrics vs the number of negative samples


def negatives_series(index: RunIndex, config: dict, info: DatasetInfo, event: str, metric: str) -> pd.DataFrame:
    """Per number of negatives |N|: mean, std and n over the (fold, seed) runs of the test split, supervised head."""
    ns = config["experiments"]["negative_samples"]
    pairs = run_pairs(config)
    rows = []
    for count in dict.fromkeys(int(v) for v in ns["values"]):
        variant = grid.negative_samples_variant(config, count)
        row = Row(variant, f"|N|={count}", "", info.name, ns["encoder"], variant, "supervised")
        values = index.series(row, Column(event, metric), "test", pairs, row.label)
        rows.append({"negatives": count, "mean": values.mean(), "std": values.std(ddof=1), "n": int(values.count())})
    return pd.DataFrame(rows)


def figure_negatives(name: str, config: dict, inputs: list[Path]) -> Figure:
    role = {"figure3": "rc15", "figure4": "retailrocket"}[name]
    info = dataset_info(config, role)
    ns = config["experiments"]["negative_samples"]
    pairs = run_pairs(config)
    index = RunIndex(load_runs(inputs), name)
    index.require([(d, e, m, f, s) for d, e, m in grid.experiment_runs(config)[name] for f, s in pairs])
    variants = grid.method_variants(config)
    counts = sorted(dict.fromkeys(int(v) for v in ns["values"]))
    fig, axes, colors = _panel_grid()
    for i, event in enumerate(("purchase", "click")):
        for j, kind in enumerate(("hr", "ndcg")):
            ax = axes[i, j]
            defined = False
            for c, k in enumerate((5, 10, 20)):
                series = negatives_series(index, config, info, event, f"{kind}@{k}").sort_values("negatives")
                if series["n"].sum() == 0:
                    continue
                defined = True
                color = colors[c % len(colors)]
                ax.plot(series["negatives"], series["mean"], marker="o", markersize=4, color=color, label=f"@{k}")
                _band(ax, series["negatives"].to_numpy(), series["mean"].to_numpy(), series["std"].to_numpy(), color)
            if not defined:
                ax.text(0.5, 0.5, "n/a: the test splits have no purchases", ha="center", va="center", transform=ax.transAxes)
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(FixedLocator(counts))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticklabels([str(c) for c in counts])
            ax.set_title(f"({'abcd'[2 * i + j]}) {EVENT_TITLES[event]} {METRIC_TITLES[kind]}")
            ax.set_ylabel(f"{METRIC_TITLES[kind]}@k (test)")
            if i == 1:
                ax.set_xlabel("number of negative samples |N| (log scale)")
    _legend(fig, axes[1, 0], len(pairs))
    model = method_row_label(variants, ns["encoder"], ns["method"])
    paper = {"figure3": "Figure 3, RC15", "figure4": "Figure 4, RetailRocket"}[name]
    fig.suptitle(f"{model} vs the number of negative samples on {_dataset_title(info)}\n"
                 f"test split, supervised head (paper: {paper})")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def render_figure(name: str, config: dict, inputs: list[Path], out_pdf: Path, out_png: Path) -> None:
    """Render figure2, figure3 or figure4 as PDF and PNG."""
    with matplotlib.style.context(STYLE):
        if name == "figure2":
            fig = figure_convergence(config, inputs)
        elif name in ("figure3", "figure4"):
            fig = figure_negatives(name, config, inputs)
        else:
            raise UserError(f"no figure named {name!r}; known: figure2, figure3, figure4")
        _save(fig, Path(out_pdf), Path(out_png))
