"""Benchmark of the data stage: generate raw files, preprocess, make the five folds, load a fold.

    python benchmarks/bench_data.py                   # paper-sized RC15- and RetailRocket-format synthetic data
    python benchmarks/bench_data.py --config default  # the datasets of config/config.yaml

Each phase runs in a fresh process, so its peak memory (ru_maxrss) is its own. Prints wall time and peak memory
per phase and the Table 1 statistics of each dataset. Target: paper size under 2 minutes and 4 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PAPER = {
    "rc15-paper": {
        "format": "rc15",
        "synthetic": {"sessions": 200000, "items": 26702, "seed": 1},
        "sample_sessions": 200000,
    },
    # Published RetailRocket: about 195.5k sessions and 70,852 items after filtering.
    "retailrocket-paper": {"format": "retailrocket", "synthetic": {"sessions": 195500, "items": 70852, "seed": 2}},
}


def _phase(name: str, spec: dict, work: str, queue) -> None:
    import logging

    from sa2c.data import preprocess, splits, synthetic, transitions

    logging.basicConfig(level=logging.WARNING, format="  (%(levelname)s %(name)s: %(message)s)")

    work_dir = Path(work)
    start = time.perf_counter()
    if name == "generate":
        synthetic.generate(spec["format"], work_dir / "raw", spec["synthetic"])
    elif name == "preprocess":
        preprocess.preprocess(spec, work_dir / "raw", work_dir / "data")
    elif name == "folds":
        splits.make_folds(work_dir / "data" / "events.npz", work_dir / "data", seed=0)
    elif name == "load_fold":
        transitions.load_fold(work_dir / "data" / "fold0")
    seconds = time.perf_counter() - start
    queue.put((seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def run_phase(name: str, spec: dict, work: Path) -> tuple[float, float]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_phase, args=(name, spec, str(work), queue))
    process.start()
    result = queue.get()
    process.join()
    if process.exitcode:
        sys.exit(f"phase {name} failed")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=["paper", "default"], default="paper")
    args = parser.parse_args()
    if args.config == "default":
        import yaml

        datasets = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["datasets"]
    else:
        datasets = PAPER

    for dataset, spec in datasets.items():
        with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
            work = Path(tmp)
            print(f"\n== {dataset}: {json.dumps(spec.get('synthetic'))}")
            total = 0.0
            for phase in ("generate", "preprocess", "folds", "load_fold"):
                seconds, peak_mb = run_phase(phase, spec, work)
                total += seconds if phase in ("preprocess", "folds") else 0.0
                print(f"{phase:<11} {seconds:7.2f} s   peak memory {peak_mb:7.0f} MB")
            raw_mb = sum(p.stat().st_size for p in (work / "raw").iterdir()) / 2**20
            folds_mb = sum(p.stat().st_size for p in (work / "data").glob("fold*/*.npz")) / 2**20
            print(f"data stage (preprocess + folds) {total:.2f} s; raw files {raw_mb:.0f} MB, folds {folds_mb:.0f} MB")
            stats = json.loads((work / "data" / "stats.json").read_text())
            print("stats.json:", json.dumps(stats, indent=1))


if __name__ == "__main__":
    main()
