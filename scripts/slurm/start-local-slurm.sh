#!/usr/bin/env bash
# Start a single-node SLURM "cluster" on this machine: munged + slurmctld + slurmd, loopback only, every file
# (config, munge key, sockets, state, logs) in one directory. For trying the SLURM profile and for the test
# tests/test_slurm.py; a real cluster has its own controller and you need none of this.
#
#   sudo bash scripts/slurm/start-local-slurm.sh [DIR]     # DIR defaults to ${TMPDIR:-/tmp}/sa2c-slurm
#   source DIR/env.sh                                      # SLURM_CONF for sinfo, sbatch, snakemake --executor slurm
#   bash scripts/slurm/stop-local-slurm.sh [DIR]
#
# Needs root (slurmd runs jobs as their user) and Debian's packages: apt-get install slurm-wlm munge
# (SLURM_INSTALL=1 installs them with apt-get when missing). Environment:
#   SLURM_CPUS      CPUs of the one node (default: all of this machine's)
#   SLURM_GPUS      GPUs the node advertises as the generic resource `gpu` (default 2). On a machine without GPUs
#                   these are counters only, with no device behind them: they let jobs that ask for GPUs (the
#                   profile's training jobs, `--gpus=1`) be scheduled; the jobs then run on the CPU. (On a machine
#                   with real GPUs, write gres.conf for /dev/nvidia* instead.)
#   SLURM_PORT      slurmctld's port; slurmd takes the next one (default: two free ports chosen at start)
#   SLURM_WAIT_S    seconds to wait for the node to become idle (default 60)
# Exit status: 0 when `sinfo` shows the node idle; otherwise 1, with the daemons' log tails on stderr.
set -euo pipefail

DIR=${1:-${TMPDIR:-/tmp}/sa2c-slurm}
CPUS=${SLURM_CPUS:-$(nproc)}
GPUS=${SLURM_GPUS:-2}
WAIT_S=${SLURM_WAIT_S:-60}
HERE=$(cd "$(dirname "$0")" && pwd)

die() { echo "start-local-slurm: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (slurmd starts jobs as their user); try: sudo bash $0 $*"
missing=()
for tool in munged mungekey slurmctld slurmd sinfo sbatch srun; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "${SLURM_INSTALL:-0}" = 1 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
    else
        die "missing ${missing[*]}: install them with 'apt-get install slurm-wlm munge' (or set SLURM_INSTALL=1)"
    fi
fi

if [ -f "$DIR/env.sh" ]; then
    bash "$HERE/stop-local-slurm.sh" "$DIR" >/dev/null 2>&1 || true
fi
rm -rf "$DIR"
mkdir -p "$DIR"/{munge,state,spool,log,run,dev}
chmod 755 "$DIR" "$DIR/munge"
DIR=$(cd "$DIR" && pwd)

# Ports: two free ones on loopback unless given.
if [ -n "${SLURM_PORT:-}" ]; then
    CTLD_PORT=$SLURM_PORT
    SLURMD_PORT=$((SLURM_PORT + 1))
else
    read -r CTLD_PORT SLURMD_PORT < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)
fi

NODE=$(hostname -s)
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
MEM_MB=$((MEM_MB > 1024 ? MEM_MB - 512 : MEM_MB))  # leave a little to the system, as slurmd reports a bit less

# --- munge: a new key, its own socket
mungekey --create --keyfile="$DIR/munge/munge.key" --force >/dev/null 2>&1 \
    || dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$DIR/munge/munge.key"
MUNGE_SOCKET=$DIR/munge/munge.socket
munged --force --key-file="$DIR/munge/munge.key" --socket="$MUNGE_SOCKET" --pid-file="$DIR/run/munged.pid" \
    --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed" \
    || die "munged did not start: $(tail -5 "$DIR/log/munged.log" 2>/dev/null)"

# --- slurm.conf: one node, one default partition, no accounting database
GRES_LINE=""
if [ "$GPUS" -gt 0 ]; then
    GRES_LINE="Gres=gpu:$GPUS"
    # slurmd counts a GPU per device file; plain files stand in for /dev/nvidia* (nothing opens them).
    for i in $(seq 0 $((GPUS - 1))); do : > "$DIR/dev/gpu$i"; done
    printf 'AutoDetect=off\nNodeName=%s Name=gpu File=%s/dev/gpu[0-%d]\n' "$NODE" "$DIR" $((GPUS - 1)) > "$DIR/gres.conf"
else
    : > "$DIR/gres.conf"
fi
cat > "$DIR/slurm.conf" <<EOF
# Written by scripts/slurm/start-local-slurm.sh: a single-node cluster on loopback.
ClusterName=sa2clocal
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups (containers and sandboxes rarely allow them): processes are tracked by parent id.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
LaunchParameters=use_interactive_step
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
ReturnToService=2
# Keep finished jobs visible to squeue long enough for Snakemake's status checks (no sacct database here).
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE CPUs=$CPUS RealMemory=$MEM_MB $GRES_LINE State=UNKNOWN
PartitionName=local Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

# The job steps need the config too: snakemake-executor-plugin-slurm-jobstep runs each job through a nested `srun`
# whose environment it strips of SLURM_* variables (SLURM_CONF included), so that srun only finds the config at
# SLURM's default place. Link it there, unless a machine's own SLURM config is there already.
DEFAULT_CONF=/etc/slurm/slurm.conf
if [ -L "$DEFAULT_CONF" ] || [ ! -e "$DEFAULT_CONF" ]; then
    mkdir -p "$(dirname "$DEFAULT_CONF")"
    ln -sfn "$DIR/slurm.conf" "$DEFAULT_CONF"
    echo "$DEFAULT_CONF" > "$DIR/linked-default-conf"
else
    echo "start-local-slurm: warning: $DEFAULT_CONF exists (another SLURM?); left alone, so job steps started by" \
        "Snakemake's SLURM executor will not find this cluster's config" >&2
fi

cat > "$DIR/env.sh" <<EOF
# source this file to talk to the local SLURM started by scripts/slurm/start-local-slurm.sh
export SLURM_CONF=$DIR/slurm.conf
EOF
export SLURM_CONF=$DIR/slurm.conf

tails() {
    for f in "$DIR"/log/*.log; do echo "--- $f" >&2; tail -20 "$f" >&2; done
}

slurmctld -f "$SLURM_CONF" -i || { tails; die "slurmctld did not start"; }
slurmd -f "$SLURM_CONF" || { tails; die "slurmd did not start"; }

for _ in $(seq "$WAIT_S"); do
    state=$(sinfo -h -N -n "$NODE" -o %T 2>/dev/null || true)
    if [ "$state" = idle ]; then
        echo "local SLURM up: node $NODE ($CPUS CPUs, ${MEM_MB} MB, $GPUS gpu GRES), partition 'local', ports $CTLD_PORT/$SLURMD_PORT"
        echo "  source $DIR/env.sh"
        exit 0
    fi
    sleep 1
done
echo "start-local-slurm: the node did not become idle within ${WAIT_S}s (state: '${state:-none}')" >&2
sinfo -N -l >&2 || true
tails
exit 1
