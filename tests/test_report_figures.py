"""Figures 2-4: the plotted series against hand-computed means, and valid, non-empty PDF and PNG files."""

from __future__ import annotations

import math
import statistics
import struct

import pytest
from test_report_fixtures import default_value, small_config, write_groups, write_run

from sa2c import config as grid
from sa2c.errors import UserError
from sa2c.report.aggregate import load_curves, load_runs
from sa2c.report.figures import convergence_series, negatives_series, render_figure
from sa2c.report.specs import dataset_info
from sa2c.report.tables import RunIndex

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def negatives_value(dataset, encoder, method, fold, seed, head, split, event, metric):
    """A rise-then-fall in |N| (as in the paper's Figures 3-4), per k, with fold noise."""
    count = int(method.split("_neg")[1]) if "_neg" in method else 10
    k = int(metric.split("@")[1])
    return 0.1 + 0.05 * math.log(count) - 0.006 * math.log(count) ** 2 + 0.004 * k + 0.01 * fold + 0.1 * (event == "purchase")


def assert_valid_files(pdf, png):
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and b"%%EOF" in data[-64:] and len(data) > 5000
    head = png.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    assert width > 600 and height > 400 and png.stat().st_size > 10000


def test_figure2_convergence_curves(tmp_path):
    config = small_config()
    inputs = write_groups(tmp_path, config, grid.experiment_runs(config)["figure2"])
    series = convergence_series(load_curves(inputs), ("rc15-synth", "gru", "snqn"), "supervised", "click", "hr@10")
    assert list(series.step) == [100, 200, 300] and list(series.n) == [6, 6, 6]
    # The fixture's curve is the final validation value scaled by step / 300.
    final = [default_value("rc15-synth", "gru", "snqn", f, s, "supervised", "valid", "click", "hr@10") for f in (0, 1, 2) for s in (0, 1)]
    assert series["mean"].iloc[0] == pytest.approx(statistics.mean(round(v / 3, 6) for v in final))
    assert series["std"].iloc[2] == pytest.approx(statistics.stdev(final))
    render_figure("figure2", config, inputs, tmp_path / "figures/figure2.pdf", tmp_path / "figures/figure2.png")
    assert_valid_files(tmp_path / "figures/figure2.pdf", tmp_path / "figures/figure2.png")


def test_figure2_aligns_runs_that_evaluate_at_different_steps(tmp_path):
    config = small_config(folds=(0, 1), seeds=(0,))
    paths = []
    for method in config["experiments"]["convergence"]["methods"]:
        paths.append(write_run(tmp_path, "rc15-synth", "gru", method, 0, 0, ["supervised", "q"], curve_steps=(100, 200)))
        paths.append(write_run(tmp_path, "rc15-synth", "gru", method, 1, 0, ["supervised", "q"], curve_steps=(110, 220)))
    series = convergence_series(load_curves(paths), ("rc15-synth", "gru", "sqn"), "supervised", "purchase", "ndcg@10")
    assert list(series.step) == [105, 210] and list(series.n) == [2, 2]
    render_figure("figure2", config, paths, tmp_path / "f.pdf", tmp_path / "f.png")
    assert_valid_files(tmp_path / "f.pdf", tmp_path / "f.png")


@pytest.mark.parametrize("name, role", [("figure3", "rc15"), ("figure4", "retailrocket")])
def test_figures_3_and_4_metrics_against_negatives(tmp_path, name, role):
    config = small_config()
    inputs = write_groups(tmp_path, config, grid.experiment_runs(config)[name], negatives_value)
    info = dataset_info(config, role)
    series = negatives_series(RunIndex(load_runs(inputs), name), config, info, "click", "ndcg@20")
    assert list(series.negatives) == [1, 10, 50] and list(series.n) == [6, 6, 6]
    want = [negatives_value(info.name, "gru", "", f, s, "", "", "click", "ndcg@20") for f in (0, 1, 2) for s in (0, 1)]
    assert series["mean"].iloc[1] == pytest.approx(statistics.mean(want))  # |N| = 10 is the snqn variant itself
    assert series["std"].iloc[1] == pytest.approx(statistics.stdev(want))
    render_figure(name, config, inputs, tmp_path / f"{name}.pdf", tmp_path / f"{name}.png")
    assert_valid_files(tmp_path / f"{name}.pdf", tmp_path / f"{name}.png")


def test_figure_without_purchases_still_renders_and_missing_runs_are_errors(tmp_path):
    config = small_config(folds=(0,), seeds=(0,))
    inputs = write_groups(tmp_path, config, grid.experiment_runs(config)["figure3"], n_test={"purchase": 0})
    render_figure("figure3", config, inputs, tmp_path / "f.pdf", tmp_path / "f.png")
    assert_valid_files(tmp_path / "f.pdf", tmp_path / "f.png")
    with pytest.raises(UserError, match=r"results/runs/rc15-synth/gru/snqn_neg50/fold0/seed0/metrics.json"):
        render_figure("figure3", config, [p for p in inputs if "snqn_neg50" not in str(p)], tmp_path / "g.pdf", tmp_path / "g.png")
    assert not (tmp_path / "g.pdf").exists()
