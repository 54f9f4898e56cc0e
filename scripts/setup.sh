#!/usr/bin/env bash
# Idempotent set-up of the project-local virtual environment (.venv) with the pinned dependencies.
# Re-installs only when pyproject.toml changed since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.sa2c-installed
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "[setup] installing dependencies into .venv (torch==2.13.0 CPU build; see README for GPU)"
    # (grep drops the notes this machine's pip prints about local package mirrors it cannot use)
    .venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | { grep -v "^WARNING: Location" || true; }
    .venv/bin/python -m pip install --quiet -e ".[test]" 2>&1 | { grep -v "^WARNING: Location" || true; }
    .venv/bin/python -c "import torch, snakemake, sa2c" || { echo "[setup] installation failed" >&2; exit 1; }
    echo "$want" > "$stamp"
fi
