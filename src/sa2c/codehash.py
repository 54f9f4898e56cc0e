"""Content hashes of the code behind each workflow stage.

Snakemake reruns a job when a rule's params change; each rule passes the hash of the source files its outputs
depend on, so editing e.g. a loss function reruns the training, while editing a table template reruns only the
rendering. Runs also record the hash, so results from older code are never silently reused.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent

# Files (globs relative to the package) whose content decides each stage's outputs.
STAGES = {
    "data": ["data/*.py", "io.py"],
    "train": ["models/*.py", "losses.py", "evaluation.py", "train.py", "config.py", "io.py", "data/transitions.py"],
    "report": ["report/*.py", "report/templates/*", "report/*.yaml", "config.py", "io.py"],
}


def code_hash(stage: str) -> str:
    if stage not in STAGES:
        raise KeyError(f"unknown stage {stage!r}; known: {', '.join(STAGES)}")
    digest = hashlib.sha256()
    files = sorted({p for pattern in STAGES[stage] for p in PACKAGE.glob(pattern) if p.is_file()})
    for path in files:
        digest.update(path.relative_to(PACKAGE).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
