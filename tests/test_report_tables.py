"""The paper tables: CSV numbers against hand-computed ones, the .tex against the CSV, bold, marks, errors."""

from __future__ import annotations

import json
import statistics

import pandas as pd
import pytest
from scipy import stats as scipy_stats
from test_report_fixtures import default_value, parse_cell, small_config, tex_body, write_groups, write_run

from sa2c import config as grid
from sa2c.errors import UserError
from sa2c.report.tables import render_table

PAIRS = [(f, s) for f in (0, 1, 2) for s in (0, 1)]  # small_config's (fold, seed) runs


def render(tmp_path, name, config, inputs):
    tex, csv = tmp_path / f"paper_tables/{name}.tex", tmp_path / f"paper_tables/{name}.csv"
    render_table(name, config, inputs, tex, csv)
    return tex.read_text(), pd.read_csv(csv)


def row_of(frame, row, event, metric, group=None):
    hit = frame[(frame["row"] == row) & (frame.event == event) & (frame.metric == metric)]
    if group is not None:
        hit = hit[hit["group"] == group]
    assert len(hit) == 1, (row, event, metric, group)
    return hit.iloc[0]


@pytest.fixture
def table2(tmp_path):
    config = small_config()
    inputs = write_groups(tmp_path, config, grid.experiment_runs(config)["table2"])
    tex, frame = render(tmp_path, "table2", config, inputs)
    return config, inputs, tex, frame


def test_table2_cells_are_mean_std_n_over_folds_and_seeds(table2):
    _, _, _, frame = table2
    # 2 encoders x 5 methods, 12 columns (purchase and click x HR/NDCG @5/10/20).
    assert len(frame) == 2 * 5 * 12
    assert list(frame[frame.row == "GRU"].metric[:6]) == ["hr@5", "ndcg@5", "hr@10", "ndcg@10", "hr@20", "ndcg@20"]
    cell = row_of(frame, "GRU-SA2C", "purchase", "ndcg@10")
    # default_value: 0.25 (SA2C) + 0.03 (ndcg@10) + 0.1 (purchase) + 0.001 fold + 0.0001 seed.
    by_hand = [0.38, 0.3801, 0.381, 0.3811, 0.382, 0.3821]
    assert cell["mean"] == pytest.approx(0.38105, abs=1e-12)
    assert cell["std"] == pytest.approx(statistics.stdev(by_hand), rel=1e-9)
    assert (cell["n"], cell["n_expected"], cell["head"], cell["split"]) == (6, 6, "supervised", "test")
    assert (cell["dataset"], cell["encoder"], cell["method"]) == ("rc15-synth", "gru", "sa2c")
    base = row_of(frame, "SASRec", "click", "hr@5")
    assert base["mean"] == pytest.approx(0.20105, abs=1e-12)
    assert base["method"] == "base" and pd.isna(base["ref_row_vs_base"])  # no test against itself


def test_table2_tex_numbers_equal_the_csv(table2):
    _, _, tex, frame = table2
    groups = tex_body(tex)
    assert [[label for label, _ in g] for g in groups] == [
        ["GRU", "GRU-SQN", "GRU-SNQN", "GRU-SAC", "GRU-SA2C"],
        ["SASRec", "SASRec-SQN", "SASRec-SNQN", "SASRec-SAC", "SASRec-SA2C"],
    ]
    for group in groups:
        for label, cells in group:
            expected = frame[frame.row == label]
            assert len(cells) == len(expected) == 12
            for cell, (_, want) in zip(cells, expected.iterrows()):
                assert parse_cell(cell)["mean"] == f"{want['mean']:.4f}"
    assert "rc15-synth (synthetic data in the role of RC15; not the paper's data)" in tex
    assert "\\begin{table}" in tex and "\\documentclass" not in tex and "\\toprule" in tex


def _group_winner_value(encoder, method, fold, seed, event, metric):
    """Per encoder a different winner per column, to check bold within groups."""
    winners = {("gru", "purchase"): "sqn", ("gru", "click"): "sa2c", ("sasrec", "purchase"): "base", ("sasrec", "click"): "sac"}
    level = 0.3 if method == winners[(encoder, event)] else 0.2 + 0.01 * ["base", "sqn", "snqn", "sac", "sa2c"].index(method)
    return level + 0.001 * fold + 0.0001 * seed


def test_bold_marks_the_best_mean_per_column_within_each_group(tmp_path):
    config = small_config()
    value = lambda d, e, m, f, s, h, sp, ev, me: _group_winner_value(e, m, f, s, ev, me)  # noqa: E731
    tex, frame = render(tmp_path, "table2", config, write_groups(tmp_path, config, grid.experiment_runs(config)["table2"], value))
    for group in tex_body(tex):
        for j in range(12):
            bold = {label for label, cells in group if parse_cell(cells[j])["bold"]}
            means = {label: float(parse_cell(cells[j])["mean"]) for label, cells in group}
            assert bold == {label for label, m in means.items() if m == max(means.values())}
            assert len(bold) == 1
    assert row_of(frame, "GRU-SQN", "purchase", "hr@5")["best_in_group"]
    assert row_of(frame, "GRU-SA2C", "click", "ndcg@20")["best_in_group"]
    assert row_of(frame, "SASRec", "purchase", "hr@10")["best_in_group"]
    assert not row_of(frame, "SASRec-SA2C", "purchase", "hr@10")["best_in_group"]


def test_a_missing_run_is_an_error_naming_it(table2, tmp_path):
    config, inputs, _, _ = table2
    missing = [p for p in inputs if "/gru/sac/fold1/seed0/" in p.as_posix()]
    assert len(missing) == 1
    kept = [p for p in inputs if p not in missing]
    with pytest.raises(UserError, match=r"results/runs/rc15-synth/gru/sac/fold1/seed0/metrics.json \(dataset=rc15-synth"):
        render_table("table2", config, kept, tmp_path / "t.tex", tmp_path / "t.csv")
    assert not (tmp_path / "t.tex").exists()


def test_a_missing_metric_is_an_error_naming_run_and_metric(tmp_path):
    config = small_config()
    inputs = write_groups(tmp_path, config, grid.experiment_runs(config)["table5"])
    victim = next(p for p in inputs if "/sa2c-offpolicy/fold2/seed1/" in p.as_posix())
    data = json.loads(victim.read_text())
    del data["test"]["supervised"]["click"]["off_ndcg@10"]
    victim.write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"sa2c-offpolicy/fold2/seed1/metrics.json: metric test.supervised.click.off_ndcg@10 is missing"):
        render_table("table5", config, inputs, tmp_path / "t.tex", tmp_path / "t.csv")


# Hand-chosen paired values (one per (fold, seed)) for click NDCG@10 of the GRU rows.
BASE = [0.20, 0.21, 0.19, 0.22, 0.20, 0.21]
CLEAR = [0.03, 0.025, 0.035, 0.03, 0.028, 0.032]  # SA2C - base: a clear improvement
NOISE = [0.01, -0.012, 0.004, -0.006, 0.011, -0.009]  # SQN, SAC - base: noise around 0


def _paired_value(dataset, encoder, method, fold, seed, head, split, event, metric):
    i = PAIRS.index((fold, seed))
    offset = {"base": 0.0, "sqn": NOISE[i], "sac": NOISE[::-1][i], "snqn": 0.5 * CLEAR[i], "sa2c": CLEAR[i]}[method]
    return BASE[i] + offset + 0.01 * ("ndcg@10" != metric) + 0.1 * (event == "purchase")


def test_paired_t_test_p_values_and_significance_marks(tmp_path):
    config = small_config(encoders=["gru"])
    inputs = write_groups(tmp_path, config, grid.experiment_runs(config)["table2"], _paired_value)
    tex, frame = render(tmp_path, "table2", config, inputs)
    base = [b for b in BASE]
    sa2c = [b + c for b, c in zip(BASE, CLEAR)]
    sqn = [b + n for b, n in zip(BASE, NOISE)]
    sac = [b + n for b, n in zip(BASE, NOISE[::-1])]
    cell = row_of(frame, "GRU-SA2C", "click", "ndcg@10")
    assert cell["p_ttest_vs_base"] == pytest.approx(scipy_stats.ttest_rel(sa2c, base).pvalue, rel=1e-9)
    assert cell["p_wilcoxon_vs_base"] == pytest.approx(scipy_stats.wilcoxon(sa2c, base).pvalue, rel=1e-9)
    assert cell["p_ttest_vs_sac"] == pytest.approx(scipy_stats.ttest_rel(sa2c, sac).pvalue, rel=1e-9)
    assert cell["diff_vs_base"] == pytest.approx(statistics.mean(CLEAR))
    assert cell["n_pairs_vs_base"] == 6 and cell["ref_row_vs_base"] == "GRU"
    noisy = row_of(frame, "GRU-SQN", "click", "ndcg@10")
    assert noisy["p_ttest_vs_base"] == pytest.approx(scipy_stats.ttest_rel(sqn, base).pvalue, rel=1e-9)
    assert noisy["p_ttest_vs_base"] > 0.05
    assert pd.isna(noisy["p_ttest_vs_sac"])  # SQN is compared with base only (and SNQN with it)
    assert cell["p_ttest_vs_base"] < 0.001
    # In the .tex: the dagger on the clear improvement only, the double dagger for SA2C over SAC.
    rows = dict(tex_body(tex)[0])
    column = 9  # click NG@10
    assert parse_cell(rows["GRU-SA2C"][column])["marks"] == ["\\dagger", "\\ddagger"]
    assert parse_cell(rows["GRU-SQN"][column])["marks"] == []
    assert parse_cell(rows["GRU-SAC"][column])["marks"] == []
    assert parse_cell(rows["GRU"][column])["marks"] == []
    assert "paired $t$-test" in tex and "$p < 0.05$" in tex


def test_significance_level_comes_from_the_config(tmp_path):
    config = small_config(encoders=["gru"], significance_level=1e-6)
    inputs = write_groups(tmp_path, config, grid.experiment_runs(config)["table2"], _paired_value)
    tex, frame = render(tmp_path, "table2", config, inputs)
    assert "\\dagger" not in tex.split("\\midrule", 1)[1]
    assert "$p < 1e-06$" in tex
    assert pd.isna(row_of(frame, "GRU-SA2C", "click", "ndcg@10")["marks"])  # no marks: an empty CSV cell


def test_undefined_purchase_metrics_render_na_and_partial_means_are_marked(tmp_path):
    config = small_config(encoders=["gru"])
    groups = grid.experiment_runs(config)["table2"]
    inputs = write_groups(tmp_path, config, groups, n_test={"purchase": 0})
    tex, frame = render(tmp_path, "table2", config, inputs)
    for label, cells in tex_body(tex)[0]:
        assert cells[:6] == ["n/a"] * 6 and all(parse_cell(c)["mean"] for c in cells[6:])
    assert "n/a: purchase metrics are undefined because the test splits of these runs contain no purchases" in tex
    cell = row_of(frame, "GRU-SA2C", "purchase", "hr@5")
    assert cell["n"] == 0 and pd.isna(cell["mean"])

    # Only fold 0 without purchases: the mean of the other 4 runs, marked, with n = 4 in the CSV.
    write_groups(tmp_path, config, groups)
    for dataset, encoder, method in groups:
        for seed in config["seeds"]:
            write_run(tmp_path, dataset, encoder, method, 0, seed, ["supervised"] if method == "base" else ["supervised", "q"],
                      n_test={"purchase": 0})
    tex, frame = render(tmp_path, "table2", config, inputs)
    cell = row_of(frame, "GRU-SA2C", "purchase", "hr@5")
    assert cell["n"] == 4
    assert cell["mean"] == pytest.approx(statistics.mean(
        default_value("rc15-synth", "gru", "sa2c", f, s, "supervised", "test", "purchase", "hr@5") for f in (1, 2) for s in (0, 1)))
    assert "\\ast" in parse_cell(dict(tex_body(tex)[0])["GRU-SA2C"][0])["marks"]
    assert "fewer than 6" in tex


def test_undefined_click_metrics_are_an_error(tmp_path):
    config = small_config(encoders=["gru"])
    inputs = write_groups(tmp_path, config, grid.experiment_runs(config)["table2"], n_test={"click": 0})
    with pytest.raises(UserError, match="has no click events"):
        render_table("table2", config, inputs, tmp_path / "t.tex", tmp_path / "t.csv")


def test_show_std_renders_mean_plus_minus_std(tmp_path):
    config = small_config(encoders=["gru"], show_std=True)
    tex, frame = render(tmp_path, "table2", config, write_groups(tmp_path, config, grid.experiment_runs(config)["table2"]))
    rows = dict(tex_body(tex)[0])
    parsed = parse_cell(rows["GRU-SNQN"][2])
    want = row_of(frame, "GRU-SNQN", "purchase", "hr@10")
    assert (parsed["mean"], parsed["std"]) == (f"{want['mean']:.4f}", f"{want['std']:.4f}")
    assert "$\\pm$" in rows["GRU-SNQN"][2] and "sample standard deviation" in tex


def test_tables_4_5_6_layout(tmp_path):
    config = small_config()
    runs = grid.experiment_runs(config)
    tex4, t4 = render(tmp_path, "table4", config, write_groups(tmp_path, config, runs["table4"]))
    assert set(t4["head"]) == {"q"} and set(t4.dataset) == {"rc15-synth", "retailrocket-synth"}
    dqn = row_of(t4, "GRU-DQN", "click", "hr@5", group="RC15 role: rc15-synth, synthetic")
    assert dqn["mean"] == pytest.approx(0.10 + 0.05 + 0.00105)  # DQN level + Q head offset + fold/seed mean
    assert "RetailRocket role: retailrocket-synth, synthetic" in tex4
    assert [[label for label, _ in g] for g in tex_body(tex4)] == [["GRU-DQN", "GRU-SNQN", "GRU-SA2C"]] * 2
    assert parse_cell(dict(tex_body(tex4)[0])["GRU-SNQN"][0])["marks"] == ["\\dagger"]  # vs DQN

    tex5, t5 = render(tmp_path, "table5", config, write_groups(tmp_path, config, runs["table5"]))
    assert list(t5.metric[:3]) == ["hr@10", "ndcg@10", "off_ndcg@10"] and len(t5) == 2 * 2 * 6
    assert [label for label, _ in tex_body(tex5)[0]] == ["GRU-SA2C w/o correction", "GRU-SA2C w/ correction (smooth 1)"]
    off = row_of(t5, "GRU-SA2C w/o correction", "click", "off_ndcg@10", group="RC15 role: rc15-synth, synthetic")
    assert off["mean"] == pytest.approx(0.25 + 0.06 + 0.00105)

    tex6, t6 = render(tmp_path, "table6", config, write_groups(tmp_path, config, runs["table6"]))
    rows = t6.drop_duplicates("row")
    assert list(rows.row) == ["r_neg=0", "r_neg=-0.5", "r_neg=-1"]
    assert list(rows.method) == ["snqn", "snqn_rneg-0.5", "snqn_rneg-1"]
    assert "$r_{\\mathrm{neg}} = -0.5$" in tex6 and "GRU-SNQN on rc15-synth" in tex6


def test_table1_dataset_statistics(tmp_path):
    config = small_config()
    inputs = []
    for name, stats in (("rc15-synth", (4000, 400, 20000, 800)), ("retailrocket-synth", (3000, 500, 15000, 700))):
        path = tmp_path / f"results/data/{name}/stats.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(dict(zip(("sessions", "items", "clicks", "purchases"), stats), **{"popularity_click_hr@10": 0.25})))
        inputs.append(path)
    tex, frame = render(tmp_path, "table1", config, inputs)
    this = frame[frame.source == "this run"].set_index(["dataset", "statistic"])["value"]
    assert this[("retailrocket-synth", "clicks")] == 15000
    assert this[("rc15-synth", "purchase_share")] == pytest.approx(800 / 20800)
    assert this[("rc15-synth", "events_per_session")] == pytest.approx(20800 / 4000)
    assert "rc15-synth (synthetic)" in tex and "retailrocket-synth (synthetic)" in tex
    assert "Sessions & 200,000 & 4,000 & 195,523 & 3,000" in tex  # published beside this run
    assert "Popularity: click HR@10 & -- & 0.250 & -- & 0.250" in tex and "purchase HR@10" not in tex
    del_key = json.loads(inputs[1].read_text())
    del del_key["purchases"]
    inputs[1].write_text(json.dumps(del_key))
    with pytest.raises(UserError, match=r"retailrocket-synth/stats.json: key\(s\) purchases missing"):
        render_table("table1", config, inputs, tmp_path / "t.tex", tmp_path / "t.csv")


def test_paper_vs_run_shows_published_cells_beside_this_runs(tmp_path):
    config = small_config()
    runs = grid.experiment_runs(config)
    inputs = write_groups(tmp_path, config, runs["table2"] + runs["table3"])
    tex, frame = render(tmp_path, "paper_vs_run", config, inputs)
    paper = frame[frame.source == "paper"].set_index(["role", "event", "quantity"])["mean"]
    assert paper[("rc15", "click", "base")] == 0.2515 and paper[("rc15", "click", "sa2c")] == 0.2719
    assert paper[("rc15", "purchase", "delta")] == pytest.approx(0.3728 - 0.3326)
    assert paper[("retailrocket", "purchase", "relative_delta")] == pytest.approx((0.5246 - 0.4510) / 0.4510)
    assert paper[("retailrocket", "click", "sa2c")] == 0.2416
    run = frame[frame.source == "this run"].set_index(["role", "event", "quantity"])
    base = statistics.mean(default_value("", "sasrec", "base", f, s, "supervised", "test", "click", "ndcg@10") for f, s in PAIRS)
    sa2c = statistics.mean(default_value("", "sasrec", "sa2c", f, s, "supervised", "test", "click", "ndcg@10") for f, s in PAIRS)
    assert run.loc[("rc15", "click", "base"), "mean"] == pytest.approx(base)
    assert run.loc[("rc15", "click", "delta"), "mean"] == pytest.approx(sa2c - base)
    assert run.loc[("rc15", "click", "relative_delta"), "mean"] == pytest.approx((sa2c - base) / base)
    assert set(frame[frame.source == "this run"].dataset) == {"rc15-synth", "retailrocket-synth"}
    assert "RC15 & Click NG@10 & 0.2515 & 0.2719 & +0.0204 & +8.1\\%" in tex
    assert "RetailRocket & Purchase NG@10 & 0.4510 & 0.5246 & +0.0736 & +16.3\\%" in tex
    assert "rc15-synth (synthetic)" in tex and "Synthetic results are not the paper's data" in tex


def test_paper_vs_run_without_sasrec_in_the_config_says_not_run(tmp_path):
    config = small_config(encoders=["gru"])
    runs = grid.experiment_runs(config)
    tex, frame = render(tmp_path, "paper_vs_run", config, write_groups(tmp_path, config, runs["table2"] + runs["table3"]))
    assert tex.count("& not run & not run & not run & not run & -- \\\\") == 4 and "SASRec on rc15-synth" in tex
    assert set(frame.source) == {"paper"}
