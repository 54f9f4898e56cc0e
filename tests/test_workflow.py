"""The whole DAG on the tiny test config: every table and figure, real content, idempotence, targeted reruns."""

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(workdir: Path, *args: str, config: Path | None = None) -> subprocess.CompletedProcess:
    cmd = SNAKEMAKE + list(args) + ["--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--configfile", str(config or ROOT / "config" / "test.yaml")]
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def planned_rules(result: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"^rule (\w+):", result.stdout + result.stderr, flags=re.M))


@pytest.fixture(scope="module")
def workflow_dir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("workflow")
    result = snakemake(workdir, "all", "--cores", "2")
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


@pytest.mark.slow
def test_every_output_exists_and_second_run_does_nothing(workflow_dir):
    for name in ["table1", "table2", "table3", "table4", "table5", "table6", "paper_vs_run"]:
        assert (workflow_dir / "paper_tables" / f"{name}.tex").stat().st_size > 0
        assert (workflow_dir / "paper_tables" / f"{name}.csv").stat().st_size > 0
    for name in ["figure2", "figure3", "figure4"]:
        assert (workflow_dir / "figures" / f"{name}.pdf").read_bytes()[:4] == b"%PDF"
        assert (workflow_dir / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    runs = sorted((workflow_dir / "results" / "runs").rglob("metrics.json"))
    # 2 datasets x 2 encoders x 5 methods + DQN x 2 + off-policy x 2 + r_neg = -1 + |N| = 1 x 2 datasets (r_neg = 0
    # and |N| = 10 are SNQN's own runs); 2 folds
    assert len(runs) == (20 + 2 + 2 + 1 + 2) * 2
    # logs mirror the results tree
    assert (workflow_dir / "logs" / "runs" / "rc15-tiny" / "gru" / "sa2c" / "fold0" / "seed0" / "train.log").exists()
    again = snakemake(workflow_dir, "all", "--cores", "2", "-n")
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow
def test_table_numbers_equal_the_csv(workflow_dir):
    rows = list(csv.DictReader(open(workflow_dir / "paper_tables" / "table2.csv")))
    tex = (workflow_dir / "paper_tables" / "table2.tex").read_text()
    sasrec_sa2c = [r for r in rows if r["encoder"] == "sasrec" and r["method"] == "sa2c"]
    assert len(sasrec_sa2c) == 12  # purchase/click x HR/NDCG x @5/10/20
    tex_numbers = set(re.findall(r"\d\.\d{4}", tex))
    for row in sasrec_sa2c:
        assert f"{float(row['mean']):.4f}" in tex_numbers
        assert int(row["n"]) == 2  # two folds x one seed
    # the metrics.csv cell agrees with the table's mean
    tidy = list(csv.DictReader(open(workflow_dir / "results" / "metrics.csv")))
    cell = [float(r["value"]) for r in tidy if r["encoder"] == "sasrec" and r["method"] == "sa2c" and r["head"] == "supervised"
            and r["split"] == "test" and r["event"] == "click" and r["metric"] == "ndcg@10" and r["dataset"] == "rc15-tiny"]
    table_cell = [float(r["mean"]) for r in sasrec_sa2c if r["event"] == "click" and r["metric"] == "ndcg@10"]
    assert len(cell) == 2 and table_cell[0] == pytest.approx(sum(cell) / 2)


@pytest.mark.slow
def test_report_only_change_reruns_only_rendering(workflow_dir, tmp_path):
    config = (ROOT / "config" / "test.yaml").read_text().replace("show_std: false", "show_std: true")
    changed = tmp_path / "changed.yaml"
    changed.write_text(config)
    plan = snakemake(workflow_dir, "all", "--cores", "2", "-n", config=changed)
    assert plan.returncode == 0, plan.stderr[-3000:]
    rules = planned_rules(plan)
    assert "table" in rules and "train" not in rules and "preprocess" not in rules


@pytest.mark.slow
def test_one_table_needs_only_its_runs(workflow_dir, tmp_path):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    plan = snakemake(fresh, "paper_tables/table5.tex", "--cores", "2", "-n")
    assert plan.returncode == 0, plan.stderr[-3000:]
    trained = set(re.findall(r"results/runs/([\w-]+/\w+/[\w.-]+)/fold0", plan.stdout))
    assert trained == {"rc15-tiny/gru/sa2c", "rc15-tiny/gru/sa2c-offpolicy",
                       "retailrocket-tiny/gru/sa2c", "retailrocket-tiny/gru/sa2c-offpolicy"}


@pytest.mark.slow
def test_pdf_compiles_and_shows_the_tables(workflow_dir):
    if shutil.which("pdflatex") is None:
        pytest.fail("pdflatex is not installed: .ci/run installs texlive-latex-base and texlive-latex-recommended")
    result = snakemake(workflow_dir, "paper_tables/tables.pdf", "--cores", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    from pypdf import PdfReader

    text = " ".join(page.extract_text() for page in PdfReader(workflow_dir / "paper_tables" / "tables.pdf").pages)
    rows = list(csv.DictReader(open(workflow_dir / "paper_tables" / "table5.csv")))
    assert "SA2C" in text and "rc15-tiny" in text
    assert f"{float(rows[0]['mean']):.4f}" in text
