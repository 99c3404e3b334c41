"""Hostile input to the command line (issue #20): files that are not ours, odd records,
tampered pipelines and odd options. Each ends in correct output or one clear error
line (exit code 2), and the user's files stay as they were."""

import json
import os
import shutil
from typing import List, Tuple

import pytest
import spacy
from spacy.tokens import Span
from thinc.api import CupyOps
from typer.testing import CliRunner

from spacy_bioner.annotate import STATE_SUFFIX, InputRecord, Writer
from spacy_bioner.cli import app
from spacy_bioner.corpora import CorpusFormatError, read_brat, read_iob, read_spert
from spacy_bioner.corpora.pubtator import iter_pubtator
from spacy_bioner.relations import set_relations
from spacy_bioner.visualize import render_page

runner = CliRunner()
TEXTS = [
    "Cisplatin causes acute kidney injury .",
    "Aspirin induced Reye syndrome in children .",
    "No adverse events were seen .",
]


def bioner(*args):
    return runner.invoke(app, [str(arg) for arg in args])


def ok(result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def refused(result, *words) -> str:
    """The command ended with one error line holding `words`, exit code 2."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    assert len(result.output.strip().splitlines()) == 1, result.output
    for word in words:
        assert word in result.output, result.output
    return result.output


def jsonl(path, rows):
    path.write_text("".join(row if isinstance(row, str) else json.dumps(row) + "\n" for row in rows), encoding="utf8")
    return path


def ids(path):
    return [json.loads(line)["id"] for line in path.read_text(encoding="utf8").splitlines()]


@pytest.fixture
def source(tmp_path):
    return jsonl(tmp_path / "in.jsonl", [{"id": i, "text": text} for i, text in enumerate(TEXTS)])


# Data loss -------------------------------------------------------------------------


@pytest.mark.parametrize("output_format", ["jsonl", "pubtator"])
def test_annotate_never_changes_a_file_it_did_not_create(tagger_model_dir, tmp_path, source, output_format):
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"my notes\nno trailing newline")
    refused(
        bioner("annotate", tagger_model_dir, source, notes, "--output-format", output_format),
        "not written by bioner annotate",
    )
    assert notes.read_bytes() == b"my notes\nno trailing newline"
    assert not (tmp_path / f"notes.txt{STATE_SUFFIX}").exists()


def test_a_brat_directory_it_did_not_create_is_left_alone(tagger_model_dir, tmp_path, source):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "0.txt").write_text("my own file", encoding="utf8")
    refused(
        bioner("annotate", tagger_model_dir, source, folder, "--output-format", "brat"),
        "not written by bioner annotate",
    )
    assert [p.name for p in folder.iterdir()] == ["0.txt"] and (folder / "0.txt").read_text() == "my own file"


def test_a_model_that_does_not_load_touches_no_output(tmp_path, source):
    keep = tmp_path / "keep.txt"
    keep.write_bytes(b"line 1\nline 2")
    refused(bioner("annotate", tmp_path / "no_such_model", source, keep), "Cannot load pipeline")
    assert keep.read_bytes() == b"line 1\nline 2"
    refused(
        bioner("annotate", tmp_path / "no_such_model", source, tmp_path / "new" / "dir" / "out.jsonl"), "no_such_model"
    )
    assert not (tmp_path / "new").exists()


def test_input_equal_to_output_is_refused(tagger_model_dir, tmp_path, source):
    before = source.read_bytes()
    refused(bioner("annotate", tagger_model_dir, source, source), "INPUT and OUTPUT are the same")
    assert source.read_bytes() == before
    out = tmp_path / "out.jsonl"
    ok(bioner("annotate", tagger_model_dir, source, out))
    written = out.read_bytes()
    refused(bioner("annotate", tagger_model_dir, out, out), "INPUT and OUTPUT are the same")
    assert out.read_bytes() == written


def test_resume_is_by_position_and_keeps_duplicate_ids(tagger_model_dir, tmp_path):
    source = jsonl(tmp_path / "in.jsonl", [{"id": doc_id, "text": TEXTS[i % 3]} for i, doc_id in enumerate("abaca")])
    out = tmp_path / "out.jsonl"
    assert "2 duplicate ids" in ok(bioner("annotate", tagger_model_dir, source, out))
    complete = out.read_text(encoding="utf8")
    assert ids(out) == list("abaca")
    lines = complete.splitlines(keepends=True)
    out.write_text("".join(lines[:3]) + lines[3][:10], encoding="utf8")  # killed while writing the fourth
    output = ok(bioner("annotate", tagger_model_dir, source, out))
    assert "3 already in the output" in output and "annotated 2 documents" in output
    assert out.read_text(encoding="utf8") == complete


def test_a_changed_input_does_not_resume_stale_output(tagger_model_dir, tmp_path, source):
    out = tmp_path / "out.jsonl"
    ok(bioner("annotate", tagger_model_dir, source, out))
    written = out.read_bytes()
    jsonl(source, [{"id": i, "text": text.upper()} for i, text in enumerate(TEXTS)])
    refused(bioner("annotate", tagger_model_dir, source, out), "another INPUT", "input_sha256")
    refused(bioner("annotate", tagger_model_dir, source, out, "--output-format", "pubtator"), "written as 'jsonl'")
    assert out.read_bytes() == written


def test_an_edited_output_is_not_resumed(tagger_model_dir, tmp_path, source):
    out = tmp_path / "out.jsonl"
    ok(bioner("annotate", tagger_model_dir, source, out))
    lines = out.read_text(encoding="utf8").splitlines(keepends=True)
    out.write_text(lines[1], encoding="utf8")
    refused(bioner("annotate", tagger_model_dir, source, out), "holds 1 where INPUT has 0")
    assert out.read_text(encoding="utf8") == lines[1]


def test_brat_never_overwrites_a_repeated_id(tagger_model_dir, tmp_path):
    source = jsonl(
        tmp_path / "in.jsonl",
        [{"id": "a", "text": TEXTS[0]}, {"id": "a", "text": TEXTS[1]}, {"id": "b", "text": TEXTS[2]}],
    )
    output = ok(bioner("annotate", tagger_model_dir, source, tmp_path / "brat", "--output-format", "brat"))
    assert "annotated 2 documents" in output and "1 bad documents skipped" in output and "repeats" in output
    assert (tmp_path / "brat" / "a.txt").read_text() == TEXTS[0]


def test_ids_are_kept_as_written_and_other_ids_are_bad_records(tagger_model_dir, tmp_path):
    rows = [
        {"id": 7, "text": TEXTS[0]},
        {"id": "7", "text": TEXTS[1]},
        {"id": None, "text": TEXTS[2]},
        {"id": {"x": 1}, "text": TEXTS[2]},
        {"id": 1.5, "text": TEXTS[2]},
        {"id": True, "text": TEXTS[2]},
    ]
    out = tmp_path / "out.jsonl"
    output = ok(bioner("annotate", tagger_model_dir, jsonl(tmp_path / "in.jsonl", rows), out))
    assert ids(out) == [7, "7"] and "4 bad documents skipped" in output
    assert "'id' must be a string or an integer, not NoneType" in output


def test_a_second_run_on_the_same_output_is_refused(tagger_model_dir, tmp_path, source):
    out = tmp_path / "out.jsonl"
    ok(bioner("annotate", tagger_model_dir, source, out))
    written = out.read_bytes()
    state = json.loads((tmp_path / f"out.jsonl{STATE_SUFFIX}").read_text())
    with Writer(out, "jsonl", state["run"]):  # a run in progress holds the lock
        refused(bioner("annotate", tagger_model_dir, source, out), "Another run is writing")
    assert out.read_bytes() == written
    assert "3 already in the output" in ok(bioner("annotate", tagger_model_dir, source, out))


@pytest.mark.parametrize("tag_format", ["iobes", "spert"])
def test_convert_refuses_to_overwrite_its_input(tmp_path, tag_format):
    tsv = tmp_path / "in.tsv"
    tsv.write_text("IL-2\tB-Gene\n", encoding="utf8")
    ok(bioner("convert", "iob", tsv, tmp_path / "x.spacy"))
    before = (tmp_path / "x.spacy").read_bytes()
    refused(bioner("convert", tag_format, tmp_path / "x.spacy", tmp_path / "x.spacy"), "same file")
    assert (tmp_path / "x.spacy").read_bytes() == before


# One bad record never stops the run --------------------------------------------------


def test_jsonl_lines_that_break_the_parser_are_bad_records(tagger_model_dir, tmp_path):
    rows = [
        {"id": "a", "text": TEXTS[0]},
        "[" * 100_000 + "\n",
        '{"id": 1' + "0" * 5000 + ', "text": "x"}\n',
        {"id": "b", "text": TEXTS[1]},
    ]
    output = ok(bioner("annotate", tagger_model_dir, jsonl(tmp_path / "in.jsonl", rows), tmp_path / "out.jsonl"))
    assert ids(tmp_path / "out.jsonl") == ["a", "b"] and "2 bad documents skipped" in output
    assert "nested too deeply" in output and "line 3: invalid JSON" in output


def test_bad_pubtator_documents_are_skipped_and_resume_passes_them(tagger_model_dir, tmp_path):
    blocks = [
        b"1|t|Cisplatin causes acute kidney injury .\n1|a|\n",
        b"2|t|Aspirin .\n2|a|\n2\tx\t3\tAsp\tChemical\n",  # bad offset
        b"3|t|Aspirin .\n3|a|\n3\t5\t2\tAsp\tChemical\n",  # reversed offsets
        b"4|t|Aspirin .\n4|a|\n999\t0\t3\tAsp\tChemical\n",  # a foreign PMID
        b"5|t|Aspirin \xff.\n5|a|\n",  # not UTF-8
        b"6|x|t|Aspirin .\n6|x|a|\n",  # '|' in the id
        b"7|t|No adverse events were seen .\n7|a|\n",
    ]
    source = tmp_path / "in.pubtator"
    source.write_bytes(b"\n".join(blocks) + b"\n")
    out = tmp_path / "out.pubtator"
    output = ok(bioner("annotate", tagger_model_dir, source, out, "--output-format", "pubtator"))
    assert [d.id for d in iter_pubtator(out)] == ["1", "7"] and "5 bad documents skipped" in output
    for problem in [
        "line 6: offsets must be integers",
        "line 10: offsets 5-2",
        "line 14: expected",
        "line 16: not valid UTF-8",
        "line 19: expected",
    ]:
        assert problem in output
    output = ok(bioner("annotate", tagger_model_dir, source, out, "--output-format", "pubtator"))
    assert "annotated 0 documents" in output and "2 already in the output" in output


def test_directory_input_reads_regular_files_and_follows_links_only_when_asked(tagger_model_dir, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text(TEXTS[0], encoding="utf8")
    (folder / "sub.txt").mkdir()
    os.mkfifo(folder / "fifo.txt")
    secret = tmp_path / "secret"
    secret.write_text("secret text outside the input", encoding="utf8")
    (folder / "link.txt").symlink_to(secret)
    output = ok(bioner("annotate", tagger_model_dir, folder, tmp_path / "out.jsonl"))
    assert ids(tmp_path / "out.jsonl") == ["a"] and "3 bad documents skipped" in output
    assert "skipped sub: not a regular file" in output and "skipped fifo: not a regular file" in output
    assert "--follow-symlinks" in output and "secret" not in (tmp_path / "out.jsonl").read_text()
    ok(bioner("annotate", tagger_model_dir, folder, tmp_path / "linked.jsonl", "--follow-symlinks"))
    assert ids(tmp_path / "linked.jsonl") == ["a", "link"]


@pytest.mark.parametrize("data,first", [(b"\xef\xbb\xbfIL-2\tB-Gene\n", "IL-2")])
def test_a_byte_order_mark_is_not_part_of_the_first_token_or_pmid(tmp_path, data, first):
    (tmp_path / "in.tsv").write_bytes(data)
    docs, _ = read_iob(tmp_path / "in.tsv", spacy.blank("en").vocab)
    assert docs[0][0].text == first
    (tmp_path / "in.pubtator").write_bytes(b"\xef\xbb\xbf111|t|Aspirin .\n111|a|\n\n")
    assert [d.id for d in iter_pubtator(tmp_path / "in.pubtator")] == ["111"]


# Output formats stay parseable -------------------------------------------------------


ODD_LABELS = ["Chem\tical\n1\t0\t3\tfake", "two words", "<img src=x onerror=alert(1)>"]


@pytest.mark.parametrize("output_format", ["pubtator", "brat"])
def test_labels_cannot_break_output_lines(tmp_path, output_format):
    out = tmp_path / ("brat" if output_format == "brat" else "out.pubtator")
    text = "Aspirin causes rash ."
    entities = [
        {"start": 0, "end": 7, "label": label, "text": "Aspirin", "score": 1.0, "source": "x"} for label in ODD_LABELS
    ]
    relations = [{"head": 0, "tail": 1, "label": "causes\tit now", "score": 1.0}]
    with Writer(out, output_format) as writer:
        writer.write(InputRecord("d1", text), {"entities": entities, "relations": relations})
    with Writer(out, output_format) as writer:
        assert list(writer.written_ids()) == ["d1"]
    if output_format == "pubtator":
        (document,) = iter_pubtator(out)
        assert sorted(label for _, _, label, _ in document.annotations) == sorted(
            label.replace("\t", " ").replace("\n", " ") for label in ODD_LABELS
        )
    else:
        doc = read_brat(out / "d1.txt", spacy.blank("en"), spans_key="gold")
        assert sorted(span.label_ for span in doc.spans["gold"]) == sorted(
            ["Chem_ical_1_0_3_fake", "two_words", "<img_src=x_onerror=alert(1)>"]
        )
        assert [relation.label for relation in doc._.relations] == ["causes_it_now"]


def test_visualize_escapes_entity_span_and_relation_labels():
    doc = spacy.blank("en")("Aspirin causes rash .")
    label = ODD_LABELS[2]
    doc.ents = [Span(doc, 0, 1, label=label), Span(doc, 2, 3, label="Effect")]
    doc.spans["group"] = [Span(doc, 0, 1, label=label)]
    set_relations(doc, [(doc.ents[0], doc.ents[1], "<script>alert(2)</script>")])
    page = render_page([doc])
    assert "<img" not in page and "<script>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;script&gt;" in page


# Options and resources ---------------------------------------------------------------


OPTION_ERRORS = [
    ("annotate", "--batch-size", "0"),
    ("annotate", "--n-process", "0"),
    ("annotate", "--n-process", "-1"),
    ("annotate", "--max-chars", "0"),
    ("annotate", "--dask", "local:0"),
    ("annotate", "--dask", "local:-2"),
    ("annotate", "--dask", "local:x"),
    ("evaluate", "--batch-size", "0"),
    ("weights", "--beta", "1"),
    ("weights", "--strength", "nan"),
    ("weights", "--strength", "inf"),
    ("weights", "--strength", "-1"),
    ("visualize", "--limit", "-1"),
    ("meta-data", "--heldout", "2"),
    ("meta-data", "--heldout", "0"),
    ("convert", "--lang", "zz"),
]


@pytest.mark.parametrize("command,option,value", OPTION_ERRORS, ids=[f"{c}{o}={v}" for c, o, v in OPTION_ERRORS])
def test_bad_option_values_are_usage_errors(tagger_model_dir, tmp_path, source, command, option, value):
    arguments = {
        "annotate": [tagger_model_dir, source, tmp_path / "out.jsonl"],
        "evaluate": [tagger_model_dir, tmp_path / "gold.tsv"],
        "weights": [tmp_path / "gold.tsv"],
        "visualize": [tagger_model_dir, "Aspirin ."],
        "meta-data": [
            tmp_path,
            tmp_path / "dev.spacy",
            tmp_path / "train.spacy",
            tmp_path / "filter",
            "--sources",
            "a",
        ],
        "convert": ["iob", tmp_path / "gold.tsv", tmp_path / "out.spacy"],
    }[command]
    result = bioner(command, *arguments, option, value)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert option in result.output, result.output
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "out.spacy").exists()


def test_a_strength_that_underflows_every_weight_is_one_error_line(tmp_path):
    gold = tmp_path / "gold.tsv"
    gold.write_text("a\tO\nb\tO\nc\tB-X\nd\tB-X\n", encoding="utf8")
    refused(bioner("weights", gold, "--strength", "1e308"), "underflows", str(gold))


def test_more_processes_than_cores_are_capped(tagger_model_dir, tmp_path, source, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    output = ok(bioner("annotate", tagger_model_dir, source, tmp_path / "out.jsonl", "--n-process", "16"))
    assert "using 1" in output and "annotated 3 documents" in output


# Tracebacks become one line ----------------------------------------------------------


def _damage_weights(path):
    weights = path / "bioner_tagger" / "model"
    weights.write_bytes(weights.read_bytes()[:100])


def _damage_config(path):
    (path / "config.cfg").write_text("[nlp]\nlang = \n[components\n", encoding="utf8")


def _damage_meta(path):
    (path / "meta.json").write_text("{not json", encoding="utf8")


def _damage_labels(path):
    (path / "bioner_tagger" / "cfg").write_text('{"labels": 5}', encoding="utf8")


@pytest.mark.parametrize("damage", [_damage_weights, _damage_config, _damage_meta, _damage_labels])
def test_a_damaged_pipeline_is_one_error_line(tagger_model_dir, tmp_path, source, damage):
    pipeline = shutil.copytree(tagger_model_dir, tmp_path / "model")
    damage(pipeline)
    refused(bioner("annotate", pipeline, source, tmp_path / "out.jsonl"), "Cannot load pipeline", str(pipeline))
    assert not (tmp_path / "out.jsonl").exists()


def test_a_truncated_safetensors_file_is_one_error_line(pipelines, tmp_path, source):
    pipeline = shutil.copytree(pipelines.path("llm"), tmp_path / "llm")
    head = pipeline / "bioner_llm_tagger" / "model" / "head.safetensors"
    head.write_bytes(head.read_bytes()[:50])
    refused(bioner("annotate", pipeline, source, tmp_path / "out.jsonl"), "Cannot load pipeline")


def test_a_package_that_is_not_a_pipeline_is_one_error_line(tmp_path, source):
    refused(bioner("annotate", "numpy", source, tmp_path / "out.jsonl"), "Cannot load pipeline 'numpy'")


def test_unreadable_and_unwritable_files_are_one_error_line(tagger_model_dir, tmp_path):
    gold = tmp_path / "gold.tsv"
    gold.write_text("Aspirin\tB-Chemical\n.\tO\n", encoding="utf8")
    blocker = tmp_path / "a_file"
    blocker.write_text("", encoding="utf8")
    refused(bioner("evaluate", tagger_model_dir, gold, "--output", blocker / "scores.json"), "a_file")
    refused(bioner("visualize", tagger_model_dir, "Aspirin .", "--output", blocker / "page.html"), "a_file")
    garbage = tmp_path / "garbage.spacy"
    garbage.write_bytes(b"\x00garbage" * 10)
    refused(bioner("convert", "iob", garbage, tmp_path / "out.tsv"), "not a spaCy DocBin", str(garbage))
    refused(bioner("evaluate", tagger_model_dir, garbage), "not a spaCy DocBin")


@pytest.mark.parametrize("types", ["not json", "[1, 2]", '{"relations": [1]}', '{"relations": {"ADE": 5}}'])
def test_a_malformed_types_file_is_one_error_line(tmp_path, types):
    spert = tmp_path / "in.json"
    spert.write_text(json.dumps([{"tokens": ["a"], "entities": [], "relations": []}]), encoding="utf8")
    (tmp_path / "types.json").write_text(types, encoding="utf8")
    refused(bioner("convert", "spert", spert, tmp_path / "out.spacy", "--types", tmp_path / "types.json"), "--types")


# Silent wrong results become errors --------------------------------------------------


def test_evaluate_names_a_missing_span_group(tagger_model_dir, tmp_path):
    gold = tmp_path / "gold.tsv"
    gold.write_text("Aspirin\tB-Chemical\n.\tO\n", encoding="utf8")
    refused(bioner("evaluate", tagger_model_dir, gold, "--spans-key", "nokey"), "'nokey'", "bioner_tagger")


def test_visualize_names_a_missing_file(tagger_model_dir, tmp_path):
    refused(
        bioner("visualize", tagger_model_dir, tmp_path / "missing.spacy", "--output", tmp_path / "page.html"),
        "No such file",
    )
    assert not (tmp_path / "page.html").exists()


def test_input_format_dir_on_a_file_and_a_fifo_as_input_are_errors(tagger_model_dir, tmp_path, source):
    refused(
        bioner("annotate", tagger_model_dir, source, tmp_path / "out.jsonl", "--input-format", "dir"),
        "needs a directory",
    )
    os.mkfifo(tmp_path / "fifo.txt")
    refused(bioner("annotate", tagger_model_dir, tmp_path / "fifo.txt", tmp_path / "out.jsonl"), "needs a regular file")
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize(
    "entity",
    [
        {"type": 5, "start": 0, "end": 1},
        {"type": None, "start": 0, "end": 1},
        {"type": "", "start": 0, "end": 1},
        {"type": "Drug", "start": 0.0, "end": 1.9},
        {"type": "Drug", "start": "0", "end": 1},
    ],
)
def test_spert_types_and_offsets_are_checked_not_coerced(tmp_path, entity):
    path = tmp_path / "in.json"
    path.write_text(json.dumps([{"tokens": ["Aspirin", "."], "entities": [entity], "relations": []}]), encoding="utf8")
    with pytest.raises(CorpusFormatError, match="record 0"):
        read_spert(path, spacy.blank("en").vocab)


# Memory is bounded -------------------------------------------------------------------


def test_span_candidates_of_a_long_document_are_scored_in_bounded_passes(pipelines, monkeypatch):
    import tracemalloc

    from spacy_bioner.components import spans as spans_component

    nlp = pipelines.loaded("spans")
    texts = ["Mutations in the BRCA1 gene cause breast cancer . " * 60, "Cisplatin induced kidney injury was severe ."]

    def predicted() -> List[Tuple[list, list]]:
        return [
            ([(s.start, s.end, s.label_) for s in group], group.attrs["scores"])
            for group in (doc.spans["bioner_spans"] for doc in nlp.pipe(texts))
        ]

    whole = predicted()
    monkeypatch.setattr(spans_component, "CANDIDATES_PER_PASS", 1000)
    passes = predicted()
    # the same spans; the scores up to float noise (on a GPU a matrix product of fewer
    # rows may sum in another order)
    assert [spans for spans, _ in passes] == [spans for spans, _ in whole] and whole[0][0]
    for (_, scores), (_, expected) in zip(passes, whole):
        assert scores == pytest.approx(expected, rel=1e-5)

    if isinstance(nlp.get_pipe("bioner_spans").model.ops, CupyOps):
        # The memory bound is the host's, measured below with tracemalloc; on a GPU the
        # candidates live in the device allocator, whose pool keeps no peak to compare
        # (a run on the H200 read 0 bytes both ways), so the GPU tier checks equality only.
        return
    long_doc = "Mutations in the BRCA1 gene cause breast cancer . " * 600  # 5,400 tokens, 170,000 candidates

    def peak() -> int:
        """Peak host memory of annotating long_doc."""
        tracemalloc.start()
        nlp(long_doc)
        size = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return size

    bounded = peak()
    monkeypatch.setattr(spans_component, "CANDIDATES_PER_PASS", 1 << 30)
    assert bounded < peak() / 2


def test_a_line_longer_than_the_cap_is_skipped_unread(tmp_path):
    from spacy_bioner.annotate import iter_inputs, line_cap

    path = tmp_path / "in.txt"
    with path.open("wb") as file:
        file.write(b"Aspirin .\n" + b"x" * (line_cap(100) * 3) + b"\nCisplatin .\n")
    records = list(iter_inputs(path, "txt", 100))
    assert [(r.text, r.problem is None) for r in records] == [("Aspirin .", True), ("", False), ("Cisplatin .", True)]
    assert "line 2 is longer than" in records[1].problem
