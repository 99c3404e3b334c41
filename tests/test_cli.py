import subprocess
import sys

import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_bioner.cli import app

runner = CliRunner()


def test_convert_to_docbin_and_back(tmp_path):
    source = tmp_path / "in.tsv"
    source.write_text("IL-2\tB-Gene\ngene\tI-Gene\n\nx\tO\n", encoding="utf8")
    result = runner.invoke(app, ["convert", "iob", str(source), str(tmp_path / "out.spacy")])
    assert result.exit_code == 0, result.output
    assert "2 docs (2 sentences), 1 entities" in result.output
    docs = list(DocBin().from_disk(tmp_path / "out.spacy").get_docs(spacy.blank("en").vocab))
    assert [(e.text, e.label_) for e in docs[0].ents] == [("IL-2 gene", "Gene")]
    result = runner.invoke(app, ["convert", "iobes", str(tmp_path / "out.spacy"), str(tmp_path / "back.tsv")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "back.tsv").read_text().splitlines()[:2] == ["IL-2\tB-Gene", "gene\tE-Gene"]


def test_convert_groups_sentences_into_docs(tmp_path):
    source = tmp_path / "in.tsv"
    source.write_text("IL-2\tB-Gene\n\nx\tO\n\ny\tO\n", encoding="utf8")
    result = runner.invoke(app, ["convert", "iob", str(source), str(tmp_path / "out.spacy"), "--n-sents", "2"])
    assert result.exit_code == 0, result.output
    assert "2 docs (3 sentences), 1 entities" in result.output
    docs = list(DocBin().from_disk(tmp_path / "out.spacy").get_docs(spacy.blank("en").vocab))
    assert [[s.text for s in doc.sents] for doc in docs] == [["IL-2", "x"], ["y"]]
    result = runner.invoke(app, ["convert", "iob", str(source), str(tmp_path / "out.spacy"), "--n-sents", "0"])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_convert_reports_malformed_line_without_traceback(tmp_path):
    source = tmp_path / "bad.tsv"
    source.write_text("a\tO\nb\tI-\n", encoding="utf8")
    result = runner.invoke(app, ["convert", "iob", str(source), str(tmp_path / "out.spacy")])
    assert result.exit_code == 2
    assert f"{source}, line 2" in result.output
    assert "Traceback" not in result.output


def test_weights_table_lists_every_scheme(shared_data):
    result = runner.invoke(
        app, ["weights", str(shared_data / "ner" / "NCBI-disease" / "train.tsv"), "--scheme", "isns"]
    )
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split() == ["tag", "count", "none", "welt", "ins", "isns*", "ens"]
    counts = {row.split()[0]: int(row.split()[1]) for row in rows[:3]}
    assert counts == {"O": 124452, "B-Disease": 5134, "I-Disease": 6115}


def test_weights_rejects_unknown_scheme(shared_data):
    result = runner.invoke(app, ["weights", str(shared_data / "ner" / "NCBI-disease" / "devel.tsv"), "--scheme", "x"])
    assert result.exit_code == 2 and "valid schemes" in result.output


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "spacy_bioner", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "convert" in result.stdout and "weights" in result.stdout
