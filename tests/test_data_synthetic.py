"""Synthetic data: exact raw formats, determinism, and the structure the paper's comparisons need."""

import re

import numpy as np
import pandas as pd
import pytest

from sa2c.data.preprocess import preprocess
from sa2c.data.synthetic import SyntheticSpec, first_visit, generate, simulate
from sa2c.errors import DataError

# The default config's sizes (config/config.yaml).
SPEC = {
    "sessions": 4000,
    "items": 400,
    "zipf": 1.0,
    "successors": 5,
    "successor_prob": 0.7,
    "purchase_rate": 0.04,
    "groups": 20,
}


@pytest.fixture(scope="module")
def rc15(tmp_path_factory):
    root = tmp_path_factory.mktemp("rc15")
    paths = generate("rc15", root / "raw", {**SPEC, "seed": 1})
    preprocess({"format": "rc15", "sample_sessions": 200000}, root / "raw", root / "data")
    return root, paths


@pytest.fixture(scope="module")
def retailrocket(tmp_path_factory):
    root = tmp_path_factory.mktemp("rr")
    paths = generate("retailrocket", root / "raw", {**SPEC, "items": 500, "seed": 2})
    preprocess({"format": "retailrocket"}, root / "raw", root / "data")
    return root, paths


def events_of(root):
    with np.load(root / "data" / "events.npz", allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def test_rc15_raw_format(rc15):
    root, paths = rc15
    assert [p.name for p in paths] == ["yoochoose-clicks.dat", "yoochoose-buys.dat"]
    iso = r"2014-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    clicks_text = (root / "raw" / "yoochoose-clicks.dat").read_text()
    assert re.fullmatch(rf"(\d+,{iso},\d+,\w+\n)+", clicks_text)
    assert re.fullmatch(rf"(\d+,{iso},\d+,\d+,\d+\n)+", (root / "raw" / "yoochoose-buys.dat").read_text())
    names = ["session", "time", "item", "x"]
    clicks = pd.read_csv(root / "raw" / "yoochoose-clicks.dat", header=None, names=names)
    buys = pd.read_csv(root / "raw" / "yoochoose-buys.dat", header=None, names=names + ["y"])
    # Realistic raw ids: large item ids, session ids with gaps.
    assert clicks["item"].min() > 1_000_000 and clicks["session"].max() > clicks["session"].nunique()
    # Some 1-2 click sessions for the filter to drop.
    per_session = clicks.groupby("session").size()
    assert (per_session <= 2).sum() > 0.1 * len(per_session)
    # Every buy is of an item its session clicked, after that click.
    first_click = clicks.groupby(["session", "item"])["time"].min()
    assert (
        buys["time"].to_numpy() > first_click.loc[list(zip(buys["session"], buys["item"], strict=True))].to_numpy()
    ).all()
    # Buys as in YooChoose: most come after the session's browsing (its last click), the rest right after their
    # click; the bought item is often not the last one clicked.
    by_session = clicks.groupby("session")
    after_browsing = buys["time"].to_numpy() > by_session["time"].max().loc[buys["session"]].to_numpy()
    assert 0.6 < after_browsing.mean() < 0.95
    assert (buys["item"].to_numpy() != by_session["item"].last().loc[buys["session"]].to_numpy()).mean() > 0.3


def test_retailrocket_raw_format(retailrocket):
    root, paths = retailrocket
    assert [p.name for p in paths] == ["events.csv"]
    text = (root / "raw" / "events.csv").read_text()
    assert text.startswith("timestamp,visitorid,event,itemid,transactionid\n")
    rows = pd.read_csv(root / "raw" / "events.csv")
    assert set(rows["event"]) == {"view", "addtocart", "transaction"}
    # A transaction id exactly on the transaction rows; millisecond timestamps in 2014.
    assert (rows["transactionid"].notna() == (rows["event"] == "transaction")).all()
    assert rows["transactionid"].dropna().is_unique
    assert rows["timestamp"].between(1_388_534_400_000, 1_420_070_400_000).all()
    assert rows["visitorid"].max() > rows["visitorid"].nunique()
    # Every add-to-cart follows a view of its item by its visitor; often other views of the visitor come in between.
    views = rows[rows["event"] == "view"].sort_values("timestamp", kind="stable").copy()
    views["views_so_far"] = views.groupby("visitorid").cumcount()
    carts = rows[rows["event"] == "addtocart"].sort_values("timestamp", kind="stable")
    item_view = pd.merge_asof(
        carts, views, on="timestamp", by=["visitorid", "itemid"], allow_exact_matches=False, suffixes=("", "_v")
    )["views_so_far"]
    latest_view = pd.merge_asof(
        carts, views, on="timestamp", by="visitorid", allow_exact_matches=False, suffixes=("", "_v")
    )["views_so_far"]
    assert item_view.notna().all()
    assert (latest_view > item_view).mean() > 0.3


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    spec = {**SPEC, "sessions": 300, "items": 100}
    for fmt in ("rc15", "retailrocket"):
        a = generate(fmt, tmp_path / fmt / "a", {**spec, "seed": 5})
        b = generate(fmt, tmp_path / fmt / "b", {**spec, "seed": 5})
        c = generate(fmt, tmp_path / fmt / "c", {**spec, "seed": 6})
        for pa, pb, pc in zip(a, b, c, strict=True):
            assert pa.read_bytes() == pb.read_bytes()
            assert pa.read_bytes() != pc.read_bytes()


def hit_rates(events, held_out_fraction=0.2, k=10):
    """HR@k on held-out sessions of popularity and of a first-order model (most frequent next items), for clicks and
    purchases, and HR@1 of two purchase predictors that pick one of the items clicked so far in the session: the last
    clicked item, and the item with the most expected purchases (its buy rate in training times its clicks so far,
    older clicks discounted by 0.7 per later click)."""
    session, item, n = events["session"], events["item"], int(events["n_items"])
    is_buy = events["is_buy"].astype(bool)
    held_out = np.random.default_rng(0).random(session.max() + 1) < held_out_fraction
    test, train = held_out[session], ~held_out[session]
    same_session_as_previous = np.r_[False, session[1:] == session[:-1]]
    previous = np.r_[0, item[:-1]]
    popular = np.argsort(-np.bincount(item[train], minlength=n), kind="stable")[:k]
    successor_counts = np.zeros((n, n))
    pairs = train & same_session_as_previous
    np.add.at(successor_counts, (previous[pairs], item[pairs]), 1)
    likely_next = np.argsort(-successor_counts, axis=1, kind="stable")[:, :k]
    rates = {}
    for kind, mask in (("click", ~is_buy), ("purchase", is_buy)):
        rows = np.flatnonzero(test & mask)
        popularity_hit = np.isin(item[rows], popular)
        # A session's first event has no previous item: the first-order model falls back to popularity.
        first_order_hit = np.where(
            same_session_as_previous[rows],
            (likely_next[previous[rows]] == item[rows, None]).any(axis=1),
            popularity_hit,
        )
        rates[f"popularity_{kind}"], rates[f"first_order_{kind}"] = popularity_hit.mean(), first_order_hit.mean()

    buy_rate = (np.bincount(item[train & is_buy], minlength=n) + 0.04) / (
        np.bincount(item[train & ~is_buy], minlength=n) + 1.0
    )
    session_start = np.searchsorted(session, session)  # events are sorted by session
    last_hits, history_hits = [], []
    for i in np.flatnonzero(test & is_buy):
        earlier = np.arange(session_start[i], i)
        clicked = item[earlier[~is_buy[earlier]]]
        candidates, which = np.unique(clicked, return_inverse=True)
        recent_clicks = np.bincount(which, weights=0.7 ** np.arange(len(clicked))[::-1])
        last_hits.append(clicked[-1] == item[i])
        history_hits.append(candidates[np.argmax(buy_rate[candidates] * recent_clicks)] == item[i])
    rates["last_clicked_purchase"], rates["history_purchase"] = np.mean(last_hits), np.mean(history_hits)
    return rates


@pytest.mark.parametrize("dataset", ["rc15", "retailrocket"])
def test_structure(dataset, request):
    root, _ = request.getfixturevalue(dataset)
    stats = pd.read_json(root / "data" / "stats.json", typ="series")
    rates = hit_rates(events_of(root))
    assert 0.15 <= rates["popularity_click"] <= 0.35
    assert 0.15 <= stats["popularity_click_hr@10"] <= 0.35
    assert rates["first_order_click"] > rates["popularity_click"] + 0.25  # a clear sequential signal
    assert stats["purchase_fraction"] == pytest.approx(0.04, abs=0.008)
    assert 4.5 <= stats["mean_session_length"] <= 7
    assert stats["max_session_length"] >= 30  # a long tail


@pytest.mark.parametrize("dataset", ["rc15", "retailrocket"])
def test_purchase_prediction_is_not_trivial(dataset, request):
    root, _ = request.getfixturevalue(dataset)
    rates = hit_rates(events_of(root))
    # The next event does not simply repeat the clicked item as a purchase (HR@10 near 1), yet purchases are
    # predictable: above popularity, and better from the session's history than from its last click.
    assert rates["popularity_purchase"] < rates["first_order_purchase"] < 0.7
    assert rates["history_purchase"] > rates["last_clicked_purchase"] + 0.05


def test_purchase_propensity_depends_on_item_and_history():
    sim = simulate(SyntheticSpec.from_dict({**SPEC, "seed": 1}))
    session, item, bought = sim.clicks.session, sim.clicks.item, sim.bought
    n = SPEC["items"]
    # History: a revisited item (clicked before in the session) is bought more often than a first visit.
    revisit = ~first_visit(session, item)
    assert bought[revisit].mean() > 1.5 * bought[~revisit].mean()
    # Item: per-item purchase rates agree between two halves of the sessions (a latent buyability).
    half = session % 2 == 0
    rates = [
        np.bincount(item[part], weights=bought[part], minlength=n) / np.maximum(np.bincount(item[part], minlength=n), 1)
        for part in (half, ~half)
    ]
    frequent = np.bincount(item, minlength=n) >= 100
    assert np.corrcoef(rates[0][frequent], rates[1][frequent])[0, 1] > 0.5


def test_no_purchases(tmp_path):
    generate("rc15", tmp_path / "raw", {**SPEC, "sessions": 100, "items": 50, "purchase_rate": 0.0, "seed": 0})
    assert (tmp_path / "raw" / "yoochoose-buys.dat").read_bytes() == b""


@pytest.mark.parametrize(
    "change,message",
    [
        ({"colour": 1}, r"unknown key\(s\) \['colour'\]"),
        ({"purchase_rate": 0.6}, r"purchase_rate=0.6 must be in \[0, 0.5\)"),
        ({"items": 5}, "items=5 must be >= 20"),
    ],
)
def test_bad_spec(tmp_path, change, message):
    with pytest.raises(DataError, match=message):
        generate("rc15", tmp_path, {**SPEC, "seed": 0, **change})
    with pytest.raises(DataError, match="format='csv'"):
        generate("csv", tmp_path, {**SPEC, "seed": 0})
