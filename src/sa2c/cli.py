"""Command-line entry points called by the workflow rules (`python -m sa2c.cli <command> ...`).

Each command is a thin wrapper: parse arguments, set up logging, call one function of the package. Imports are
lazy so that data and report jobs do not pay for importing torch.
"""

from __future__ import annotations

import argparse
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


def cmd_train(args: argparse.Namespace) -> None:
    from sa2c.train import train_group

    specs = json.loads(args.spec)
    folds = [int(f) for f in args.folds.split(",")]
    train_group(
        data_dir=Path(args.data_dir),
        run_dir=Path(args.run_dir),
        log_dir=Path(args.log_dir),
        folds=folds,
        specs={int(seed): spec for seed, spec in specs.items()},
        code_hash=args.code_hash,
        threads=args.threads,
    )


def cmd_aggregate(args: argparse.Namespace) -> None:
    from sa2c.report.aggregate import write_metrics_csv

    write_metrics_csv([Path(p) for p in args.inputs], Path(args.out))


def cmd_table(args: argparse.Namespace) -> None:
    from sa2c.report.tables import render_table

    render_table(args.name, json.loads(args.config_json), [Path(p) for p in args.inputs], Path(args.out_tex), Path(args.out_csv))


def cmd_document(args: argparse.Namespace) -> None:
    from sa2c.report.tables import render_document

    render_document([Path(p) for p in args.inputs], Path(args.out))


def cmd_pdf(args: argparse.Namespace) -> None:
    from sa2c.report.tables import compile_pdf

    compile_pdf(Path(args.tex), Path(args.out))


def cmd_figure(args: argparse.Namespace) -> None:
    from sa2c.report.figures import render_figure

    render_figure(args.name, json.loads(args.config_json), [Path(p) for p in args.inputs], Path(args.out_pdf), Path(args.out_png))


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


def main(argv: list[str] | None = None) -> int:
    _setup_logging()
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UserError as err:
        log.error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
