"""Training and evaluation of one (dataset, encoder, method, fold, seed) run, resumable, and of a group of runs.

Protocol (SPEC.md, "Protocols", `paper`): train on the fold's replay buffer; evaluate the validation split every
`eval_every` steps (both heads where the method has both); keep, per head, the checkpoint with the best validation
`select_metric`; report the test split at that checkpoint; keep the whole validation curve.

Double Q (SQN, SAC, SNQN, SA2C, DQN): two complete networks; each step a coin picks which one is "main" (updated)
and which is "target". Network 0 is the one evaluated. SA2C switches, after the warm-up T, to a new Adam per network
at `lr_actor` and to the advantage-weighted actor loss.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import platform
import time
from pathlib import Path

import numpy as np
import torch

from sa2c import __version__
from sa2c.config import TrainConfig, config_hash
from sa2c.evaluation import evaluate, select_value
from sa2c.io import atomic_path, read_json, write_json
from sa2c.losses import DOUBLE_Q, METHOD_LOSSES, USES_NEGATIVES, Batch, StepContext, sample_negatives
from sa2c.models import RecommenderNetwork

log = logging.getLogger(__name__)

TRANSITION_KEYS = ("state", "len_state", "action", "is_buy", "next_state", "len_next_state", "done")


def pick_device(name: str) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("device=cuda was asked for, but torch sees no CUDA GPU (is a CUDA build of torch installed?)")
        strict_fp32_on_gpu()
        return torch.device("cuda")
    return torch.device("cpu")


def strict_fp32_on_gpu() -> None:
    """Full fp32 products on GPUs too: PyTorch lets cuDNN convolutions (Caser's) use TF32 by default on recent GPUs,
    which changes numbers; nothing here lowers precision unless asked."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def software_versions() -> dict[str, str]:
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__, "sa2c": __version__}


def _to_device(split: dict[str, np.ndarray], device: torch.device, keys=TRANSITION_KEYS) -> dict[str, torch.Tensor]:
    out = {}
    for key in keys:
        array = split[key]
        if key in ("is_buy", "done"):
            out[key] = torch.from_numpy(np.asarray(array).astype(bool)).to(device)
        else:
            out[key] = torch.from_numpy(np.asarray(array).astype(np.int64)).to(device)
    return out


def _drop_empty_states(split: dict[str, torch.Tensor], n_items: int) -> dict[str, torch.Tensor]:
    """Remove the first event of each session (its state is all padding)."""
    keep = split["state"][:, 0] != n_items
    return {k: v[keep] for k, v in split.items()}


class Run:
    """One training run; `execute()` trains (or resumes) and returns the metrics.json content."""

    def __init__(self, cfg: TrainConfig, fold_data: dict, out_dir: Path, *, identity: dict, run_info: dict,
                 log_every_s: float = 30.0):
        self.cfg = cfg
        self.out_dir = out_dir
        self.checkpoint_dir = out_dir / "checkpoint"
        self.identity = identity
        self.run_info = run_info
        self.log_every_s = log_every_s
        self.device = pick_device(cfg.device)
        self.n_items = int(fold_data["n_items"])

        train = _to_device(fold_data["train"], self.device)
        self.train = train if cfg.train_empty_state else _drop_empty_states(train, self.n_items)
        eval_keys = ("state", "len_state", "action", "is_buy")
        self.valid = _to_device(fold_data["valid"], self.device, eval_keys)
        self.test = _to_device(fold_data["test"], self.device, eval_keys)
        if not cfg.eval_empty_state:
            self.valid = _drop_empty_states(self.valid, self.n_items)
            self.test = _drop_empty_states(self.test, self.n_items)
        self.behaviour = self._behaviour(fold_data)

        self.n_train = self.train["action"].size(0)
        if self.n_train == 0:
            raise ValueError(f"{out_dir}: the training split has no transitions")
        self.batch_size = min(cfg.batch_size, self.n_train)
        self.steps_per_epoch = max(1, self.n_train // self.batch_size)
        self.total_steps = max(1, int(round(cfg.epochs * self.steps_per_epoch)))
        self.eval_every = (
            max(1, int(round(self.steps_per_epoch / cfg.evals_per_epoch))) if cfg.evals_per_epoch else cfg.eval_every
        )
        self.warmup_steps = (
            int(round(cfg.warmup_fraction * self.total_steps)) if cfg.warmup_fraction is not None else cfg.warmup_steps
        )
        self.heads = cfg.heads
        self.loss_fn = METHOD_LOSSES[cfg.method]

        torch.manual_seed(cfg.seed)
        n_nets = 2 if cfg.method in DOUBLE_Q else 1
        self.nets = [
            RecommenderNetwork(cfg.encoder, self.n_items, cfg.history, cfg.embedding_dim, cfg.dropout, self.heads).to(self.device)
            for _ in range(n_nets)
        ]
        self.optimizers = [self._adam(net, cfg.lr) for net in self.nets]
        self.actor_phase = False
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(cfg.seed)
        self.step = 0
        self.epoch_order = torch.empty(0, dtype=torch.long, device=self.device)
        self.epoch_pos = 0
        self.curve: list[dict] = []
        self.best: dict[str, dict] = {}
        self.train_seconds = 0.0
        self.eval_events_per_s: list[float] = []
        self.last_parts: dict[str, float] = {}

    # ------------------------------------------------------------------------------------------------ set-up

    def _behaviour(self, fold_data: dict) -> torch.Tensor:
        """beta(a): item frequency, from all splits (authors' code) or the training split only."""
        if self.cfg.behaviour_from == "all":
            counts = np.asarray(fold_data["item_counts_all"], dtype=np.float64)
        else:
            counts = np.bincount(np.asarray(fold_data["train"]["action"]), minlength=self.n_items).astype(np.float64)
        counts = np.maximum(counts, 1.0)  # an item never seen still gets a finite weight
        return torch.from_numpy(counts / counts.sum()).float().to(self.device)

    def _adam(self, net: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
        # The fused kernel updates all parameters in one pass (3x faster than foreach here), on CPU and CUDA.
        return torch.optim.Adam(net.parameters(), lr=lr, fused=True)

    # ------------------------------------------------------------------------------------------------ state

    def _state_dict(self) -> dict:
        return {
            "identity": self.identity,
            "step": self.step,
            "nets": [net.state_dict() for net in self.nets],
            "optimizers": [opt.state_dict() for opt in self.optimizers],
            "actor_phase": self.actor_phase,
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
            "epoch_order": self.epoch_order,
            "epoch_pos": self.epoch_pos,
            "curve": self.curve,
            "best": self.best,
            "train_seconds": self.train_seconds,
            "eval_events_per_s": self.eval_events_per_s,
        }

    def save_checkpoint(self) -> None:
        with atomic_path(self.checkpoint_dir / "state.pt") as tmp:
            torch.save(self._state_dict(), tmp)

    def try_resume(self) -> bool:
        path = self.checkpoint_dir / "state.pt"
        if not path.exists():
            return False
        try:
            state = torch.load(path, map_location=self.device, weights_only=False)
        except Exception as err:  # a torn or foreign file: start again rather than crash
            log.warning("ignoring unreadable checkpoint %s (%s); starting from step 0", path, err)
            return False
        if state.get("identity") != self.identity:
            log.warning("checkpoint %s belongs to another config or code version; starting from step 0", path)
            return False
        if state["actor_phase"]:
            self._switch_to_actor_phase()
        for net, saved in zip(self.nets, state["nets"]):
            net.load_state_dict(saved)
        for opt, saved in zip(self.optimizers, state["optimizers"]):
            opt.load_state_dict(saved)
        self.step = state["step"]
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.epoch_order, self.epoch_pos = state["epoch_order"], state["epoch_pos"]
        self.curve, self.best = state["curve"], state["best"]
        self.train_seconds, self.eval_events_per_s = state["train_seconds"], state["eval_events_per_s"]
        log.info("resumed from %s at step %d/%d", path, self.step, self.total_steps)
        return True

    # ------------------------------------------------------------------------------------------------ training

    def _switch_to_actor_phase(self) -> None:
        """SA2C after T steps: a NEW Adam per network at lr_actor (the authors' opt2)."""
        self.actor_phase = True
        self.optimizers = [self._adam(net, self.cfg.lr_actor) for net in self.nets]

    def _next_batch(self) -> Batch:
        if self.epoch_pos + self.batch_size > self.epoch_order.numel():
            self.epoch_order = torch.randperm(self.n_train, generator=self.generator, device=self.device)
            self.epoch_pos = 0
        index = self.epoch_order[self.epoch_pos : self.epoch_pos + self.batch_size]
        self.epoch_pos += self.batch_size
        t = self.train
        batch = Batch(**{key: t[key][index] for key in TRANSITION_KEYS})
        if self.cfg.method in USES_NEGATIVES:
            batch.negatives = sample_negatives(batch.action, self.n_items, self.cfg.n_negatives, self.generator)
        return batch

    def train_step(self) -> None:
        cfg = self.cfg
        if cfg.method == "sa2c" and not self.actor_phase and self.step >= self.warmup_steps:
            self._switch_to_actor_phase()
            log.info("step %d: SA2C warm-up over; actor phase with a new Adam at lr %g", self.step, cfg.lr_actor)
        batch = self._next_batch()
        if len(self.nets) == 2:
            coin = int(torch.randint(0, 2, (1,), generator=self.generator, device=self.device).item())
            main, target, optimizer = self.nets[coin], self.nets[1 - coin], self.optimizers[coin]
        else:
            main, target, optimizer = self.nets[0], None, self.optimizers[0]
        ctx = StepContext(cfg, batch, main, target, self.behaviour, sa2c_actor_phase=self.actor_phase)
        loss, parts = self.loss_fn(ctx)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        self.step += 1
        self.last_parts = {"loss": loss.detach(), **{k: v.detach() for k, v in parts.items()}}

    def validate(self) -> None:
        net = self.nets[0]
        point = {"step": self.step, "epoch": round(self.step / self.steps_per_epoch, 4), "metrics": {}}
        for head in self.heads:
            metrics, speed = evaluate(net, head, self.valid, 1.0 / self.behaviour, batch_size=self.cfg.eval_batch_size,
                                      reward_click=self.cfg.reward_click, reward_buy=self.cfg.reward_buy)
            self.eval_events_per_s.append(speed)
            point["metrics"][head] = metrics
            value = select_value(metrics, self.cfg.select_metric)
            if head not in self.best or value > self.best[head]["value"]:
                state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                self.best[head] = {"step": self.step, "value": value, "state": state, "valid": metrics}
        self.curve.append(point)
        summary = ", ".join(
            f"{h} {self.cfg.select_metric}={select_value(point['metrics'][h], self.cfg.select_metric):.4f}" for h in self.heads
        )
        log.info("validation at step %d: %s", self.step, summary)

    def execute(self) -> dict:
        cfg = self.cfg
        log.info(
            "run %s: %d transitions, batch %d, %d steps (%.2f epochs), eval every %d, warm-up %s, device %s, %d thread(s)",
            self.run_info, self.n_train, self.batch_size, self.total_steps, cfg.epochs, self.eval_every,
            self.warmup_steps if cfg.method == "sa2c" else "-", self.device, torch.get_num_threads(),
        )
        self.try_resume()
        last_log = time.perf_counter()
        log_step = self.step
        while self.step < self.total_steps:
            start = time.perf_counter()
            self.train_step()
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            self.train_seconds += time.perf_counter() - start
            at_eval = self.step % self.eval_every == 0 or self.step == self.total_steps
            if at_eval:
                self.validate()
            if at_eval or self.step % cfg.checkpoint_every == 0:
                self.save_checkpoint()
            now = time.perf_counter()
            if now - last_log >= self.log_every_s or self.step == self.total_steps:
                parts = " ".join(f"{k}={float(v):.4f}" for k, v in self.last_parts.items())
                rate = (self.step - log_step) * self.batch_size / (now - last_log)
                log.info("step %d/%d (%.0f%%) %s | %.0f transitions/s", self.step, self.total_steps,
                         100.0 * self.step / self.total_steps, parts, rate)
                last_log, log_step = now, self.step
        return self._finish()

    def _finish(self) -> dict:
        cfg = self.cfg
        test, valid, best = {}, {}, {}
        evaluator = copy.deepcopy(self.nets[0])
        for head in self.heads:
            record = self.best[head]
            evaluator.load_state_dict(record["state"])
            metrics, speed = evaluate(evaluator, head, self.test, 1.0 / self.behaviour, batch_size=cfg.eval_batch_size,
                                      reward_click=cfg.reward_click, reward_buy=cfg.reward_buy)
            self.eval_events_per_s.append(speed)
            test[head], valid[head] = metrics, record["valid"]
            best[head] = {"step": record["step"], "select_metric": cfg.select_metric, "value": record["value"]}
        transitions = self.total_steps * self.batch_size
        return {
            "run": self.run_info,
            "identity": self.identity,
            "config": cfg.to_dict(),
            "heads": list(self.heads),
            "validation_curve": self.curve,
            "best": best,
            "valid": valid,
            "test": test,
            "train": {
                "steps": self.total_steps,
                "epochs": round(self.total_steps / self.steps_per_epoch, 4),
                "transitions": self.n_train,
                "batch_size": self.batch_size,
                "warmup_steps": self.warmup_steps if cfg.method == "sa2c" else None,
                "wall_time_s": round(self.train_seconds, 3),
                "transitions_per_s": round(transitions / self.train_seconds, 1) if self.train_seconds > 0 else None,
                "eval_events_per_s": round(float(np.median(self.eval_events_per_s)), 1),
                "final_losses": {k: float(v) for k, v in self.last_parts.items()},
            },
            "versions": software_versions(),
            "device": str(self.device),
        }


@contextlib.contextmanager
def run_log_file(path: Path):
    """Also send this run's log lines to its own file (logs/ mirrors results/)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def run_training(cfg: TrainConfig, fold_data: dict, out_dir: Path, *, run_info: dict, code_hash: str,
                 data_hash: str, log_path: Path | None = None) -> dict:
    """Train one run unless an identical one (same config, code and data) already finished; write its files."""
    identity = {"config_hash": config_hash(cfg), "code_hash": code_hash, "data_hash": data_hash}
    done_path = out_dir / "checkpoint" / "done.json"
    with run_log_file(log_path) if log_path else contextlib.nullcontext():
        if done_path.exists():
            done = read_json(done_path)
            if done.get("identity") == identity:
                log.info("run %s already finished with this config, code and data: reusing %s", run_info, done_path)
                _write_outputs(out_dir, done, cfg)
                return done
            log.info("run %s: finished results in %s are from another config/code/data; retraining", run_info, done_path)
        result = Run(cfg, fold_data, out_dir, identity=identity, run_info=run_info).execute()
        write_json(done_path, result)
        _write_outputs(out_dir, result, cfg)
        with contextlib.suppress(FileNotFoundError):
            (out_dir / "checkpoint" / "state.pt").unlink()
        log.info("run %s finished: %s", run_info, out_dir / "metrics.json")
    return result


def _write_outputs(out_dir: Path, result: dict, cfg: TrainConfig) -> None:
    write_json(out_dir / "config.json", cfg.to_dict())
    write_json(out_dir / "metrics.json", result)


def train_group(data_dir: Path, run_dir: Path, log_dir: Path, folds: list[int], specs: dict[int, dict],
                code_hash: str, threads: int) -> None:
    """Train every fold and seed of one (dataset, encoder, method) group in this process (data loaded once per fold)."""
    from sa2c.data.transitions import load_fold

    torch.set_num_threads(max(1, threads))
    with contextlib.suppress(RuntimeError):  # only settable before any parallel work
        torch.set_num_interop_threads(1)
    parts = run_dir.parts[-3:]  # .../{dataset}/{encoder}/{method}
    for fold in folds:
        fold_dir = data_dir / f"fold{fold}"
        fold_data = load_fold(fold_dir)
        data_hash = file_digest(fold_dir / "train.npz")
        for seed, spec in sorted(specs.items()):
            cfg = TrainConfig.from_dict(spec)
            info = {"dataset": parts[0], "encoder": parts[1], "method": parts[2], "base_method": cfg.method,
                    "fold": fold, "seed": seed}
            run_training(cfg, fold_data, run_dir / f"fold{fold}" / f"seed{seed}", run_info=info, code_hash=code_hash,
                         data_hash=data_hash, log_path=log_dir / f"fold{fold}" / f"seed{seed}" / "train.log")
