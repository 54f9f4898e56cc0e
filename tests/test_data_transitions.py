"""Transitions: hand-written expected states, lengths, next states and done flags (SPEC.md, "Transitions")."""

import numpy as np
import pytest

from sa2c.data.transitions import build_transitions, positions_in_session

P = 9  # padding id = n_items in the first test


def test_short_sessions_history_3_by_hand():
    # Session 0: items 4, 7, 4 (a purchase), 2, 5; session 1: one event, item 8.
    t = build_transitions(
        session=np.array([0, 0, 0, 0, 0, 1]),
        item=np.array([4, 7, 4, 2, 5, 8]),
        is_buy=np.array([0, 0, 1, 0, 0, 0]),
        n_items=9,
        history=3,
    )
    np.testing.assert_array_equal(
        t["state"],
        [[P, P, P], [4, P, P], [4, 7, P], [4, 7, 4], [7, 4, 2], [P, P, P]],
    )
    # Empty history counts as length 1; the purchase of item 4 enters the history like a click.
    np.testing.assert_array_equal(t["len_state"], [1, 1, 2, 3, 3, 1])
    np.testing.assert_array_equal(
        t["next_state"],
        [[4, P, P], [4, 7, P], [4, 7, 4], [7, 4, 2], [4, 2, 5], [8, P, P]],
    )
    np.testing.assert_array_equal(t["len_next_state"], [1, 2, 3, 3, 3, 1])
    np.testing.assert_array_equal(t["action"], [4, 7, 4, 2, 5, 8])
    np.testing.assert_array_equal(t["is_buy"], [0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(t["done"], [False, False, False, False, True, True])
    np.testing.assert_array_equal(t["session"], [0, 0, 0, 0, 0, 1])
    assert t["state"].dtype == np.int32 and t["next_state"].dtype == np.int32
    assert t["done"].dtype == bool and t["is_buy"].dtype == np.int8
    assert set(t) == {"state", "len_state", "action", "is_buy", "next_state", "len_next_state", "done", "session"}


def test_session_longer_than_history_10():
    # One session of 12 events, items 20, 21, ..., 31; 40 items, so padding id 40.
    items = np.arange(20, 32)
    t = build_transitions(np.full(12, 7), items, np.zeros(12), n_items=40)
    pad = 40
    assert t["state"].shape == (12, 10)
    np.testing.assert_array_equal(t["state"][0], [pad] * 10)
    np.testing.assert_array_equal(t["next_state"][0], [20] + [pad] * 9)
    np.testing.assert_array_equal(t["state"][1], [20] + [pad] * 9)
    np.testing.assert_array_equal(t["state"][9], [20, 21, 22, 23, 24, 25, 26, 27, 28, pad])
    np.testing.assert_array_equal(t["next_state"][9], [20, 21, 22, 23, 24, 25, 26, 27, 28, 29])
    np.testing.assert_array_equal(t["state"][10], [20, 21, 22, 23, 24, 25, 26, 27, 28, 29])
    np.testing.assert_array_equal(t["next_state"][10], [21, 22, 23, 24, 25, 26, 27, 28, 29, 30])
    np.testing.assert_array_equal(t["state"][11], [21, 22, 23, 24, 25, 26, 27, 28, 29, 30])
    np.testing.assert_array_equal(t["next_state"][11], [22, 23, 24, 25, 26, 27, 28, 29, 30, 31])
    np.testing.assert_array_equal(t["len_state"], [1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10])
    np.testing.assert_array_equal(t["len_next_state"], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 10])
    np.testing.assert_array_equal(t["done"], [False] * 11 + [True])
    np.testing.assert_array_equal(t["session"], [7] * 12)


def test_next_state_is_the_next_events_state_within_a_session():
    rng = np.random.default_rng(0)
    session = np.repeat(np.arange(50), rng.integers(1, 25, 50))
    item = rng.integers(0, 30, len(session))
    t = build_transitions(session, item, rng.integers(0, 2, len(session)), n_items=30)
    follows = ~t["done"][:-1]
    np.testing.assert_array_equal(t["next_state"][:-1][follows], t["state"][1:][follows])
    np.testing.assert_array_equal(t["len_next_state"][:-1][follows], t["len_state"][1:][follows])
    # Real items exactly at the first len columns, padding after (the empty state is all padding).
    real = np.arange(10)[None, :] < t["len_next_state"][:, None]
    assert (t["next_state"][real] < 30).all() and (t["next_state"][~real] == 30).all()


def test_positions_and_grouping():
    np.testing.assert_array_equal(positions_in_session(np.array([3, 3, 5, 5, 5, 1])), [0, 1, 0, 1, 2, 0])
    with pytest.raises(ValueError, match="grouped by session"):
        build_transitions(np.array([0, 1, 0]), np.array([1, 2, 3]), np.zeros(3), n_items=5)
