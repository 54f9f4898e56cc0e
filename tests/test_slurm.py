"""A real SLURM run: a single-node SLURM on this machine (scripts/slurm/start-local-slurm.sh: Debian's slurm-wlm and
munge, slurmctld and slurmd on 127.0.0.1), the test config's workflow submitted through snakemake-executor-plugin-
slurm with the shipped profile (workflow/profiles/slurm), and its outputs compared with a local run.

Skipped only when SLURM cannot be installed or started here (the skip message carries the exact failure), or the
plugin is not installed (`pip install -e ".[slurm]"`); .ci/run installs both. The targets are a part of the test
config's DAG that uses every kind of job (raw data, preprocessing, folds, training of 7 groups, a table, a figure),
to keep CI short; SA2C_SLURM_TARGETS="all" runs the whole DAG (46 jobs, about 6 minutes on 2 cores).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts" / "slurm"
TARGETS = os.environ.get("SA2C_SLURM_TARGETS", "paper_tables/table1.csv paper_tables/table4.csv figures/figure2.png").split()
COMPARED = ("validation_curve", "best", "valid", "test", "identity", "config", "heads")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A running single-node SLURM; yields the environment to talk to it."""
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip('snakemake-executor-plugin-slurm is not installed: .venv/bin/pip install -e ".[slurm]"')
    if os.geteuid() != 0:
        pytest.skip("starting slurmd needs root (it starts jobs as their user): run the tests as root, or sudo "
              "scripts/slurm/start-local-slurm.sh by hand (docs/cluster.md)")
    state = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "SLURM_WAIT_S": "90"}
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is not None:
        env["SLURM_INSTALL"] = "1"  # the script installs slurm-wlm and munge with apt-get
    start = subprocess.run(["bash", str(SCRIPTS / "start-local-slurm.sh"), str(state)], capture_output=True, text=True,
                           env=env, timeout=900)
    if start.returncode != 0:
        subprocess.run(["bash", str(SCRIPTS / "stop-local-slurm.sh"), str(state)], capture_output=True, env=env)
        pytest.skip(f"a local SLURM could not be started here (exit {start.returncode}):\n{start.stdout}\n{start.stderr[-4000:]}")
    slurm_env = {**os.environ, "SLURM_CONF": str(state / "slurm.conf"), "PYTHONUNBUFFERED": "1"}
    try:
        yield slurm_env
    finally:
        subprocess.run(["bash", str(SCRIPTS / "stop-local-slurm.sh"), str(state)], capture_output=True, env=env)


def snakemake(workdir: Path, *args: str, env=None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", *TARGETS, *args, "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(ROOT / "config" / "test.yaml")]
    return subprocess.run(cmd, capture_output=True, text=True, env=env or {**os.environ, "PYTHONUNBUFFERED": "1"},
                          cwd=ROOT, timeout=1800)


@pytest.mark.slow
def test_test_config_through_slurm_equals_a_local_run(slurm, tmp_path):
    started = time.monotonic()
    on_slurm = snakemake(
        tmp_path / "slurm", "--profile", "workflow/profiles/slurm",
        # the toy cluster has no accounting database (sacct); first status check soon, not after 40 s
        "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
        "--slurm-keep-successful-logs", "--verbose",  # --verbose: the plugin logs each sbatch call
        env=slurm,
    )
    slurm_s = time.monotonic() - started
    text = on_slurm.stdout + on_slurm.stderr
    assert on_slurm.returncode == 0, text[-6000:]

    # Every job but the final `all` went through sbatch, with the profile's requests ...
    calls = re.findall(r"sbatch call: (sbatch .*)", text)
    planned = re.findall(r"^(?:local)?rule (\w+):", text, flags=re.M)
    assert calls and len(calls) == len([r for r in planned if r != "all"])
    requests = [(c.split(" --wrap")[0], "rule_train" in c) for c in calls]
    assert any(is_train for _, is_train in requests)
    for call, is_train in requests:
        memory = re.search(r"--mem (\d+)", call)
        assert memory and int(memory.group(1)) >= (4000 if is_train else 1000), call
        assert re.search(r"-t '?(\d+)'?", call) and "--cpus-per-task=1" in call, call
        assert ("--gpus=1" in call and re.search(r"-t '?1440'?", call)) if is_train else "--gpus" not in call, call
    # ... and ran as a SLURM job on the node: its SLURM log names the host and the finished rule.
    logs = sorted((tmp_path / "slurm" / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert len(logs) == len(calls)
    host = socket.gethostname()
    assert all(f"Host: {host}" in p.read_text() and "Finished jobid: 0 (Rule:" in p.read_text() for p in logs)

    started = time.monotonic()
    local = snakemake(tmp_path / "local", "--cores", "2")
    local_s = time.monotonic() - started
    assert local.returncode == 0, local.stderr[-4000:]

    def runs(root: Path) -> list[Path]:
        return sorted(p.relative_to(root) for p in (root / "results" / "runs").rglob("metrics.json"))

    assert runs(tmp_path / "local") and runs(tmp_path / "local") == runs(tmp_path / "slurm")
    for run in runs(tmp_path / "local"):
        a = json.loads((tmp_path / "local" / run).read_text())
        b = json.loads((tmp_path / "slurm" / run).read_text())
        assert {k: a[k] for k in COMPARED} == {k: b[k] for k in COMPARED}, run
    # tables (CSV and LaTeX) and metrics.csv byte for byte; figures exist (their files carry creation dates)
    made = sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local").glob("*/**/*")
                  if p.suffix in (".csv", ".tex", ".pdf", ".png") and ".snakemake" not in p.parts)
    assert made and made == sorted(p.relative_to(tmp_path / "slurm") for p in (tmp_path / "slurm").glob("*/**/*")
                                   if p.suffix in (".csv", ".tex", ".pdf", ".png") and ".snakemake" not in p.parts)
    for path in made:
        if path.suffix in (".csv", ".tex"):
            assert (tmp_path / "local" / path).read_bytes() == (tmp_path / "slurm" / path).read_bytes(), path
        else:
            assert (tmp_path / "slurm" / path).stat().st_size > 0
    print(f"\nSLURM: {len(calls)} sbatch jobs in {slurm_s:.0f} s; local: {local_s:.0f} s; "
          f"{len(runs(tmp_path / 'local'))} runs and {len(made)} tables/figures equal")


@pytest.mark.parametrize("device, gpus", [("cpu", 0), ("cuda", 1)])
def test_training_jobs_declare_the_gpu_they_use(tmp_path, device, gpus):
    """The workstation profile limits GPU jobs (resources: gpu=1); a training job takes a GPU when its runs use one
    (device cuda, or auto on a machine with a GPU), so at most one runs on the GPU at a time."""
    import yaml

    config = yaml.safe_load(open(ROOT / "config" / "test.yaml"))
    config["train"]["device"] = device
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "paper_tables/table5.csv", "--profile", "workflow/profiles/default",
         "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path), "--configfile", str(path)],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout + result.stderr
    assert "Using profile workflow/profiles/default" in text
    train = re.findall(r"^rule train:\n(?:    .*\n)*?    resources: (.*)$", text, flags=re.M)
    assert len(train) == 4 and all(line.endswith(f"gpu={gpus}") for line in train), train
    profile = yaml.safe_load(open(ROOT / "workflow" / "profiles" / "default" / "config.yaml"))
    assert "gpu=1" in profile["resources"]
