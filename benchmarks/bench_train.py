"""Training and evaluation speed at paper scale, against the arithmetic the methods cannot avoid.

For each encoder x method it prints training transitions/s, evaluation events/s, peak memory, and the ratio
"unavoidable dense work / actual step time", where the unavoidable work is timed in the same process with the same
threads: the full-catalogue head products the method's mathematics needs, forward and backward, at the same batch:

- CE: supervised head forward, and its two backward products (grad of W, grad of the state): 3 products;
- SQN, SAC: those 3 + the Q head on s' (argmax selector of the double-Q target): 4;
- SNQN, SA2C: those 4 + the Q head on s (selector of the negatives' target): 5;
- DQN: the two selectors: 2.

Step time and unavoidable time are measured in alternating rounds (`--rounds`) and each reported as its median, so
that a change of the machine's load moves both alike; `ratio` is the median of the rounds' ratios.

Evaluation is timed twice on the same validation events: `eval ev/s` as the product runs it (a row leaves the
catalogue scan once more than 20 items score above its target; how often depends on the model, so `hr@20` of the
benchmark's briefly trained model is printed next to it) and `scan ev/s` with that cap off, every row scanned over
the whole catalogue: the worst case, a model whose every target ranks in the top 20. Both share one encoder pass
among histories that are prefixes of one another (causal encoders, `evaluation.encode`); `pfx diff` is the largest
difference of any metric from evaluating every event with its own pass (float rounding of the states only).

Q-values at the logged action, the negatives, and the target network's value at the selected action are gathers
and dot products, not full products, so they are not counted as unavoidable.

Usage:
  python benchmarks/bench_train.py                       # paper-sized generated RC15 data, all encoders
  python benchmarks/bench_train.py --encoders gru --methods snqn --steps 20
  python benchmarks/bench_train.py --startup             # per-job start-up cost (import + data load)
  python benchmarks/bench_train.py --workflow            # end-to-end time of the default workflow (fresh clone)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / "out"


def paper_fold(sessions: int, items: int) -> Path:
    """Generated RC15-format data of the paper's size (cached), filtered and split like the real data."""
    from sa2c.data.preprocess import preprocess
    from sa2c.data.splits import make_folds
    from sa2c.data.synthetic import generate

    root = CACHE / f"rc15-{sessions}-{items}"
    if not (root / "data" / "fold0" / "train.npz").exists():
        spec = {"format": "rc15", "sample_sessions": sessions,
                "synthetic": {"sessions": sessions, "items": items, "seed": 1}}
        t = time.perf_counter()
        generate("rc15", root / "raw", spec["synthetic"])
        preprocess(spec, root / "raw", root / "data")
        make_folds(root / "data" / "events.npz", root / "data", seed=0)
        print(f"# generated {sessions} sessions x {items} items in {time.perf_counter() - t:.1f} s", flush=True)
    return root / "data" / "fold0"


def timed(fn, repeat: int, warm: bool = True) -> float:
    import torch

    if warm:
        fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeat


def unavoidable_seconds(method: str, batch: int, state_dim: int, n_items: int, device, repeat: int = 10) -> float:
    """Time of the full-catalogue head products the method needs per step (see module docstring)."""
    import torch

    x = torch.randn(batch, state_dim, device=device)
    w = torch.randn(n_items, state_dim, device=device)
    b = torch.randn(n_items, device=device)
    g = torch.randn(batch, n_items, device=device)
    out = torch.empty(batch, n_items, device=device)
    forward = timed(lambda: torch.addmm(b, x, w.t(), out=out), repeat)
    grad_w = timed(lambda: g.t() @ x, repeat)
    grad_x = timed(lambda: g @ w, repeat)
    supervised = forward + grad_w + grad_x
    selectors = {"ce": 0, "sqn": 1, "sac": 1, "snqn": 2, "sa2c": 2, "dqn": 2}[method]
    return (supervised if method != "dqn" else 0.0) + selectors * forward


def bench_run(encoder: str, method: str, fold: dict, steps: int, threads: int, eval_events: int, rounds: int) -> dict:
    """Step time and unavoidable time are measured in alternating rounds and each summarised by its median, so
    that a change of the machine's load during the benchmark moves both alike."""
    import statistics

    import torch

    from sa2c.config import TrainConfig
    from sa2c.evaluation import evaluate
    from sa2c.train import Run

    cfg = TrainConfig(method=method, encoder=encoder, epochs=100, eval_every=10**9, warmup_steps=2, threads=threads)
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(cfg, fold, Path(tmp), identity={}, run_info={})
        for _ in range(3):  # warm-up (allocator, first-touch; SA2C is in its actor phase from here on)
            run.train_step()
        state_dim, n_items, device = run.nets[0].encoder.output_dim, int(fold["n_items"]), run.device
        step_times, need_times = [], []
        for _ in range(rounds):
            step_times.append(timed(run.train_step, max(1, steps // rounds), warm=False))
            need_times.append(unavoidable_seconds(method, cfg.batch_size, state_dim, n_items, device))
        step, need = statistics.median(step_times), statistics.median(need_times)
        ratio = statistics.median(n / s for n, s in zip(need_times, step_times))
        head = run.heads[0]
        valid = {k: v[:eval_events] for k, v in run.valid.items()}
        evaluate(run.nets[0], head, {k: v[:512] for k, v in valid.items()}, 1 / run.behaviour,
                 batch_size=cfg.eval_batch_size, reward_click=0.2, reward_buy=1.0)
        metrics, eval_speed = evaluate(run.nets[0], head, valid, 1 / run.behaviour,
                                       batch_size=cfg.eval_batch_size, reward_click=0.2, reward_buy=1.0)
        full, scan_speed = evaluate(run.nets[0], head, valid, 1 / run.behaviour, batch_size=cfg.eval_batch_size,
                                    reward_click=0.2, reward_buy=1.0, rank_cap=None)
        assert full == metrics, "the rank cap changed a metric"
        unshared, _ = evaluate(run.nets[0], head, valid, 1 / run.behaviour, batch_size=cfg.eval_batch_size,
                               reward_click=0.2, reward_buy=1.0, share_prefixes=False)
        prefix_diff = max_metric_difference(metrics, unshared)
    return {"step_ms": step * 1e3, "transitions_per_s": cfg.batch_size / step, "eval_events_per_s": eval_speed,
            "scan_events_per_s": scan_speed, "hr20": metrics["click"]["hr@20"],
            "unavoidable_ms": need * 1e3, "ratio": ratio, "prefix_diff": prefix_diff}


def max_metric_difference(a: dict, b: dict) -> float:
    return max(abs(a[e][m] - b[e][m]) for e in a for m in a[e] if a[e][m] is not None and m != "n")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def startup_cost(fold_dir: Path) -> None:
    code = ("import time; t=time.perf_counter(); import torch, sa2c.train, sa2c.data.transitions as T; "
            "a=time.perf_counter(); T.load_fold(__import__('pathlib').Path(%r)); b=time.perf_counter(); "
            "print(f'{a-t:.2f} {b-a:.2f}')" % str(fold_dir))
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    total = time.perf_counter() - start
    print(f"per-job start-up: interpreter+imports {float(out[0]):.2f} s, load fold {float(out[1]):.2f} s, "
          f"process total {total:.2f} s")


def workflow_time(cores: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "snakemake", "--cores", str(cores), "all", "-q"], cwd=clone, check=True)
        elapsed = time.perf_counter() - start
        metrics = list((clone / "results" / "runs").rglob("metrics.json"))
        train_s = sum(json.loads(path.read_text())["train"]["wall_time_s"] for path in metrics)
        jobs = [float(path.read_text().splitlines()[1].split("\t")[0])
                for path in (clone / "benchmarks" / "out" / "runs").rglob("train.tsv")]
        print(f"default workflow from a fresh clone: {elapsed:.0f} s with --cores {cores}, {len(metrics)} runs in "
              f"{len(jobs)} training jobs; job wall times sum to {sum(jobs):.0f} s, of which training loops (without "
              f"evaluation and start-up) {train_s:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoders", default="gru,caser,nextitnet,sasrec")
    parser.add_argument("--methods", default="ce,snqn,sa2c")
    parser.add_argument("--sessions", type=int, default=200000)
    parser.add_argument("--items", type=int, default=26702)
    parser.add_argument("--steps", type=int, default=30, help="timed training steps, split over --rounds")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of steps and unavoidable work")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-events", type=int, default=20000)
    parser.add_argument("--startup", action="store_true")
    parser.add_argument("--workflow", action="store_true")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()

    if args.workflow:
        workflow_time(args.cores)
        return
    import torch

    torch.set_num_threads(args.threads)
    fold_dir = paper_fold(args.sessions, args.items)
    if args.startup:
        startup_cost(fold_dir)
        return
    from sa2c.data.transitions import load_fold

    fold = load_fold(fold_dir)
    print(f"# {len(fold['train']['action'])} training transitions, {int(fold['n_items'])} items, "
          f"{args.threads} threads, torch {torch.__version__}, device {'cuda' if torch.cuda.is_available() else 'cpu'}, "
          f"MKL_CBWR={os.environ.get('MKL_CBWR')}")
    print(f"{'encoder':10s} {'method':6s} {'step ms':>8s} {'trans/s':>9s} {'need ms':>8s} {'ratio':>6s} "
          f"{'eval ev/s':>10s} {'hr@20':>6s} {'scan ev/s':>10s} {'pfx diff':>8s} {'peak MB':>8s}")
    for encoder in args.encoders.split(","):
        for method in args.methods.split(","):
            r = bench_run(encoder, method, fold, args.steps, args.threads, args.eval_events, args.rounds)
            print(f"{encoder:10s} {method:6s} {r['step_ms']:8.1f} {r['transitions_per_s']:9.0f} "
                  f"{r['unavoidable_ms']:8.1f} {r['ratio']:6.2f} {r['eval_events_per_s']:10.0f} {r['hr20']:6.3f} "
                  f"{r['scan_events_per_s']:10.0f} {r['prefix_diff']:8.1e} {peak_rss_mb():8.0f}",
                  flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
