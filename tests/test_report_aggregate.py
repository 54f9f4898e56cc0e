"""results/metrics.csv and the metrics.json loader behind every table and figure."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from test_report_fixtures import default_value, write_run

from sa2c.errors import UserError
from sa2c.report.aggregate import TIDY_COLS, load_curves, load_runs, write_metrics_csv


def test_metrics_csv_has_one_row_per_run_head_split_event_metric(tmp_path):
    base = write_run(tmp_path, "rc15-synth", "gru", "base", 0, 0, ["supervised"])
    snqn = write_run(tmp_path, "rc15-synth", "gru", "snqn", 1, 2, ["supervised", "q"], n_test={"purchase": 0})
    out = tmp_path / "results/metrics.csv"
    write_metrics_csv([base, snqn], out)
    frame = pd.read_csv(out)
    assert list(frame.columns) == TIDY_COLS
    # Per head and split: click and purchase (n + 7 metrics each) and all (n + 3 rewards) = 20 rows.
    assert len(frame) == 20 * 2 * 1 + 20 * 2 * 2
    assert set(frame.split) == {"valid", "test"} and set(frame.event) == {"click", "purchase", "all"}

    def cell(method, head, split, event, metric):
        hit = frame[(frame.method == method) & (frame["head"] == head) & (frame.split == split) & (frame.event == event)
                    & (frame.metric == metric)]
        assert len(hit) == 1
        return hit.iloc[0]

    row = cell("snqn", "q", "valid", "click", "ndcg@10")
    assert (row.dataset, row.encoder, row.fold, row.seed) == ("rc15-synth", "gru", 1, 2)
    assert row.value == pytest.approx(default_value("rc15-synth", "gru", "snqn", 1, 2, "q", "valid", "click", "ndcg@10"), abs=0)
    assert cell("base", "supervised", "test", "purchase", "n").value == 40
    assert cell("base", "supervised", "test", "all", "reward@10").value == 20.0
    # A test split without purchases: purchase metrics are empty (not 0), and n says why.
    assert cell("snqn", "supervised", "test", "purchase", "n").value == 0
    assert math.isnan(cell("snqn", "supervised", "test", "purchase", "hr@10").value)
    assert "purchase,hr@10,\n" in out.read_text()


def test_validation_curves_are_loaded_per_evaluation(tmp_path):
    path = write_run(tmp_path, "rc15-synth", "gru", "sqn", 0, 0, ["supervised", "q"], curve_steps=(50, 150))
    curves = load_curves([path])
    hit = curves[(curves["head"] == "supervised") & (curves.event == "click") & (curves.metric == "hr@10")]
    assert list(hit.step) == [50, 150] and list(hit["eval"]) == [0, 1]
    final = default_value("rc15-synth", "gru", "sqn", 0, 0, "supervised", "valid", "click", "hr@10")
    assert list(hit.value) == pytest.approx([round(final * 50 / 150, 6), round(final, 6)])


def test_malformed_files_name_the_file_and_key(tmp_path):
    path = write_run(tmp_path, "rc15-synth", "gru", "sqn", 0, 0, ["supervised", "q"])
    data = json.loads(path.read_text())
    del data["test"]["q"]
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"sqn/fold0/seed0/metrics.json: 'test.q' is missing"):
        load_runs([path])
    data["test"]["q"] = json.loads(json.dumps(data["test"]["supervised"]))
    data["test"]["q"]["click"]["hr@5"] = None  # null although there were click events
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"'test.q.click.hr@5' is null although n=1000"):
        load_runs([path])


def test_a_run_in_the_wrong_place_or_twice_is_an_error(tmp_path):
    path = write_run(tmp_path, "rc15-synth", "gru", "sqn", 0, 0, ["supervised", "q"])
    moved = tmp_path / "results/runs/rc15-synth/gru/sac/fold0/seed0/metrics.json"
    moved.parent.mkdir(parents=True)
    moved.write_text(path.read_text())
    with pytest.raises(UserError, match=r"method: file says 'sqn', path says 'sac'"):
        load_runs([moved])
    copy = tmp_path / "elsewhere/metrics.json"
    copy.parent.mkdir()
    copy.write_text(path.read_text())
    with pytest.raises(UserError, match="both hold run"):
        load_runs([path, copy])
