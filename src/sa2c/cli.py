"""Command-line entry points called by the workflow rules (`python -m sa2c.cli <command> ...`).

Each command is a thin wrapper: parse arguments, set up logging, call one function of the package. Imports are
lazy so that data and report jobs do not pay for importing torch.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import sys
from pathlib import Path

from sa2c.errors import UserError

log = logging.getLogger("sa2c")


def _setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", stream=sys.stderr
    )


def cmd_raw(args: argparse.Namespace) -> None:
    spec = json.loads(args.spec)
    out_dir = Path(args.out_dir)
    if spec.get("synthetic"):
        from sa2c.data.synthetic import generate

        generate(spec["format"], out_dir, spec["synthetic"])
    else:
        from sa2c.data.download import fetch_raw

        fetch_raw(args.dataset, spec["format"], out_dir)


def cmd_preprocess(args: argparse.Namespace) -> None:
    from sa2c.data.preprocess import preprocess

    preprocess(json.loads(args.spec), Path(args.raw_dir), Path(args.out_dir))


def cmd_folds(args: argparse.Namespace) -> None:
    from sa2c.data.splits import make_folds

    make_folds(Path(args.events), Path(args.out_dir), seed=args.seed)


def _train_specs(text: str) -> dict[int, dict]:
    """--spec of `train`: JSON {seed: TrainConfig fields}, each checked here so a bad value is one clear message."""
    from sa2c.config import TrainConfig

    try:
        specs = json.loads(text)
    except ValueError as err:
        raise UserError(f"--spec is not valid JSON ({err})") from None
    if not isinstance(specs, dict) or not specs:
        raise UserError("--spec must be a JSON object {seed: training config}")
    checked = {}
    for seed, spec in specs.items():
        try:
            checked[int(seed)] = spec
            TrainConfig.from_dict(spec)
        except (TypeError, ValueError) as err:
            raise UserError(f"--spec, seed {seed}: {err}") from None
    return checked


def cmd_train(args: argparse.Namespace) -> None:
    specs = _train_specs(args.spec)
    try:
        folds = [int(f) for f in args.folds.split(",")]
    except ValueError:
        raise UserError(f"--folds {args.folds!r}: expected comma-separated fold numbers, like 0,1,2") from None
    from sa2c.train import train_group

    train_group(
        data_dir=Path(args.data_dir),
        run_dir=Path(args.run_dir),
        log_dir=Path(args.log_dir),
        folds=folds,
        specs=specs,
        code_hash=args.code_hash,
        threads=args.threads,
    )


def cmd_aggregate(args: argparse.Namespace) -> None:
    from sa2c.report.aggregate import write_metrics_csv

    write_metrics_csv([Path(p) for p in args.inputs], Path(args.out))


def check_runs_match_config(config: dict, inputs: list[str]) -> None:
    """Refuse runs whose recorded identity is not what this config and code would produce.

    Snakemake reruns a training job when its config or code hash changes, but only when it has a record of the earlier
    run (.snakemake/metadata); results copied from another directory, or a removed .snakemake/, would otherwise be
    reported as if they came from the current config and code. (Changed data is caught by file times.)
    """
    from sa2c.codehash import code_hash
    from sa2c.config import NON_IDENTITY_KEYS, config_hash, resolve_train_config

    current_code = code_hash("train")
    stale = []
    for name in dict.fromkeys(inputs):  # a run may serve several rows
        path = Path(name)
        if path.name != "metrics.json":
            continue
        try:
            data = json.loads(path.read_text())
            run, identity = data["run"], data["identity"]
            cfg = resolve_train_config(config, run["dataset"], run["encoder"], run["method"], int(run["seed"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # missing or malformed files are reported by the reader, with their own message
        problems = []
        if identity.get("config_hash") != config_hash(cfg):
            recorded = data.get("config") if isinstance(data.get("config"), dict) else {}
            wanted = cfg.to_dict()
            keys = [k for k in wanted if k not in NON_IDENTITY_KEYS and recorded.get(k, "<missing>") != wanted[k]]
            detail = ", ".join(f"{k}={recorded.get(k, '<missing>')!r} (config: {wanted[k]!r})" for k in keys[:4])
            problems.append(f"made with another config ({detail or 'config hash differs'})")
        if identity.get("code_hash") != current_code:
            problems.append(f"made by other training code (code hash {identity.get('code_hash')!r}, now {current_code!r})")
        if problems:
            stale.append(f"{path}: " + " and ".join(problems))
    if stale:
        more = f" (and {len(stale) - 3} more)" if len(stale) > 3 else ""
        raise UserError(
            f"{len(stale)} run result(s) do not belong to this config and code: " + "; ".join(stale[:3]) + more
            + ". Snakemake has no record that they are out of date (results copied from elsewhere, or .snakemake/ "
            "removed). Retrain them: snakemake --forcerun train <target> (finished runs whose config, code and data "
            "all match are reused, the others retrain), or delete those metrics.json files."
        )


def cmd_table(args: argparse.Namespace) -> None:
    from sa2c.report.tables import render_table

    config = json.loads(args.config_json)
    check_runs_match_config(config, args.inputs)
    render_table(args.name, config, [Path(p) for p in args.inputs], Path(args.out_tex), Path(args.out_csv))


def cmd_document(args: argparse.Namespace) -> None:
    from sa2c.report.tables import render_document

    render_document([Path(p) for p in args.inputs], Path(args.out))


def cmd_pdf(args: argparse.Namespace) -> None:
    from sa2c.report.tables import compile_pdf

    compile_pdf(Path(args.tex), Path(args.out))


def cmd_figure(args: argparse.Namespace) -> None:
    from sa2c.report.figures import render_figure

    config = json.loads(args.config_json)
    check_runs_match_config(config, args.inputs)
    render_figure(args.name, config, [Path(p) for p in args.inputs], Path(args.out_pdf), Path(args.out_png))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sa2c", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("raw", help="download or generate a dataset's raw files")
    p.add_argument("--dataset", required=True)
    p.add_argument("--spec", required=True, help="JSON: {format, synthetic}")
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_raw)

    p = sub.add_parser("preprocess", help="filter raw files into events.npz and stats.json")
    p.add_argument("--dataset", required=True)
    p.add_argument("--spec", required=True, help="JSON: the dataset's config")
    p.add_argument("--raw-dir", required=True)
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_preprocess)

    p = sub.add_parser("folds", help="five 8:1:1 folds of transitions")
    p.add_argument("--events", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_folds)

    p = sub.add_parser("train", help="train every fold and seed of one (dataset, encoder, method) group")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--log-dir", required=True)
    p.add_argument("--folds", required=True, help="comma-separated fold numbers")
    p.add_argument("--spec", required=True, help="JSON: seed -> resolved TrainConfig")
    p.add_argument("--code-hash", default="")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("aggregate", help="tidy results/metrics.csv from metrics.json files")
    p.add_argument("--out", required=True)
    p.add_argument("inputs", nargs="+")
    p.set_defaults(func=cmd_aggregate)

    p = sub.add_parser("table", help="render one paper table as LaTeX and CSV")
    p.add_argument("--name", required=True)
    p.add_argument("--config-json", required=True)
    p.add_argument("--out-tex", required=True)
    p.add_argument("--out-csv", required=True)
    p.add_argument("inputs", nargs="*")
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("document", help="LaTeX document including every table")
    p.add_argument("--out", required=True)
    p.add_argument("inputs", nargs="+")
    p.set_defaults(func=cmd_document)

    p = sub.add_parser("pdf", help="compile the tables document with pdflatex")
    p.add_argument("--tex", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_pdf)

    p = sub.add_parser("figure", help="render one paper figure as PDF and PNG")
    p.add_argument("--name", required=True)
    p.add_argument("--config-json", required=True)
    p.add_argument("--out-pdf", required=True)
    p.add_argument("--out-png", required=True)
    p.add_argument("inputs", nargs="+")
    p.set_defaults(func=cmd_figure)
    return parser


# File-system failures a user fixes on the machine, not in the code: say which path and what to do, without a traceback.
_WRITE_ERRORS = {
    errno.ENOSPC: "The disk is full: free space on it, or run the workflow on a larger disk "
    "(snakemake --directory DIR); finished work is kept and an interrupted training run resumes from its checkpoint",
    errno.EDQUOT: "The disk quota is exceeded: free space, or run the workflow elsewhere (snakemake --directory DIR)",
    errno.EROFS: "The file system is read-only: run the workflow in a writable directory (snakemake --directory DIR)",
    errno.EACCES: "No permission to read or write there: fix the folder's permissions, or run the workflow in a "
    "directory you can write (snakemake --directory DIR)",
    errno.EPERM: "Not permitted there: fix the folder's permissions, or run the workflow in a "
    "directory you can write (snakemake --directory DIR)",
}


def main(argv: list[str] | None = None) -> int:
    _setup_logging()
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UserError as err:
        log.error("%s", err)
        return 2
    except OSError as err:
        if err.errno not in _WRITE_ERRORS:
            raise
        where = err.filename if err.filename is not None else "(path unknown)"
        log.error("%s: %s. %s.", where, err.strerror, _WRITE_ERRORS[err.errno])
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
