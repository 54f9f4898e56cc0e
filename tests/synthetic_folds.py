"""Test helper: the five folds of a small generated RC15-format dataset, built by the real data stage."""

from __future__ import annotations

from pathlib import Path

from sa2c.data.preprocess import preprocess
from sa2c.data.splits import make_folds
from sa2c.data.synthetic import generate


def build_folds(root: Path, sessions: int, items: int, seed: int) -> Path:
    """Generate raw files under root/raw, preprocess and split them; returns the data directory (root/data)."""
    spec = {"format": "rc15", "synthetic": {"sessions": sessions, "items": items, "seed": seed}}
    generate("rc15", root / "raw", spec["synthetic"])
    preprocess(spec, root / "raw", root / "data")
    make_folds(root / "data" / "events.npz", root / "data", seed=0)
    return root / "data"
