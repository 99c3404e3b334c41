import json

import pytest
from typer.testing import CliRunner

from spacy_bioner.cli import app
from spacy_bioner.corpora.pubtator import iter_pubtator

runner = CliRunner()
TEXTS = [
    "Cisplatin causes acute kidney injury .",
    "Aspirin induced Reye syndrome in children .",
    "No adverse events were seen .",
    "Haloperidol may trigger neuroleptic malignant syndrome .",
]


def _jsonl(path, rows):
    path.write_text("".join(row if isinstance(row, str) else json.dumps(row) + "\n" for row in rows), encoding="utf8")
    return path


def _annotate(tagger_model_dir, source, output, *options):
    result = runner.invoke(app, ["annotate", tagger_model_dir, str(source), str(output), *options])
    assert result.exit_code == 0, result.output
    return result.output


def _read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf8").splitlines()]


def test_jsonl_output_has_offsets_types_scores_and_sources(tagger_model_dir, tmp_path):
    source = _jsonl(tmp_path / "in.jsonl", [{"id": i, "text": t} for i, t in enumerate(TEXTS)])
    output = _annotate(tagger_model_dir, source, tmp_path / "out.jsonl")
    rows = _read(tmp_path / "out.jsonl")
    assert [row["id"] for row in rows] == [0, 1, 2, 3]
    first = rows[0]
    assert {(e["text"], e["label"]) for e in first["entities"]} == {
        ("Cisplatin", "Chemical"),
        ("acute kidney injury", "Disease"),
    }
    for entity in first["entities"]:
        assert first["text"][entity["start"] : entity["end"]] == entity["text"]
        assert entity["source"] == "bioner_tagger" and 0 < entity["score"] <= 1
    assert "annotated 4 documents" in output


def test_bad_lines_in_the_middle_are_reported_counted_and_skipped(tagger_model_dir, tmp_path):
    rows = [
        {"id": "a", "text": TEXTS[0]},
        "{not json\n",
        {"id": "b", "text": "   "},
        {"id": "c"},
        {"id": "d", "text": "x" * 500},
        {"id": "e", "text": TEXTS[1]},
    ]
    source = _jsonl(tmp_path / "in.jsonl", rows)
    with source.open("ab") as file:
        file.write(b'{"id": "f", "text": "caf\xe9"}\n')
    output = _annotate(tagger_model_dir, source, tmp_path / "out.jsonl", "--max-chars", "100")
    assert [row["id"] for row in _read(tmp_path / "out.jsonl")] == ["a", "e"]
    assert "5 bad documents skipped" in output
    for problem in [
        "invalid JSON",
        "empty document",
        "'id' and a string 'text'",
        "exceeds --max-chars 100",
        "not valid UTF-8",
    ]:
        assert problem in output


def test_resume_redoes_the_record_an_interrupted_run_left_half_written(tagger_model_dir, tmp_path):
    source = _jsonl(tmp_path / "in.jsonl", [{"id": i, "text": t} for i, t in enumerate(TEXTS)])
    out = tmp_path / "out.jsonl"
    _annotate(tagger_model_dir, source, out)
    complete = out.read_text(encoding="utf8")
    lines = complete.splitlines(keepends=True)
    out.write_text("".join(lines[:2]) + lines[2][:20], encoding="utf8")  # killed while writing the third
    output = _annotate(tagger_model_dir, source, out)
    assert "2 already in the output" in output and "annotated 2 documents" in output
    assert out.read_text(encoding="utf8") == complete


def test_plain_text_and_directory_inputs(tagger_model_dir, tmp_path):
    (tmp_path / "docs.txt").write_text("\n".join(TEXTS[:2]) + "\n", encoding="utf8")
    _annotate(tagger_model_dir, tmp_path / "docs.txt", tmp_path / "a.jsonl")
    assert [row["id"] for row in _read(tmp_path / "a.jsonl")] == ["docs:1", "docs:2"]
    folder = tmp_path / "folder"
    folder.mkdir()
    for i, text in enumerate(TEXTS[:3]):
        (folder / f"pmid{i}.txt").write_text(text, encoding="utf8")
    _annotate(tagger_model_dir, folder, tmp_path / "b.jsonl")
    rows = _read(tmp_path / "b.jsonl")
    assert [row["id"] for row in rows] == ["pmid0", "pmid1", "pmid2"]
    assert rows[0]["entities"] == _read(tmp_path / "a.jsonl")[0]["entities"]


def test_pubtator_round_trip(tagger_model_dir, tmp_path):
    source = tmp_path / "in.pubtator"
    source.write_text(f"111|t|{TEXTS[0]}\n111|a|{TEXTS[1]}\n\n222|t|{TEXTS[3]}\n222|a|\n\n", encoding="utf8")
    _annotate(tagger_model_dir, source, tmp_path / "out.pubtator", "--output-format", "pubtator")
    documents = list(iter_pubtator(tmp_path / "out.pubtator"))
    assert [d.id for d in documents] == ["111", "222"]
    assert documents[0].title == TEXTS[0] and documents[0].abstract == TEXTS[1]
    mentions = {(documents[0].text[s:e], label) for s, e, label, _ in documents[0].annotations}
    assert ("Reye syndrome", "Disease") in mentions and ("Cisplatin", "Chemical") in mentions
    _annotate(tagger_model_dir, tmp_path / "out.pubtator", tmp_path / "again.jsonl")
    assert {(e["text"], e["label"]) for e in _read(tmp_path / "again.jsonl")[0]["entities"]} == mentions


def test_brat_output(tagger_model_dir, tmp_path):
    source = _jsonl(tmp_path / "in.jsonl", [{"id": "doc1", "text": TEXTS[0]}])
    _annotate(tagger_model_dir, source, tmp_path / "brat", "--output-format", "brat")
    assert (tmp_path / "brat" / "doc1.txt").read_text() == TEXTS[0]
    lines = (tmp_path / "brat" / "doc1.ann").read_text().splitlines()
    assert "T1\tChemical 0 9\tCisplatin" in lines


@pytest.mark.forks
def test_two_processes_equal_one(tagger_model_dir, tmp_path):
    source = _jsonl(tmp_path / "in.jsonl", [{"id": i, "text": TEXTS[i % 4]} for i in range(40)])
    _annotate(tagger_model_dir, source, tmp_path / "one.jsonl", "--batch-size", "4")
    _annotate(tagger_model_dir, source, tmp_path / "two.jsonl", "--batch-size", "4", "--n-process", "2")
    assert (tmp_path / "one.jsonl").read_text() == (tmp_path / "two.jsonl").read_text()


@pytest.mark.forks
def test_dask_local_cluster_equals_single_process(tagger_model_dir, tmp_path):
    source = _jsonl(tmp_path / "in.jsonl", [{"id": i, "text": TEXTS[i % 4]} for i in range(30)] + ["bad line\n"])
    _annotate(tagger_model_dir, source, tmp_path / "one.jsonl")
    output = _annotate(tagger_model_dir, source, tmp_path / "dask.jsonl", "--dask", "local:2")
    assert "1 bad documents skipped" in output
    assert (tmp_path / "one.jsonl").read_text() == (tmp_path / "dask.jsonl").read_text()


def test_unknown_formats_and_missing_inputs_are_named(tagger_model_dir, tmp_path):
    result = runner.invoke(app, ["annotate", tagger_model_dir, str(tmp_path / "none.txt"), str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2 and "No such input" in result.output
    (tmp_path / "x.txt").write_text("a\n")
    result = runner.invoke(
        app, ["annotate", tagger_model_dir, str(tmp_path / "x.txt"), str(tmp_path / "o.x"), "--output-format", "xml"]
    )
    assert result.exit_code == 2 and "'xml'" in result.output
