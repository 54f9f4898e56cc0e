"""Preprocessing: the RC15 and RetailRocket filters on tiny hand-made raw files, and bad input."""

import logging

import numpy as np
import pytest

from sa2c.data.preprocess import popularity_hit_rate, preprocess
from sa2c.errors import DataError
from sa2c.io import read_json

CLICKS = """\
10,2014-04-01T10:00:05.000Z,214000003,0
10,2014-04-01T10:00:01.000Z,214000001,0
10,2014-04-01T10:00:09.000Z,214000003,0
20,2014-04-01T11:00:00.000Z,214000005,0
20,2014-04-01T11:00:01.000Z,214000006,0
30,2014-04-02T09:00:00.000Z,214000007,S
30,2014-04-02T09:00:10.000Z,214000001,0
30,2014-04-02T09:00:20.000Z,214000002,0
30,2014-04-02T09:00:30.000Z,214000007,0
40,2014-04-03T08:00:00.000Z,214000008,0
"""
BUYS = """\
10,2014-04-01T10:00:05.000Z,214000003,1000,1
20,2014-04-01T11:00:02.000Z,214000005,500,1
30,2014-04-02T09:00:25.000Z,214000099,100,2
30,2014-04-02T09:00:15.000Z,214000001,100,1
99,2014-04-05T00:00:00.000Z,214000001,100,1
30,2014-04-02T09:00:40.000Z,214000005,100,1
"""
# Visitor 100 keeps 2 events after the item filter (the filters run once each); 200 and 500 have 2 events once the
# transaction rows are gone; item 5 has 4 events before the session filter but 2 after; 7 and 8 are rare too.
EVENTS = """\
timestamp,visitorid,event,itemid,transactionid
1000,100,view,5,
2000,100,addtocart,6,
2000,100,view,6,
3000,100,transaction,6,77
4000,100,view,7,
1500,200,view,5,
2500,200,view,5,
500,300,view,8,
600,300,view,5,
700,300,view,6,
800,300,view,9,
100,400,view,8,
200,400,view,9,
300,400,view,6,
400,400,addtocart,9,
50,500,view,7,
60,500,transaction,7,78
55,500,addtocart,7,
"""


def ms(text):
    return int(np.datetime64(text, "ms").astype(np.int64))


def write_rc15(directory, clicks=CLICKS, buys=BUYS):
    directory.mkdir(parents=True, exist_ok=True)
    if clicks is not None:
        (directory / "yoochoose-clicks.dat").write_text(clicks)
    if buys is not None:
        (directory / "yoochoose-buys.dat").write_text(buys)
    return directory


def load(out_dir):
    with np.load(out_dir / "events.npz", allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}, read_json(out_dir / "stats.json")


def test_rc15_by_hand(tmp_path, caplog):
    raw = write_rc15(tmp_path / "raw")
    with caplog.at_level(logging.INFO):
        preprocess({"format": "rc15", "sample_sessions": 5, "sample_seed": 0}, raw, tmp_path / "out")
    events, stats = load(tmp_path / "out")
    # Sessions 20 (2 clicks) and 40 (1 click) go; 10 -> 0, 30 -> 1. Items of the kept clicks, by raw id:
    # 214000001 -> 0, 214000002 -> 1, 214000003 -> 2, 214000007 -> 3.
    np.testing.assert_array_equal(events["session"], [0, 0, 0, 0, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(events["item"], [0, 2, 2, 2, 3, 0, 0, 1, 3])
    # The buy at 10:00:05 follows the click with the same timestamp.
    np.testing.assert_array_equal(events["is_buy"], [0, 0, 1, 0, 0, 0, 1, 0, 0])
    times = ["2014-04-01T10:00:01", "2014-04-01T10:00:05", "2014-04-01T10:00:05", "2014-04-01T10:00:09"]
    times += ["2014-04-02T09:00:00", "2014-04-02T09:00:10", "2014-04-02T09:00:15", "2014-04-02T09:00:20"]
    times += ["2014-04-02T09:00:30"]
    np.testing.assert_array_equal(events["timestamp"], [ms(t) for t in times])
    assert int(events["n_items"]) == 4
    assert events["session"].dtype == np.int64 and events["item"].dtype == np.int64
    assert events["is_buy"].dtype == np.int8 and events["timestamp"].dtype == np.int64

    assert stats["sessions"] == 2 and stats["items"] == 4 and stats["events"] == 9
    assert stats["clicks"] == 7 and stats["purchases"] == 2
    assert stats["mean_session_length"] == 4.5 and stats["median_session_length"] == 4.5
    assert stats["max_session_length"] == 5
    assert stats["purchase_fraction"] == pytest.approx(2 / 9)
    assert stats["popularity_click_hr@10"] == 1.0  # 4 items: everything is in the top 10
    assert stats["filters"] == {
        "raw_clicks": 10,
        "raw_buys": 6,
        "raw_sessions": 4,
        "sessions_dropped_2_or_fewer_clicks": 2,
        "sessions_not_sampled": 0,
        "clicks_dropped_with_their_session": 3,
        "buys_dropped_session_not_sampled": 2,  # session 20 (filtered out) and 99 (no clicks)
        "buys_dropped_item_never_clicked": 2,  # 214000099, and 214000005 (clicked only in session 20)
    }
    assert "fewer than sample_sessions=5: using all of them" in caplog.text
    assert "dropped 2 buys" in caplog.text


def test_rc15_sampling(tmp_path):
    raw = write_rc15(tmp_path / "raw")
    seen = set()
    for seed in range(8):
        out = tmp_path / f"out{seed}"
        preprocess({"format": "rc15", "sample_sessions": 1, "sample_seed": seed}, raw, out)
        events, stats = load(out)
        assert stats["sessions"] == 1 and stats["filters"]["sessions_not_sampled"] == 1
        if stats["items"] == 3:  # session 30: 214000001, 214000002, 214000007 and its buy of 214000001
            np.testing.assert_array_equal(events["item"], [2, 0, 0, 1, 2])
            np.testing.assert_array_equal(events["is_buy"], [0, 0, 1, 0, 0])
            assert stats["filters"]["buys_dropped_session_not_sampled"] == 3
            assert stats["filters"]["buys_dropped_item_never_clicked"] == 2
            seen.add(30)
        else:  # session 10: 214000001, 214000003
            np.testing.assert_array_equal(events["item"], [0, 1, 1, 1])
            np.testing.assert_array_equal(events["is_buy"], [0, 0, 1, 0])
            assert stats["filters"]["buys_dropped_session_not_sampled"] == 5
            assert stats["filters"]["buys_dropped_item_never_clicked"] == 0
            seen.add(10)
    assert seen == {10, 30}  # the seed decides
    preprocess({"format": "rc15", "sample_sessions": 1, "sample_seed": 3}, raw, tmp_path / "again")
    assert (tmp_path / "again" / "events.npz").read_bytes() == (tmp_path / "out3" / "events.npz").read_bytes()


def test_rc15_samples_exactly_the_requested_number(tmp_path):
    lines = [f"{s},2014-04-01T10:00:0{p}.000Z,{500 + (s * 7 + p) % 40},0" for s in range(1, 31) for p in range(3)]
    raw = write_rc15(tmp_path / "raw", clicks="\n".join(lines) + "\n", buys="")
    preprocess({"format": "rc15", "sample_sessions": 12, "sample_seed": 1}, raw, tmp_path / "out")
    events, stats = load(tmp_path / "out")
    assert stats["sessions"] == 12 and stats["filters"]["sessions_not_sampled"] == 18
    assert np.bincount(events["session"]).min() == 3
    assert int(events["n_items"]) == len(np.unique(events["item"]))  # ids from the sampled clicks only


def test_retailrocket_by_hand(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "events.csv").write_text(EVENTS)
    preprocess({"format": "retailrocket"}, tmp_path / "raw", tmp_path / "out")
    events, stats = load(tmp_path / "out")
    # Left: visitors 100, 300, 400 -> 0, 1, 2; items 6, 9 -> 0, 1.
    np.testing.assert_array_equal(events["session"], [0, 0, 1, 1, 2, 2, 2])
    np.testing.assert_array_equal(events["item"], [0, 0, 0, 1, 1, 0, 1])
    np.testing.assert_array_equal(events["is_buy"], [0, 1, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(events["timestamp"], [2000, 2000, 700, 800, 200, 300, 400])
    assert int(events["n_items"]) == 2
    assert (stats["sessions"], stats["items"], stats["clicks"], stats["purchases"]) == (3, 2, 5, 2)
    assert stats["filters"] == {
        "raw_rows": 18,
        "rows_dropped_with_transaction_id": 2,
        "transaction_rows_dropped_without_id": 0,
        "raw_sessions": 5,
        "sessions_dropped_2_or_fewer_events": 2,  # 200, and 500 once its transaction row is gone
        "events_dropped_with_short_sessions": 4,
        "items_dropped_2_or_fewer_events": 3,  # 5 (4 events before the session filter), 7, 8
        "events_dropped_with_rare_items": 5,
    }


def test_popularity_hit_rate_by_hand():
    # Counts: item 0: 3, item 2: 3, item 3: 2, item 1: 1 -> top 2 = {0, 2}.
    item = np.array([0, 2, 2, 2, 3, 0, 0, 1, 3])
    is_buy = np.array([0, 0, 1, 0, 0, 0, 1, 0, 0])
    rates = popularity_hit_rate(item, is_buy, n_items=4, k=2)
    assert rates == {"click": pytest.approx(4 / 7), "purchase": 1.0}
    assert popularity_hit_rate(item, np.zeros(9), n_items=4, k=2)["purchase"] is None


def test_no_purchases_is_allowed_with_a_warning(tmp_path, caplog):
    raw = write_rc15(tmp_path / "raw", buys="")
    with caplog.at_level(logging.WARNING):
        preprocess({"format": "rc15"}, raw, tmp_path / "out")
    _, stats = load(tmp_path / "out")
    assert stats["purchases"] == 0 and stats["purchase_fraction"] == 0
    assert stats["popularity_purchase_hr@10"] is None
    assert "no purchases" in caplog.text


BAD_CLICKS = [
    ("", "yoochoose-clicks.dat: empty"),
    (
        "10,2014-04-01T10:00:05.000Z,214000003\n",
        "yoochoose-clicks.dat: line 1 has 3 comma-separated fields, expected 4",
    ),
    (
        CLICKS.replace("10:00:09.000Z,214000003", "10:00:09.000Z,21400x003"),
        r"yoochoose-clicks.dat: line 3 has item_id='21400x003'",
    ),
    (
        CLICKS.replace("10:00:01.000Z", "10:00:01.000Q"),
        r"yoochoose-clicks.dat: line 2 has timestamp='2014-04-01T10:00:01.000Q'",
    ),
    (CLICKS.replace("214000005,0", "214000005,0,7"), "yoochoose-clicks.dat: line 4 has 5 fields, expected 4"),
    (
        CLICKS.replace("214000001,0\n", "214000001,0\n\n").replace("214000005,0", "x,0"),
        r"yoochoose-clicks.dat: line 5 has item_id='x'",
    ),
    (
        CLICKS.replace("30,2014-04-02T09:00:00", ",2014-04-02T09:00:00"),
        r"yoochoose-clicks.dat: line 6 has session_id=''",
    ),
    ("session_id,timestamp,item_id,category\n" + CLICKS, r"yoochoose-clicks.dat: line 1 has session_id='session_id'"),
    ("1,2014-04-01T10:00:05.000Z,5,0\n2,2014-04-01T10:00:05.000Z,5,0\n", "no session has more than 2 clicks"),
]


@pytest.mark.parametrize("clicks,message", BAD_CLICKS)
def test_bad_clicks_file(tmp_path, clicks, message):
    raw = write_rc15(tmp_path / "raw", clicks=clicks)
    with pytest.raises(DataError, match=message):
        preprocess({"format": "rc15"}, raw, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # nothing half-written


BAD_BUYS = [
    (None, "yoochoose-buys.dat: missing. Put the file there"),
    (
        BUYS.replace("11:00:02.000Z,214000005,500", "11:00:02.000Z,214000005"),
        "yoochoose-buys.dat: line 2 has 4 fields, expected 5",
    ),
    (BUYS.replace("99,2014", "99x,2014"), r"yoochoose-buys.dat: line 5 has session_id='99x'"),
    ("1,2,3\n", "yoochoose-buys.dat: line 1 has 3 comma-separated fields, expected 5"),
]


@pytest.mark.parametrize("buys,message", BAD_BUYS)
def test_bad_buys_file(tmp_path, buys, message):
    raw = write_rc15(tmp_path / "raw", buys=buys)
    with pytest.raises(DataError, match=message):
        preprocess({"format": "rc15"}, raw, tmp_path / "out")
    assert not (tmp_path / "out").exists()


BAD_EVENTS = [
    (None, "events.csv: missing. Put the file there"),
    ("", "events.csv: empty"),
    ("timestamp,visitorid,event,itemid,transactionid\n", "events.csv: has a header but no events"),
    (
        EVENTS.replace("transactionid\n", "transaction_id\n"),
        "events.csv: line 1 is `timestamp,visitorid,event,itemid,transaction_id`",
    ),
    (EVENTS.split("\n", 1)[1], "events.csv: line 1 is `1000,100,view,5,`"),
    (EVENTS.replace("3000,100,transaction", "3000,100,purchase"), r"events.csv: line 5 has event='purchase'"),
    (EVENTS.replace("1500,200", "15:00,200"), r"events.csv: line 7 has timestamp='15:00'"),
    (
        EVENTS.replace("3000,100,transaction,6,77", "3000,100,transaction,6,T77"),
        r"events.csv: line 5 has transactionid='T77'",
    ),
    (EVENTS.replace("500,300,view,8,", "500,300,view,8,,"), "events.csv: line 9 has 6 fields, expected 5"),
    (EVENTS.replace("500,300,view,8,", "500,300,view"), "events.csv: line 9 has 3 fields, expected 5"),
]


@pytest.mark.parametrize("text,message", BAD_EVENTS)
def test_bad_events_file(tmp_path, text, message):
    (tmp_path / "raw").mkdir()
    if text is not None:
        (tmp_path / "raw" / "events.csv").write_text(text)
    with pytest.raises(DataError, match=message):
        preprocess({"format": "retailrocket"}, tmp_path / "raw", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_format(tmp_path):
    with pytest.raises(DataError, match="format='movielens'"):
        preprocess({"format": "movielens"}, tmp_path, tmp_path / "out")


def test_tolerated_variations_give_the_same_events(tmp_path):
    """Blank lines, CRLF line ends, an empty category, and RetailRocket rows without the empty transaction id."""
    write_rc15(tmp_path / "a")
    preprocess({"format": "rc15"}, tmp_path / "a", tmp_path / "out_a")
    clicks = CLICKS.replace("214000001,0\n", "214000001,\n\n").replace("\n", "\r\n")
    write_rc15(tmp_path / "b", clicks=clicks, buys=BUYS.replace("\n", "\r\n"))
    preprocess({"format": "rc15"}, tmp_path / "b", tmp_path / "out_b")
    assert (tmp_path / "out_a" / "events.npz").read_bytes() == (tmp_path / "out_b" / "events.npz").read_bytes()

    for name, text in (("c", EVENTS), ("d", EVENTS.replace(",\n", "\n"))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "events.csv").write_text(text)
        preprocess({"format": "retailrocket"}, tmp_path / name, tmp_path / f"out_{name}")
    assert (tmp_path / "out_c" / "events.npz").read_bytes() == (tmp_path / "out_d" / "events.npz").read_bytes()


def test_files_read_in_several_chunks(tmp_path, monkeypatch):
    import sa2c.data.preprocess as module

    write_rc15(tmp_path / "a")
    preprocess({"format": "rc15"}, tmp_path / "a", tmp_path / "whole")
    monkeypatch.setattr(module, "CHUNK_ROWS", 3)
    preprocess({"format": "rc15"}, tmp_path / "a", tmp_path / "chunked")
    assert (tmp_path / "whole" / "events.npz").read_bytes() == (tmp_path / "chunked" / "events.npz").read_bytes()
    # Line numbers count on across chunks (line 8 is in the third chunk of 3 lines).
    write_rc15(tmp_path / "b", clicks=CLICKS.replace("09:00:20.000Z,214000002", "09:00:20.000Z,2140000x2"))
    with pytest.raises(DataError, match=r"yoochoose-clicks.dat: line 8 has item_id='2140000x2'"):
        preprocess({"format": "rc15"}, tmp_path / "b", tmp_path / "out")
