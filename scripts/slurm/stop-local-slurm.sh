#!/usr/bin/env bash
# Stop the local SLURM started by scripts/slurm/start-local-slurm.sh (same DIR), by the process ids it recorded.
#   bash scripts/slurm/stop-local-slurm.sh [DIR]     # DIR defaults to ${TMPDIR:-/tmp}/sa2c-slurm
# Jobs still running are cancelled first. KEEP=1 keeps DIR (config and logs) for a look afterwards.
set -uo pipefail

DIR=${1:-${TMPDIR:-/tmp}/sa2c-slurm}
[ -d "$DIR" ] || { echo "stop-local-slurm: no $DIR, nothing to stop"; exit 0; }
export SLURM_CONF=$DIR/slurm.conf

if [ -f "$SLURM_CONF" ] && command -v scancel >/dev/null 2>&1; then
    timeout 10 scancel --full --quiet --partition local 2>/dev/null || true
fi
stop() {  # stop the daemon whose pid is in file $1, waiting up to 10 s, then SIGKILL
    local file=$1 pid
    [ -f "$file" ] || return 0
    pid=$(cat "$file" 2>/dev/null) || return 0
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill "$pid" 2>/dev/null
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
}
stop "$DIR/run/slurmd.pid"
stop "$DIR/run/slurmctld.pid"
stop "$DIR/run/munged.pid"
# The link to this config at SLURM's default place, if start-local-slurm.sh made it and it still points here.
if [ -f "$DIR/linked-default-conf" ]; then
    link=$(cat "$DIR/linked-default-conf")
    if [ -L "$link" ] && [ "$(readlink "$link")" = "$DIR/slurm.conf" ]; then rm -f "$link"; fi
fi
if [ "${KEEP:-0}" = 1 ]; then
    echo "local SLURM stopped; kept $DIR"
elif grep -qs "start-local-slurm.sh" "$DIR/slurm.conf"; then
    rm -rf "$DIR"
    echo "local SLURM stopped; removed $DIR"
else
    echo "local SLURM stopped; $DIR has no slurm.conf of start-local-slurm.sh, left in place"
fi
