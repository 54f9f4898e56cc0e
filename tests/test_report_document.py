"""paper_tables/tables.tex and its PDF: every table compiles, and the PDF's text holds captions and numbers."""

from __future__ import annotations

import json
import shutil

import pytest
from test_report_fixtures import small_config, write_groups

from sa2c import config as grid
from sa2c.errors import UserError
from sa2c.report import tables
from sa2c.report.tables import compile_pdf, render_document, render_table

NAMES = ["table1", "table2", "table3", "table4", "table5", "table6", "paper_vs_run"]
needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")


def render_all(root, config):
    runs = grid.experiment_runs(config)
    paths = {}
    for name in ("table2", "table3", "table4", "table5", "table6"):
        paths[name] = write_groups(root, config, runs[name])
    paths["paper_vs_run"] = paths["table2"] + paths["table3"]
    stats = []
    for dataset in ("rc15-synth", "retailrocket-synth"):
        path = root / f"results/data/{dataset}/stats.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"sessions": 4000, "items": 400, "clicks": 20000, "purchases": 800}))
        stats.append(path)
    paths["table1"] = stats
    out = []
    for name in NAMES:
        tex = root / f"paper_tables/{name}.tex"
        render_table(name, config, paths[name], tex, root / f"paper_tables/{name}.csv")
        out.append(tex)
    return out


@needs_pdflatex
def test_document_compiles_and_the_pdf_shows_captions_and_numbers(tmp_path):
    from pypdf import PdfReader

    config = small_config(folds=(0, 1), seeds=(0,), show_std=True)
    texs = render_all(tmp_path, config)
    doc = tmp_path / "paper_tables/tables.tex"
    render_document(texs, doc)
    source = doc.read_text()
    assert "\\input{table2.tex}" in source and "\\input{paper_vs_run.tex}" in source and "\\documentclass" in source
    assert "rc15-synth (synthetic, in the role of RC15)" in source and "Folds 0, 1; seeds 0" in source
    compile_pdf(doc, tmp_path / "paper_tables/tables.pdf")
    text = " ".join(page.extract_text() for page in PdfReader(tmp_path / "paper_tables/tables.pdf").pages)
    text = " ".join(text.split())
    for caption in ("Table 1: Dataset statistics", "Table 2: Top-k recommendation performance (paper: Table 2, RC15)",
                    "Table 3: Top-k recommendation performance (paper: Table 3, RetailRocket)",
                    "Table 4: Recommendations from the Q-learning head", "Table 5: Effect of off-policy correction",
                    "Table 6: Effect of the negative reward", "Table 7: Published cells beside this run"):
        assert caption in text
    # Numbers: a Table 2 mean (default_value of GRU-SA2C purchase NDCG@10 over folds 0, 1), published cells, Table 1.
    assert "0.3805" in text and "0.2515" in text and "0.5246" in text and "1,110,965" in text
    assert "not the paper" in text
    # No earlier build products are needed: a second compile replaces the PDF.
    compile_pdf(doc, tmp_path / "paper_tables/tables.pdf")


@needs_pdflatex
def test_latex_errors_are_reported_with_the_log_lines(tmp_path):
    bad = tmp_path / "bad.tex"
    bad.write_text("\\documentclass{article}\n\\begin{document}\n\\undefinedmacro\n\\end{document}\n")
    with pytest.raises(UserError, match=r"(?s)pdflatex failed.*Undefined control sequence.*l\.3"):
        compile_pdf(bad, tmp_path / "bad.pdf")
    assert not (tmp_path / "bad.pdf").exists()


def test_missing_pdflatex_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(tables.shutil, "which", lambda name: None)
    (tmp_path / "doc.tex").write_text("x")
    with pytest.raises(UserError, match="apt-get install texlive-latex-base texlive-latex-recommended"):
        compile_pdf(tmp_path / "doc.tex", tmp_path / "doc.pdf")


def test_document_inputs_files_outside_its_folder_by_absolute_path(tmp_path):
    table = tmp_path / "elsewhere/table9.tex"
    table.parent.mkdir()
    table.write_text("% no meta line\n\\begin{table}\\end{table}\n")
    render_document([table], tmp_path / "paper_tables/tables.tex")
    assert f"\\input{{{table.resolve().as_posix()}}}" in (tmp_path / "paper_tables/tables.tex").read_text()
