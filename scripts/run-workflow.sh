#!/usr/bin/env bash
# Quick start 1: set up, then run the whole default workflow (every table and figure).
# Extra arguments go to snakemake, e.g. `bash scripts/run-workflow.sh --cores 2` or a single target.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ $# -eq 0 ]; then set -- --cores 8 all; fi
exec .venv/bin/snakemake "$@"
