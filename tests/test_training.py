"""Training on generated data: learning happens for every encoder, runs are deterministic and resumable."""

import json
import re
import subprocess
import sys

import pytest
import torch

from sa2c.config import TrainConfig
from sa2c.data.transitions import load_fold
from sa2c.evaluation import evaluate
from sa2c.train import Run, run_training
from synthetic_folds import build_folds


@pytest.fixture(scope="module")
def fold_dir(tmp_path_factory):
    return build_folds(tmp_path_factory.mktemp("data"), sessions=1200, items=120, seed=5) / "fold0"


@pytest.fixture(scope="module")
def fold(fold_dir):
    return load_fold(fold_dir)


def small_config(**overrides):
    values = dict(epochs=3, evals_per_epoch=1, warmup_fraction=0.5, batch_size=128, lr=0.01, threads=1)
    values.update(overrides)
    return TrainConfig(**values)


@pytest.mark.parametrize("encoder", ["gru", "caser", "nextitnet", "sasrec"])
def test_training_improves_validation_hr10(fold, tmp_path, encoder):
    cfg = small_config(encoder=encoder, method="snqn")
    run = Run(cfg, fold, tmp_path, identity={"t": 1}, run_info={})
    untrained, _ = evaluate(run.nets[0], "supervised", run.valid, 1 / run.behaviour, batch_size=512,
                            reward_click=0.2, reward_buy=1.0)
    result = run.execute()
    trained = result["valid"]["supervised"]["click"]["hr@10"]
    assert trained > untrained["click"]["hr@10"] + 0.05, (encoder, untrained["click"]["hr@10"], trained)


# One training run in a fresh process, as the workflow runs it (one process per job); with a step number, the
# process dies (KeyboardInterrupt) when it reaches that step.
RUN_SCRIPT = """
import json, logging, sys
from pathlib import Path
from sa2c.config import TrainConfig
from sa2c.data.transitions import load_fold
from sa2c.train import Run, run_training
cfg, fold_dir, out_dir, die_at = TrainConfig.from_dict(json.loads(sys.argv[1])), sys.argv[2], sys.argv[3], int(sys.argv[4])
original = Run.train_step
def step(self):
    if self.step == die_at:
        raise KeyboardInterrupt("killed")
    original(self)
Run.train_step = step
logging.basicConfig(level=logging.INFO)
run_training(cfg, load_fold(Path(fold_dir)), Path(out_dir), run_info={}, code_hash="c", data_hash="d")
"""


def train_in_fresh_process(cfg, fold_dir, out_dir, die_at=-1):
    return subprocess.run([sys.executable, "-c", RUN_SCRIPT, json.dumps(cfg.to_dict()), str(fold_dir), str(out_dir),
                           str(die_at)], capture_output=True, text=True)


def test_same_seed_same_numbers_and_resume_equals_uninterrupted(fold_dir, tmp_path):
    """Same seed, same machine: two runs give the same numbers bit for bit, and a run killed after its step-10
    checkpoint and started again resumes there and ends with the same numbers. Each run is a fresh process, as in
    the workflow (numbers are promised per process start, not for runs following each other in one process)."""
    cfg = small_config(encoder="gru", method="sa2c", checkpoint_every=5)
    strip = lambda path: json.dumps({k: v for k, v in json.loads(path.read_text()).items()  # noqa: E731
                                     if k in ("validation_curve", "best", "valid", "test")}, sort_keys=True)
    for name in ("a", "b"):
        done = train_in_fresh_process(cfg, fold_dir, tmp_path / name)
        assert done.returncode == 0, done.stderr[-2000:]
    assert strip(tmp_path / "a" / "metrics.json") == strip(tmp_path / "b" / "metrics.json")  # bit-for-bit on CPU

    killed = train_in_fresh_process(cfg, fold_dir, tmp_path / "c", die_at=12)
    assert killed.returncode != 0 and "KeyboardInterrupt" in killed.stderr
    checkpoint = tmp_path / "c" / "checkpoint" / "state.pt"
    assert torch.load(checkpoint, weights_only=False)["step"] == 10
    assert not (tmp_path / "c" / "metrics.json").exists()
    resumed = train_in_fresh_process(cfg, fold_dir, tmp_path / "c")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert re.search(r"resumed from .* at step 10/", resumed.stderr), resumed.stderr[-2000:]
    assert strip(tmp_path / "c" / "metrics.json") == strip(tmp_path / "a" / "metrics.json")
    assert not checkpoint.exists()  # removed once done


def test_finished_run_is_reused_only_with_the_same_identity(fold, tmp_path):
    cfg = small_config(encoder="caser", method="ce", epochs=1)
    info = {"fold": 0, "seed": 0}
    first = run_training(cfg, fold, tmp_path, run_info=info, code_hash="c1", data_hash="d")
    (tmp_path / "metrics.json").unlink()
    again = run_training(cfg, fold, tmp_path, run_info=info, code_hash="c1", data_hash="d")
    assert again["train"]["wall_time_s"] == first["train"]["wall_time_s"]  # reused, not retrained
    assert json.loads((tmp_path / "metrics.json").read_text())["identity"]["code_hash"] == "c1"
    other = run_training(cfg, fold, tmp_path, run_info=info, code_hash="c2", data_hash="d")
    assert other["identity"]["code_hash"] == "c2"  # new code: retrained, never silently reused


def test_sa2c_switches_to_a_new_adam_after_warmup(fold, tmp_path):
    cfg = small_config(encoder="gru", method="sa2c", warmup_fraction=None, warmup_steps=3, epochs=1, lr_actor=0.001)
    run = Run(cfg, fold, tmp_path, identity={}, run_info={})
    for _ in range(3):
        run.train_step()
    assert not run.actor_phase
    assert all(g["lr"] == 0.01 for opt in run.optimizers for g in opt.param_groups)
    old = list(run.optimizers)
    run.train_step()  # step 4 is the first actor step
    assert run.actor_phase
    assert all(g["lr"] == 0.001 for opt in run.optimizers for g in opt.param_groups)
    assert all(new is not o for new, o in zip(run.optimizers, old))
    # exactly one of the two fresh optimizers has taken one step: its Adam state starts from zero
    steps = [max((int(s["step"]) for s in opt.state.values()), default=0) for opt in run.optimizers]
    assert sorted(steps) == [0, 1]


def test_methods_write_both_heads(fold, tmp_path):
    for method, heads in (("ce", ["supervised"]), ("dqn", ["q"]), ("sqn", ["supervised", "q"])):
        cfg = small_config(encoder="gru", method=method, epochs=0.5)
        result = run_training(cfg, fold, tmp_path / method, run_info={}, code_hash="c", data_hash="d")
        assert result["heads"] == heads and sorted(result["test"]) == sorted(heads)
        for head in heads:
            assert 0.0 <= result["test"][head]["click"]["hr@10"] <= 1.0
            assert result["test"][head]["all"]["n"] == len(fold["test"]["action"])


def test_the_package_puts_mkl_in_reproducible_mode():
    """Importing sa2c before any product sets MKL's strict reproducible mode (an explicit setting wins)."""
    import os

    code = "import sa2c, torch; torch.mm(torch.randn(8, 8), torch.randn(8, 8)); import os; print(os.environ['MKL_CBWR'])"
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"} | {"MKL_VERBOSE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "AUTO,STRICT"
    if torch.backends.mkl.is_available():  # MKL reports the mode it ran the product in
        assert "CNR:AUTO,STRICT" in out
    env["MKL_CBWR"] = "COMPATIBLE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "COMPATIBLE"


def test_device_choice_and_strict_fp32_on_gpus(monkeypatch):
    from sa2c.train import pick_device

    assert pick_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert pick_device("auto").type == "cpu"
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            pick_device("cuda")
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # the choice logic, without a GPU
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True  # as PyTorch may default
        assert pick_device("auto").type == "cuda"
        assert torch.backends.cudnn.allow_tf32 is False and torch.backends.cuda.matmul.allow_tf32 is False
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
