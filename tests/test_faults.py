"""Faults, for real: processes killed mid-training and mid-workflow, a full disk, an unwritable results directory,
and results of an older config or code. The tests start real processes (`python -m sa2c.cli`, `snakemake`) and
kill them with signals; docs/cluster.md lists the cases and what happens.

The disk-full and read-only cases mount a small tmpfs (root, or a sandbox that allows mounts); where mounting is not
permitted they are skipped with the reason, and the in-process variants below them still check the messages.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from sa2c import cli
from sa2c.config import TrainConfig
from sa2c.data.transitions import load_fold
from sa2c.train import run_training
from synthetic_folds import build_folds

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
COMPARED = ("validation_curve", "best", "valid", "test")


# ---------------------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Folds of a small synthetic RC15-format dataset (about 2,600 training transitions per fold)."""
    return build_folds(tmp_path_factory.mktemp("faults-data"), sessions=600, items=60, seed=3)


def spec_json(**overrides) -> str:
    """A run of a few seconds with a checkpoint every 5 steps (SA2C: two networks, optimizer switch, RNG state)."""
    values = dict(method="sa2c", encoder="gru", epochs=3, evals_per_epoch=2, warmup_fraction=0.5, batch_size=32,
                  embedding_dim=16, checkpoint_every=5, threads=1)
    values.update(overrides)
    return json.dumps({"0": TrainConfig(**values).to_dict()})


def train_cmd(data_dir: Path, root: Path, spec: str, code: str = "c1", folds: str = "0,1") -> list[str]:
    return [PY, "-m", "sa2c.cli", "train", "--data-dir", str(data_dir), "--run-dir", str(root / "runs/d/gru/sa2c"),
            "--log-dir", str(root / "logs/d/gru/sa2c"), "--folds", folds, "--spec", spec, "--code-hash", code,
            "--threads", "1"]


def run_file(root: Path, fold: int, name: str = "metrics.json") -> Path:
    return root / f"runs/d/gru/sa2c/fold{fold}/seed0" / name


def numbers(path: Path) -> dict:
    data = json.loads(path.read_text())
    return {**{key: data[key] for key in COMPARED}, "steps": data["train"]["steps"]}


def wait_for(condition, process: subprocess.Popen, timeout: float = 90.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            out = process.stdout.read() if process.stdout else ""
            pytest.fail(f"process ended (rc {process.returncode}) before {what}:\n{out[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def start(cmd: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV, **kwargs)


def saved_step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=False)["step"])


@pytest.fixture(scope="module")
def reference(data_dir, tmp_path_factory):
    """The uninterrupted run of folds 0 and 1 (code hash c1) that the interrupted ones must equal."""
    root = tmp_path_factory.mktemp("reference")
    result = subprocess.run(train_cmd(data_dir, root, spec_json()), capture_output=True, text=True, env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    return root


# ---------------------------------------------------------------------------------------------------- training


def test_training_killed_mid_epoch_resumes_and_ends_with_the_same_metrics(data_dir, reference, tmp_path):
    """SIGKILL the training process once fold 1 has checkpointed (fold 0 done); the rerun reuses fold 0 and resumes
    fold 1 from its checkpoint; both equal the uninterrupted run exactly."""
    process = start(train_cmd(data_dir, tmp_path, spec_json()))
    checkpoint = run_file(tmp_path, 1, "checkpoint/state.pt")
    wait_for(checkpoint.exists, process, what="fold 1's first checkpoint")
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert run_file(tmp_path, 0).exists() and not run_file(tmp_path, 1).exists()
    killed_at = saved_step(checkpoint)
    total = json.loads(run_file(reference, 1).read_text())["train"]["steps"]
    assert 0 < killed_at < total

    again = subprocess.run(train_cmd(data_dir, tmp_path, spec_json()), capture_output=True, text=True, env=ENV)
    assert again.returncode == 0, again.stderr[-3000:]
    assert re.search(r"fold': 0.*already finished with this config, code and data: reusing", again.stderr)
    resumed = re.search(r"resumed from \S+fold1/seed0/checkpoint/state.pt at step (\d+)/(\d+)", again.stderr)
    assert resumed and int(resumed.group(1)) >= killed_at and int(resumed.group(2)) == total
    for fold in (0, 1):
        assert numbers(run_file(tmp_path, fold)) == numbers(run_file(reference, fold))
    assert not run_file(tmp_path, 1, "checkpoint/state.pt").exists()  # removed once the run is done


def test_a_torn_checkpoint_is_ignored_and_the_run_starts_again(data_dir, tmp_path, caplog):
    fold = load_fold(data_dir / "fold0")
    cfg = TrainConfig(method="sqn", encoder="gru", epochs=1, evals_per_epoch=1, batch_size=64, embedding_dim=8,
                      checkpoint_every=5, threads=1)
    clean = run_training(cfg, fold, tmp_path / "clean", run_info={}, code_hash="c", data_hash="d")
    torn = tmp_path / "torn" / "checkpoint" / "state.pt"
    torn.parent.mkdir(parents=True)
    torn.write_bytes(b"PK\x03\x04 half a zip file")
    with caplog.at_level("WARNING"):
        result = run_training(cfg, fold, tmp_path / "torn", run_info={}, code_hash="c", data_hash="d")
    assert "ignoring unreadable checkpoint" in caplog.text and str(torn) in caplog.text
    assert {k: result[k] for k in COMPARED} == {k: clean[k] for k in COMPARED}


def test_results_and_checkpoints_of_another_config_or_code_are_never_reused(data_dir, reference, tmp_path):
    """Through the CLI, as the workflow calls it: a finished run is reused only with the same identity; a checkpoint
    of another identity is not resumed."""
    def train(spec, code, folds="0"):
        result = subprocess.run(train_cmd(data_dir, tmp_path, spec, code, folds), capture_output=True, text=True,
                                env=ENV)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stderr

    shutil.copytree(reference / "runs", tmp_path / "runs")  # finished runs of code c1
    assert "reusing" in train(spec_json(), "c1")
    log = train(spec_json(), "c2")  # newer code
    assert "are from another config/code/data; retraining" in log
    assert json.loads(run_file(tmp_path, 0).read_text())["identity"]["code_hash"] == "c2"
    log = train(spec_json(gamma=0.6), "c2")  # another config
    assert "retraining" in log
    assert json.loads(run_file(tmp_path, 0).read_text())["config"]["gamma"] == 0.6

    # A run of code c3 killed mid-training, then started by code c4: its checkpoint is not resumed.
    process = start(train_cmd(data_dir, tmp_path, spec_json(), "c3", folds="1"))
    checkpoint = run_file(tmp_path, 1, "checkpoint/state.pt")
    wait_for(checkpoint.exists, process, what="the c3 run's first checkpoint")
    process.send_signal(signal.SIGKILL)
    process.wait()
    log = train(spec_json(), "c4", folds="1")
    assert "belongs to another config or code version; starting from step 0" in log and "resumed from" not in log
    assert numbers(run_file(tmp_path, 1)) == numbers(run_file(reference, 1))  # the same code, in truth


# ---------------------------------------------------------------------------------------------------- workflow

TINY = {
    "datasets": {"d": {"format": "rc15", "synthetic": {"sessions": 200, "items": 30, "seed": 1}}},
    "paper_datasets": {"rc15": "d", "retailrocket": "d"},
    "splits": {"seed": 0},
    "folds": [0, 1],
    "seeds": [0],
    "encoders": ["gru"],
    "train": {"epochs": 1, "evals_per_epoch": 1, "batch_size": 64, "embedding_dim": 8, "threads": 1},
    "methods": {"base": {"method": "ce"}, "snqn": {"method": "snqn"}},
    "experiments": {
        "main_methods": ["base"],
        "qhead": {"encoder": "gru", "methods": ["snqn"]},
        "offpolicy": {"encoder": "gru", "methods": ["snqn"]},
        "negative_reward": {"encoder": "gru", "method": "snqn", "values": [0.0]},
        "convergence": {"encoder": "gru", "methods": ["snqn"]},
        "negative_samples": {"encoder": "gru", "method": "snqn", "values": [10]},
    },
    "report": {"significance_level": 0.05, "show_std": False},
}
RUNS = [f"results/runs/d/gru/{m}/fold{f}/seed0/metrics.json" for m in ("base", "snqn") for f in (0, 1)]


def write_config(path: Path, **train) -> Path:
    config = json.loads(json.dumps(TINY))
    config["train"].update(train)
    path.write_text(yaml.safe_dump(config))
    return path


def snakemake_cmd(workdir: Path, config: Path, *args: str) -> list[str]:
    return [PY, "-m", "snakemake", *args, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(config)]


def snakemake(workdir: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_cmd(workdir, config, *args), capture_output=True, text=True, env=ENV)


def ran_rules(result: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"^(?:local)?rule (\w+):", result.stdout + result.stderr, flags=re.M))


@pytest.fixture(scope="module")
def trained_workflow(tmp_path_factory):
    """A work directory whose training is done (not yet aggregated), its config, and the metrics.csv that
    `sa2c aggregate` makes of its runs."""
    root = tmp_path_factory.mktemp("workflow")
    config = write_config(root / "config.yaml")
    workdir = root / "trained"
    result = snakemake(workdir, config, *RUNS, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    subprocess.run([PY, "-m", "sa2c.cli", "aggregate", "--out", str(root / "reference.csv"), *RUNS], cwd=workdir,
                   check=True, capture_output=True, env=ENV)
    return workdir, config, (root / "reference.csv").read_bytes()


@pytest.mark.parametrize("fault", ["ctrl-c", "kill-9", "kill-9-after-the-write"])
def test_workflow_killed_mid_aggregation_is_repaired_by_a_rerun(trained_workflow, tmp_path, fault):
    """ctrl-c: SIGINT to Snakemake and its job (a terminal's Ctrl-C); kill-9: SIGKILL to both while the aggregation
    runs; kill-9-after-the-write: Snakemake frozen, the job writes metrics.csv, then both SIGKILLed, so the file is
    there but Snakemake never recorded the job as done. In every case the rerun (as the profiles run it, with
    --rerun-incomplete) redoes only the aggregation, and metrics.csv is exactly right."""
    trained, config, reference = trained_workflow
    workdir = tmp_path / "w"
    shutil.copytree(trained, workdir, symlinks=True)
    target = workdir / "results" / "metrics.csv"
    process = start(snakemake_cmd(workdir, config, "results/metrics.csv", "--cores", "2"), start_new_session=True)
    wait_for((workdir / "logs/report/aggregate.log").exists, process, what="the aggregation job")
    if fault == "ctrl-c":
        os.killpg(process.pid, signal.SIGINT)
    elif fault == "kill-9":
        os.killpg(process.pid, signal.SIGKILL)  # the job's process has just started: no metrics.csv yet
    else:
        os.kill(process.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 60
        while not target.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert target.exists(), "the aggregation job did not finish while Snakemake was stopped"
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    if fault != "kill-9-after-the-write":
        assert not target.exists()

    plain = snakemake(workdir, config, "results/metrics.csv", "--cores", "2")
    text = plain.stdout + plain.stderr
    outcome = f"ran {sorted(ran_rules(plain))}" if plain.returncode == 0 else text.strip().splitlines()[-1]
    print(f"{fault}: plain rerun exit {plain.returncode}; {outcome}")  # shown with pytest -s
    if fault == "ctrl-c":  # Snakemake cleaned up after itself: the plain rerun repairs it
        assert plain.returncode == 0 and ran_rules(plain) == {"aggregate"}
    if fault == "kill-9":
        # Snakemake's own lock survives a SIGKILL: the rerun stops and says how to remove it.
        assert plain.returncode != 0 and "LockException" in text and "--unlock" in text and "Traceback" not in text
    if fault == "kill-9-after-the-write":
        # The file is there, but unrecorded: never trusted; the rerun says so and what to do.
        assert plain.returncode != 0 and "IncompleteFilesException" in text and "--rerun-incomplete" in text
        assert "Traceback" not in text
    if fault.startswith("kill-9"):
        assert snakemake(workdir, config, "results/metrics.csv", "--unlock").returncode == 0
    repair = snakemake(workdir, config, "results/metrics.csv", "--cores", "2", "--rerun-incomplete")
    assert repair.returncode == 0, repair.stderr[-3000:]
    assert "train" not in ran_rules(plain) | ran_rules(repair)  # the finished training is kept
    assert target.read_bytes() == reference
    assert "Nothing to be done" in snakemake(workdir, config, "results/metrics.csv", "-n").stdout


def test_workflow_killed_mid_training_resumes_from_the_checkpoint(tmp_path):
    """SIGKILL Snakemake and its training job once the job has checkpointed fold 0; after --unlock the rerun
    (--rerun-incomplete) resumes that run and ends with the numbers of an uninterrupted workflow."""
    config = write_config(tmp_path / "config.yaml", epochs=6, checkpoint_every=5, batch_size=32)
    targets = [r for r in RUNS if "/snqn/" in r]
    clean = snakemake(tmp_path / "clean", config, *targets, "--cores", "1")
    assert clean.returncode == 0, clean.stderr[-3000:]

    workdir = tmp_path / "killed"
    process = start(snakemake_cmd(workdir, config, *targets, "--cores", "1"), start_new_session=True)
    checkpoint = workdir / "results/runs/d/gru/snqn/fold0/seed0/checkpoint/state.pt"
    wait_for(checkpoint.exists, process, what="the training job's first checkpoint")
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    assert not (workdir / targets[0]).exists()
    assert snakemake(workdir, config, *targets, "--unlock").returncode == 0
    rerun = snakemake(workdir, config, *targets, "--cores", "1", "--rerun-incomplete")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    log = (workdir / "logs/runs/d/gru/snqn/fold0/seed0/train.log").read_text()
    assert re.search(r"resumed from \S+state.pt at step [1-9]\d*/", log), log[-2000:]
    for run in targets:
        assert numbers(workdir / run) == numbers(tmp_path / "clean" / run)


def test_results_of_an_older_config_or_code_are_not_reported_when_snakemake_has_no_record(trained_workflow,
                                                                                          tmp_path):
    """Snakemake reruns training when the config or code changes, but only with its records (.snakemake/metadata).
    Results copied from elsewhere, or a removed .snakemake/, must not pass for the current config or code: the
    tables and figures check each run's recorded identity."""
    trained, config, _ = trained_workflow
    workdir = tmp_path / "w"
    shutil.copytree(trained, workdir, symlinks=True)
    shutil.rmtree(workdir / ".snakemake")
    changed = write_config(tmp_path / "changed.yaml", gamma=0.6)

    result = snakemake(workdir, changed, "paper_tables/table2.csv", "--cores", "1")
    assert result.returncode != 0 and "train" not in ran_rules(result)  # Snakemake saw nothing to retrain
    message = (workdir / "logs/report/table2.log").read_text()
    assert "do not belong to this config and code" in message and "gamma=0.5 (config: 0.6)" in message
    assert "results/runs/d/gru/base/fold0/seed0/metrics.json" in message and "Traceback" not in message
    assert "--forcerun train" in message
    # What the message says to do works: the forced jobs retrain (their done.json identity differs).
    fixed = snakemake(workdir, changed, "paper_tables/table2.csv", "--cores", "1", "--forcerun", "train")
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert "retraining" in (workdir / "logs/runs/d/gru/base/fold0/seed0/train.log").read_text()

    # Results of older training code (recorded code hash differs), Snakemake again without records.
    run = workdir / "results/runs/d/gru/base/fold1/seed0/metrics.json"
    data = json.loads(run.read_text())
    data["identity"]["code_hash"] = "0123456789abcdef"
    run.write_text(json.dumps(data))
    shutil.rmtree(workdir / ".snakemake")
    (workdir / "paper_tables/table2.csv").unlink()
    result = snakemake(workdir, changed, "paper_tables/table2.csv", "--cores", "1")
    assert result.returncode != 0
    message = (workdir / "logs/report/table2.log").read_text()
    assert "made by other training code (code hash '0123456789abcdef'" in message and str(run.relative_to(workdir)) in message


# ---------------------------------------------------------------------------------------------------- disks


def _mount_tmpfs(path: Path, options: str) -> str | None:
    """Mount a tmpfs at `path`; None when done, else why not."""
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        return "no `mount` command"
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True,
                            text=True)
    if result.returncode != 0:
        return f"`mount -t tmpfs -o {options}` failed here (needs root or CAP_SYS_ADMIN): {result.stderr.strip()}"
    return None


@pytest.fixture
def small_disk(tmp_path):
    mounted = []

    def make(name: str, options: str) -> Path:
        path = tmp_path / name
        why = _mount_tmpfs(path, options)
        if why:
            pytest.skip(why)
        mounted.append(path)
        return path

    yield make
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_disk_full_during_training_is_a_clear_error_and_the_run_resumes(data_dir, reference, small_disk, tmp_path):
    """The run directory is on a 16 MB disk that fills up after the first checkpoint: the training stops with a
    message naming the file and what to do (no traceback); once space is free again the rerun resumes."""
    disk = small_disk("disk", "size=16m")
    root = disk / "w"
    cmd = train_cmd(data_dir, root, spec_json(), folds="0")
    cmd[cmd.index("--log-dir") + 1] = str(tmp_path / "logs")  # logs stay readable
    process = start(cmd)
    wait_for(run_file(root, 0, "checkpoint/state.pt").exists, process, what="the first checkpoint")
    with open(disk / "filler", "wb") as fh:  # fill the disk
        try:
            while True:
                fh.write(b"\0" * (1 << 16))
                fh.flush()
        except OSError as err:
            assert err.errno == errno.ENOSPC
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 3, out[-3000:]
    assert "No space left on device. The disk is full" in out and "Traceback" not in out
    assert re.search(r"ERROR sa2c: \S+/fold0/seed0/(checkpoint/state\.pt|metrics\.json|config\.json|checkpoint/done\.json)"
                     r": No space left on device", out), out[-2000:]
    assert not run_file(root, 0).exists()

    (disk / "filler").unlink()
    again = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed from" in again.stderr
    assert numbers(run_file(root, 0)) == numbers(run_file(reference, 0))


def test_disk_full_in_the_data_stage_names_the_file(data_dir, small_disk):
    disk = small_disk("tiny", "size=64k")
    result = subprocess.run([PY, "-m", "sa2c.cli", "folds", "--events", str(data_dir / "events.npz"), "--out-dir",
                             str(disk / "data")], capture_output=True, text=True, env=ENV)
    assert result.returncode == 3
    assert re.search(r"ERROR sa2c: \S+/data/fold0/\w+\.npz: No space left on device\. The disk is full", result.stderr)
    assert "Traceback" not in result.stderr
    assert not list(disk.rglob("*.tmp*"))  # no temp files left behind


def test_read_only_results_directory_is_a_clear_error(data_dir, small_disk, tmp_path):
    readonly = small_disk("ro", "ro,size=1m")
    result = subprocess.run([PY, "-m", "sa2c.cli", "folds", "--events", str(data_dir / "events.npz"), "--out-dir",
                             str(readonly / "results/data/d")], capture_output=True, text=True, env=ENV)
    assert result.returncode == 3, result.stderr[-2000:]
    assert f"{readonly}/results" in result.stderr and "Read-only file system" in result.stderr
    assert "run the workflow in a writable directory" in result.stderr and "Traceback" not in result.stderr

    # The whole workflow in a directory whose results/ is read-only: it stops at the first job, naming the path.
    workdir = tmp_path / "w"
    workdir.mkdir()
    (workdir / "results").symlink_to(readonly)
    config = write_config(tmp_path / "config.yaml")
    run = snakemake(workdir, config, "results/data/d/stats.json", "--cores", "1")
    text = run.stdout + run.stderr
    assert run.returncode != 0 and "Read-only file system" in text and "results/data/d" in text


@pytest.mark.parametrize(
    "err, expected",
    [
        (OSError(errno.ENOSPC, "No space left on device"), "No space left on device. The disk is full"),
        (PermissionError(errno.EACCES, "Permission denied"), "Permission denied. No permission to read or write"),
        (OSError(errno.EROFS, "Read-only file system"), "Read-only file system. The file system is read-only"),
    ],
)
def test_write_errors_are_reported_naming_the_output(data_dir, tmp_path, monkeypatch, caplog, err, expected):
    """Without mounts: the writer raises (np.savez gives no file name); the message names the output anyway."""
    import numpy as np

    def failing_savez(*args, **kwargs):
        raise err

    monkeypatch.setattr(np, "savez", failing_savez)
    rc = cli.main(["folds", "--events", str(data_dir / "events.npz"), "--out-dir", str(tmp_path / "out")])
    assert rc == 3
    assert re.search(rf"{tmp_path}/out/fold0/\w+\.npz: {expected}", caplog.text), caplog.text
    assert not list((tmp_path / "out").rglob("*.tmp*"))


def test_torch_save_on_a_full_disk_is_reported_as_a_full_disk(tmp_path, monkeypatch):
    """torch.save on a full disk raises a bare RuntimeError ("unexpected pos ..."); atomic_path reports ENOSPC."""
    from sa2c import io

    monkeypatch.setattr(io, "_disk_full", lambda folder: True)
    with pytest.raises(OSError) as caught:
        with io.atomic_path(tmp_path / "checkpoint" / "state.pt") as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(tmp_path / "checkpoint" / "state.pt")
    assert list((tmp_path / "checkpoint").iterdir()) == []
    monkeypatch.setattr(io, "_disk_full", lambda folder: False)
    with pytest.raises(RuntimeError):  # not a full disk: the error stays what it was
        with io.atomic_path(tmp_path / "x.pt"):
            raise RuntimeError("something else")
