"""Transitions (the replay buffer): one row per event, with the history before it and the history after it.

SPEC.md, "Transitions". For the event at 0-based position p of its session:

- `state`: the last <= `history` items before it, oldest first, right-padded with the padding id `n_items`;
- `len_state`: min(p, history), except 1 when p == 0 (the authors' code reads an empty history as one step over
  the padding embedding, so the first event has an all-padding state of length 1);
- `action`, `is_buy`: the event itself (a purchase enters later histories like a click);
- `next_state`, `len_next_state`: the history including the event;
- `done`: the event is the last of its session; `session`: its session id.

Events must be grouped by session and ordered in time within it (events.npz is sorted that way).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sa2c.errors import DataError

SPLITS = ("train", "valid", "test")
TRANSITION_KEYS = ("state", "len_state", "action", "is_buy", "next_state", "len_next_state", "done", "session")


def positions_in_session(session: np.ndarray) -> np.ndarray:
    """0-based position of every event within its (contiguous) session."""
    n = len(session)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, session[1:] != session[:-1]])
    run_lengths = np.diff(np.r_[starts, n])
    return np.arange(n, dtype=np.int64) - np.repeat(starts, run_lengths)


def _window(item: np.ndarray, end: np.ndarray, length: np.ndarray, history: int, pad: int) -> np.ndarray:
    """Rows of `item[end - length : end]` (oldest first), right-padded with `pad` to `history` columns."""
    window = np.full((len(item), history), pad, dtype=np.int32)
    start = end - length
    # One vectorised step per column: column j holds item[start + j] wherever j < length.
    for j in range(history):
        rows = np.flatnonzero(length > j)
        window[rows, j] = item[start[rows] + j]
    return window


def build_transitions(
    session: np.ndarray, item: np.ndarray, is_buy: np.ndarray, n_items: int, history: int = 10
) -> dict[str, np.ndarray]:
    session = np.asarray(session, dtype=np.int64)
    item = np.asarray(item, dtype=np.int64)
    is_buy = np.asarray(is_buy, dtype=np.int8)
    if not (len(session) == len(item) == len(is_buy)):
        raise ValueError(f"session, item and is_buy differ in length: {len(session)}, {len(item)}, {len(is_buy)}")
    n_runs = int(np.count_nonzero(session[1:] != session[:-1])) + 1 if len(session) else 0
    if n_runs != np.unique(session).size:
        raise ValueError("events are not grouped by session (a session id appears in two separate runs)")

    position = positions_in_session(session)
    index = np.arange(len(item), dtype=np.int64)
    len_state = np.minimum(position, history)
    len_next_state = np.minimum(position + 1, history)
    done = np.r_[session[1:] != session[:-1], True] if len(session) else np.zeros(0, dtype=bool)
    return {
        "state": _window(item, index, len_state, history, n_items),
        # An empty history still counts as one (padding) step.
        "len_state": np.maximum(len_state, 1).astype(np.int32),
        "action": item,
        "is_buy": is_buy,
        "next_state": _window(item, index + 1, len_next_state, history, n_items),
        "len_next_state": len_next_state.astype(np.int32),
        "done": done.astype(bool),
        "session": session,
    }


def select(transitions: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    """The transitions at `rows` (a boolean mask or indices)."""
    return {key: value[rows] for key, value in transitions.items()}


def load_npz(path: Path, required: tuple[str, ...], rebuild: str) -> dict[str, np.ndarray]:
    """All arrays of an .npz file (no pickles), checking that `required` are there; `rebuild` says how to remake it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: missing; {rebuild}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: unreadable ({err}); delete it and {rebuild}") from None
    missing = [key for key in required if key not in arrays]
    if missing:
        raise DataError(f"{path}: missing array(s) {', '.join(missing)}; it was written by other code, {rebuild}")
    return arrays


def _load_split(path: Path) -> dict[str, np.ndarray]:
    return load_npz(path, (*TRANSITION_KEYS, "n_items"), "rebuild the folds (the `folds` workflow rule, or `sa2c folds`)")


def load_fold(fold_dir: Path) -> dict:
    """{"train": {...}, "valid": {...}, "test": {...}, "n_items": int, "item_counts_all": array} of one fold."""
    fold_dir = Path(fold_dir)
    fold: dict = {}
    n_items = None
    for split in SPLITS:
        arrays = _load_split(fold_dir / f"{split}.npz")
        split_n_items = int(arrays.pop("n_items"))
        if n_items is not None and split_n_items != n_items:
            raise DataError(
                f"{fold_dir}: n_items differs between splits ({n_items} vs {split_n_items}); rebuild the folds"
            )
        n_items = split_n_items
        if split == "train":
            if "item_counts_all" not in arrays:
                raise DataError(f"{fold_dir / 'train.npz'}: missing array item_counts_all; rebuild the folds")
            fold["item_counts_all"] = arrays.pop("item_counts_all")
        fold[split] = arrays
    fold["n_items"] = n_items
    return fold
