"""Five cross-validated 8:1:1 splits of the sessions (SPEC.md, "Splits").

A seeded permutation of the session ids is cut into 10 equal shards (np.array_split); fold k tests on shard 2k,
validates on shard 2k+1 and trains on the other 8, so the five test sets are disjoint and together cover every
session. Each split file holds the transitions of its sessions; train.npz also holds `item_counts_all`, the event
count of every item over all events (the behaviour policy beta(a) of the authors' code uses all splits).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from sa2c.data.transitions import build_transitions, load_npz, select
from sa2c.errors import DataError
from sa2c.io import save_npz

log = logging.getLogger(__name__)

N_FOLDS = 5
N_SHARDS = 2 * N_FOLDS
EVENT_KEYS = ("session", "item", "is_buy", "n_items")


def load_events(path: Path) -> dict[str, np.ndarray]:
    return load_npz(path, EVENT_KEYS, "run the preprocess step (`sa2c preprocess`)")


def session_shards(n_sessions: int, seed: int) -> np.ndarray:
    """Shard (0..9) of every session id 0..n_sessions-1."""
    permutation = np.random.default_rng(seed).permutation(n_sessions)
    shard = np.empty(n_sessions, dtype=np.int64)
    for number, members in enumerate(np.array_split(permutation, N_SHARDS)):
        shard[members] = number
    return shard


def fold_roles(fold: int) -> dict[str, list[int]]:
    """Shards of each split of fold k: test 2k, valid 2k+1, train the rest."""
    test, valid = 2 * fold, 2 * fold + 1
    return {"train": [s for s in range(N_SHARDS) if s not in (test, valid)], "valid": [valid], "test": [test]}


def make_folds(events_npz: Path, out_dir: Path, seed: int = 0) -> None:
    events = load_events(events_npz)
    session, item, n_items = events["session"], events["item"], int(events["n_items"])
    n_sessions = int(session.max()) + 1 if len(session) else 0
    if n_sessions < N_SHARDS:
        raise DataError(f"{events_npz}: {n_sessions} session(s); at least {N_SHARDS} are needed for 10 shards")

    # Transitions never cross sessions, so building them once and selecting rows per split is the same as
    # building them per split.
    transitions = build_transitions(session, item, events["is_buy"], n_items)
    item_counts_all = np.bincount(item, minlength=n_items).astype(np.int64)
    event_shard = session_shards(n_sessions, seed)[session]
    for fold in range(N_FOLDS):
        for split, shards in fold_roles(fold).items():
            part = select(transitions, np.isin(event_shard, shards))
            extra = {"item_counts_all": item_counts_all} if split == "train" else {}
            save_npz(Path(out_dir) / f"fold{fold}" / f"{split}.npz", **part, n_items=np.int64(n_items), **extra)
            log.info(
                "fold %d %s: %d sessions, %d transitions", fold, split, int(part["done"].sum()), len(part["action"])
            )
