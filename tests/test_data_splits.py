"""Five folds: sessions split 8:1:1, test sets disjoint and covering every session, transitions per split."""

import numpy as np
import pytest

from sa2c.data.splits import make_folds
from sa2c.data.transitions import build_transitions, load_fold
from sa2c.errors import DataError
from sa2c.io import save_npz


def write_events(path, n_sessions, n_items=30, seed=0):
    rng = np.random.default_rng(seed)
    session = np.repeat(np.arange(n_sessions), rng.integers(1, 15, n_sessions))
    item = rng.integers(0, n_items, len(session))
    is_buy = (rng.random(len(session)) < 0.1).astype(np.int8)
    save_npz(
        path, session=session, item=item, is_buy=is_buy, timestamp=np.arange(len(session)), n_items=np.int64(n_items)
    )
    return session, item, is_buy


@pytest.fixture(scope="module")
def folds(tmp_path_factory):
    root = tmp_path_factory.mktemp("folds")
    events = write_events(root / "events.npz", n_sessions=53)
    make_folds(root / "events.npz", root, seed=3)
    return root, events


def split_sessions(fold):
    return {split: set(np.unique(fold[split]["session"]).tolist()) for split in ("train", "valid", "test")}


def test_splits_are_disjoint_and_sized_8_1_1(folds):
    root, _ = folds
    # 53 sessions in 10 shards (np.array_split): three shards of 6, seven of 5.
    for k in range(5):
        sessions = split_sessions(load_fold(root / f"fold{k}"))
        assert not (sessions["train"] & sessions["valid"]) and not (sessions["train"] & sessions["test"])
        assert not (sessions["valid"] & sessions["test"])
        assert sessions["train"] | sessions["valid"] | sessions["test"] == set(range(53))
        assert len(sessions["valid"]) in (5, 6) and len(sessions["test"]) in (5, 6)
        assert len(sessions["train"]) == 53 - len(sessions["valid"]) - len(sessions["test"])


def test_test_sets_are_disjoint_across_folds_and_cover_everything(folds):
    root, _ = folds
    tests = [split_sessions(load_fold(root / f"fold{k}"))["test"] for k in range(5)]
    valids = [split_sessions(load_fold(root / f"fold{k}"))["valid"] for k in range(5)]
    assert sum(len(t) for t in tests) == len(set().union(*tests))
    # Shards 0,2,4,6,8 are test shards and 1,3,5,7,9 validation shards: together all sessions, once each.
    assert sum(len(s) for s in tests + valids) == 53 and set().union(*tests, *valids) == set(range(53))
    # The recipe: a seeded permutation cut into 10 shards; fold k tests on shard 2k and validates on 2k+1.
    shards = np.array_split(np.random.default_rng(3).permutation(53), 10)
    for k in range(5):
        assert tests[k] == set(shards[2 * k].tolist()) and valids[k] == set(shards[2 * k + 1].tolist())


def test_split_files_hold_the_transitions_of_their_sessions(folds):
    root, (session, item, is_buy) = folds
    everything = build_transitions(session, item, is_buy, n_items=30)
    fold = load_fold(root / "fold2")
    assert fold["n_items"] == 30 and isinstance(fold["n_items"], int)
    np.testing.assert_array_equal(fold["item_counts_all"], np.bincount(item, minlength=30))
    for split in ("train", "valid", "test"):
        rows = np.isin(session, list(split_sessions(fold)[split]))
        assert set(fold[split]) == set(everything)
        for key, values in everything.items():
            np.testing.assert_array_equal(fold[split][key], values[rows], err_msg=f"{split}/{key}")
            assert fold[split][key].dtype == values.dtype


def test_same_seed_same_folds_other_seed_other_folds(tmp_path, folds):
    root, _ = folds
    write_events(tmp_path / "events.npz", n_sessions=53)
    make_folds(tmp_path / "events.npz", tmp_path / "a", seed=3)
    make_folds(tmp_path / "events.npz", tmp_path / "b", seed=4)
    assert split_sessions(load_fold(tmp_path / "a" / "fold0")) == split_sessions(load_fold(root / "fold0"))
    assert (
        split_sessions(load_fold(tmp_path / "b" / "fold0"))["test"] != split_sessions(load_fold(root / "fold0"))["test"]
    )


def test_bad_events_file(tmp_path):
    with pytest.raises(DataError, match="events.npz: missing"):
        make_folds(tmp_path / "events.npz", tmp_path)
    save_npz(tmp_path / "events.npz", session=np.zeros(3, np.int64))
    with pytest.raises(DataError, match=r"events.npz: missing array\(s\) item, is_buy, n_items"):
        make_folds(tmp_path / "events.npz", tmp_path)
    write_events(tmp_path / "events.npz", n_sessions=7)
    with pytest.raises(DataError, match="7 session"):
        make_folds(tmp_path / "events.npz", tmp_path)
    with pytest.raises(DataError, match="fold9/train.npz: missing"):
        load_fold(tmp_path / "fold9")
