"""Training on generated data: learning happens for every encoder, runs are deterministic and resumable."""

import json

import pytest

from sa2c.config import TrainConfig
from sa2c.data.transitions import load_fold
from sa2c.evaluation import evaluate
from sa2c.train import Run, run_training
from synthetic_folds import build_folds


@pytest.fixture(scope="module")
def fold(tmp_path_factory):
    data = build_folds(tmp_path_factory.mktemp("data"), sessions=1200, items=120, seed=5)
    return load_fold(data / "fold0")


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


def test_same_seed_same_numbers_and_resume_equals_uninterrupted(fold, tmp_path, monkeypatch):
    cfg = small_config(encoder="gru", method="sa2c", checkpoint_every=5)
    info = {"dataset": "d", "encoder": "gru", "method": "sa2c", "fold": 0, "seed": 0}
    first = run_training(cfg, fold, tmp_path / "a", run_info=info, code_hash="c", data_hash="d")
    second = run_training(cfg, fold, tmp_path / "b", run_info=info, code_hash="c", data_hash="d")
    strip = lambda r: json.dumps({k: r[k] for k in ("validation_curve", "best", "valid", "test")}, sort_keys=True)  # noqa: E731
    assert strip(first) == strip(second)  # bit-for-bit on CPU

    # kill a run mid-training (after its step-10 checkpoint), then run it again: it resumes, same numbers
    original = Run.train_step
    calls = {"n": 0}

    def dying_step(self):
        if calls["n"] == 12:
            raise KeyboardInterrupt("killed")
        calls["n"] += 1
        original(self)

    monkeypatch.setattr(Run, "train_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        run_training(cfg, fold, tmp_path / "c", run_info=info, code_hash="c", data_hash="d")
    assert (tmp_path / "c" / "checkpoint" / "state.pt").exists()
    assert not (tmp_path / "c" / "metrics.json").exists()
    monkeypatch.setattr(Run, "train_step", original)
    resumed_steps = []
    monkeypatch.setattr(Run, "try_resume", lambda self, _orig=Run.try_resume: resumed_steps.append(_orig(self) and self.step) or resumed_steps[-1])
    resumed = run_training(cfg, fold, tmp_path / "c", run_info=info, code_hash="c", data_hash="d")
    assert resumed_steps == [10]
    assert strip(resumed) == strip(first)
    assert not (tmp_path / "c" / "checkpoint" / "state.pt").exists()  # removed once done


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
    import subprocess
    import sys

    import torch

    code = "import sa2c, torch; torch.mm(torch.randn(8, 8), torch.randn(8, 8)); import os; print(os.environ['MKL_CBWR'])"
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"} | {"MKL_VERBOSE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "AUTO,STRICT"
    if torch.backends.mkl.is_available():  # MKL reports the mode it ran the product in
        assert "CNR:AUTO,STRICT" in out
    env["MKL_CBWR"] = "COMPATIBLE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "COMPATIBLE"
