"""Odd input to every converter, reader and writer (property-based): IOB/IOBES TSV,
SpERT JSON, BRAT standoff, PubTator, the registered corpus readers, and the inputs and
outputs of `bioner annotate`.

Readers either return documents or raise CorpusFormatError naming the file and the
line (or record); what a writer writes, its reader reads back unchanged; a document a
writer cannot represent is reported, never written half.
"""

import json
import os

import pytest
import spacy
import srsly
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc, Span

from spacy_bioner.annotate import InputRecord, Summary, Writer, doc_annotations, iter_inputs, pending_records
from spacy_bioner.bio import iob_to_spans, spans_to_iob
from spacy_bioner.corpora import CorpusFormatError, read_brat, read_iob, read_spert, write_iob, write_spert
from spacy_bioner.corpora.brat import read_ann
from spacy_bioner.corpora.multi import create_multi_corpus_reader
from spacy_bioner.corpora.pubtator import PubTatorDocument, iter_pubtator, write_pubtator_document
from spacy_bioner.corpora.readers import create_iob_reader
from spacy_bioner.relations import relation_rows

NLP = spacy.blank("en")
VOCAB = NLP.vocab
SETTINGS = settings(max_examples=40, deadline=None)

# Any text (lone surrogates cannot be written as UTF-8, so none).
TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=120)
# A token of a TSV file: no tab, no line break, not blank; inner spaces allowed.
TOKEN = st.text(st.characters(blacklist_categories=["Cs", "Cc", "Zl", "Zp"]), min_size=1, max_size=8).filter(str.strip)
TAG = st.sampled_from(["O", "B-Gene", "I-Gene", "B-Dis", "I-Dis", "E-Gene", "S-Dis"])
LABEL = st.text(st.characters(whitelist_categories=["Lu", "Ll", "Nd"]), min_size=1, max_size=6)
# Text made of the pieces that break line-based formats, and random characters.
PIECES = ["Aspirin", " ", "\n", "\r\n", "\r", "\t", "kidney injury", "|", "\u2028", "\x85", "é", "\x00", "-"]
TRICKY = st.lists(
    st.one_of(st.sampled_from(PIECES), st.text(st.characters(blacklist_categories=["Cs"]), max_size=3)), max_size=12
).map("".join)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("odd_files")


def triples(spans):
    return [(span.start, span.end, span.label_) for span in spans]


# IOB / IOBES TSV ----------------------------------------------------------------------


@SETTINGS
@given(
    sentences=st.lists(st.lists(st.tuples(TOKEN, TAG), min_size=1, max_size=12), min_size=1, max_size=5),
    scheme=st.sampled_from(["iob", "iobes"]),
)
def test_tsv_readers_read_any_tag_soup_alike_and_round_trip(workdir, sentences, scheme):
    path = workdir / "soup.tsv"
    path.write_text("\n\n".join("\n".join(f"{t}\t{g}" for t, g in s) for s in sentences) + "\n", encoding="utf8")
    docs, _ = read_iob(path, VOCAB)
    assert [[t.text for t in doc] for doc in docs] == [[t for t, _ in s] for s in sentences]
    expected = [iob_to_spans([g for _, g in s]) for s in sentences]
    assert [triples(doc.ents) for doc in docs] == expected
    assert [triples(eg.reference.ents) for eg in create_iob_reader(path)(NLP)] == expected
    assert [triples(eg.reference.ents) for eg in create_multi_corpus_reader({"soup": str(path)})(NLP)] == expected
    out = workdir / "soup.out.tsv"
    write_iob(docs, out, scheme)
    again, repairs = read_iob(out, VOCAB)
    assert repairs == 0
    assert [triples(doc.ents) for doc in again] == expected


@SETTINGS
@given(data=st.one_of(TEXT.map(lambda text: text.encode("utf8")), st.binary(max_size=120)))
def test_tsv_reader_fails_only_with_a_located_error(workdir, data):
    path = workdir / "any.tsv"
    path.write_bytes(data)
    try:
        read_iob(path, VOCAB)
    except CorpusFormatError as err:
        assert str(path) in str(err) and err.line >= 1


@settings(max_examples=100, deadline=None)
@given(length=st.integers(0, 30), data=st.data())
def test_spans_to_tags_and_back_is_identity(length, data):
    spans, position = [], 0
    while position < length and data.draw(st.booleans()):
        start = data.draw(st.integers(position, length - 1))
        end = data.draw(st.integers(start + 1, length))
        spans.append((start, end, data.draw(st.sampled_from(["A", "B"]))))
        position = end
    for scheme in ("iob", "iobes"):
        assert iob_to_spans(spans_to_iob(spans, length, scheme)) == spans


@SETTINGS
@given(words=st.lists(st.text(max_size=5).filter(len), min_size=1, max_size=10), data=st.data())
def test_write_iob_writes_what_read_iob_reads_or_names_the_token(workdir, words, data):
    """Docs from other sources (SpERT tokens, Doc(words=...)) may hold any token text."""
    doc = Doc(VOCAB, words=words)
    solid = [i for i, word in enumerate(words) if word.strip()]
    chosen = sorted(data.draw(st.sets(st.sampled_from(solid), max_size=3)) if solid else [])
    doc.ents = [Span(doc, i, i + 1, label="X") for i in chosen]
    path = workdir / "written.tsv"
    try:
        write_iob([doc], path)
    except ValueError as err:
        assert any(c in word for word in words for c in "\t\n\r") and "token" in str(err)
        return
    if not solid:
        assert path.read_text(encoding="utf8") == ""
        return
    (again,), _ = read_iob(path, VOCAB)
    assert [token.text for token in again] == [words[i] for i in solid]
    assert [solid[e.start] for e in again.ents] == chosen


# SpERT JSON ---------------------------------------------------------------------------


@st.composite
def spert_records(draw):
    tokens = draw(st.lists(st.text(min_size=1, max_size=6).filter(str.strip), min_size=1, max_size=8))
    bounds = st.tuples(st.integers(0, len(tokens) - 1), st.integers(1, len(tokens))).filter(lambda b: b[0] < b[1])
    keys = draw(st.lists(st.tuples(bounds, LABEL), max_size=5, unique=True))
    entities = [{"type": label, "start": start, "end": end} for (start, end), label in keys]
    relations = []
    if entities:
        index = st.integers(0, len(entities) - 1)
        relations = draw(st.lists(st.fixed_dictionaries({"type": LABEL, "head": index, "tail": index}), max_size=3))
    record = {"tokens": tokens, "entities": entities, "relations": relations}
    if draw(st.booleans()):
        record["orig_id"] = draw(st.one_of(st.integers(-(2**31), 2**31), st.text(max_size=5)))
    return record


@SETTINGS
@given(records=st.lists(spert_records(), max_size=4))
def test_spert_round_trips_any_valid_record(workdir, records):
    path = workdir / "records.json"
    srsly.write_json(path, records)
    docs = read_spert(path, VOCAB)
    assert [len(doc.spans["bioner_spans"]) for doc in docs] == [len(r["entities"]) for r in records]
    write_spert(docs, workdir / "back.json")
    assert srsly.read_json(workdir / "back.json") == records


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["tokens", "entities", "relations", "type", "start", "end", "head", "tail", "orig_id"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@SETTINGS
@given(data=st.one_of(JSON.map(lambda value: json.dumps(value).encode("utf8")), st.binary(max_size=60)))
def test_spert_reader_fails_only_with_a_located_error(workdir, data):
    path = workdir / "any.json"
    path.write_bytes(data)
    try:
        docs = read_spert(path, VOCAB)
    except CorpusFormatError as err:
        assert str(path) in str(err)
        return
    for doc in docs:
        assert all(isinstance(span.label_, str) for span in doc.spans["bioner_spans"])
        assert all(isinstance(row[6], str) for row in relation_rows(doc))


# BRAT standoff ------------------------------------------------------------------------


@SETTINGS
@given(text=TRICKY, lines=st.lists(TRICKY, max_size=5))
def test_brat_reader_fails_only_with_a_located_error(workdir, text, lines):
    (workdir / "doc.txt").write_text(text, encoding="utf8", newline="")
    (workdir / "doc.ann").write_text("\n".join(lines), encoding="utf8", newline="")
    try:
        read_ann(workdir / "doc.ann", text)
        read_brat(workdir / "doc.txt", NLP)
    except CorpusFormatError as err:
        assert str(workdir / "doc.ann") in str(err) and err.line >= 1
    except ValueError as err:
        assert "does not align to tokens" in str(err)


# Output of `bioner annotate` ----------------------------------------------------------


@st.composite
def annotated_docs(draw):
    """A doc of any text with random entities in two span groups (overlaps, whitespace
    tokens and line breaks inside entities included) and random relations."""
    doc = NLP.make_doc(draw(TRICKY))
    bounds = st.tuples(st.integers(0, max(len(doc) - 1, 0)), st.integers(1, max(len(doc), 1))).filter(
        lambda b: b[0] < b[1]
    )
    groups = {}
    for key in ("a", "b"):
        spans = (
            [Span(doc, s, e, label=label) for (s, e), label in draw(st.lists(st.tuples(bounds, LABEL), max_size=4))]
            if len(doc)
            else []
        )
        doc.spans[key] = spans
        doc.spans[key].attrs["scores"] = [0.5] * len(spans)
        groups[key] = spans
    entities = groups["a"] + groups["b"]
    if entities:
        index = st.integers(0, len(entities) - 1)
        pairs = draw(st.lists(st.tuples(index, index, LABEL), max_size=3))
        doc._.relations = [(entities[h], entities[t], label) for h, t, label in pairs]
    return doc


DOC_ID = st.text(st.characters(blacklist_categories=["Cs"]), max_size=8)


def _entity_set(annotations):
    return {(e["start"], e["end"], e["label"]) for e in annotations["entities"]}


@settings(max_examples=60, deadline=None)
@given(doc=annotated_docs(), doc_id=DOC_ID, output_format=st.sampled_from(["jsonl", "pubtator", "brat"]))
def test_annotate_writers_write_what_their_readers_read(tmp_path_factory, doc, doc_id, output_format):
    out = tmp_path_factory.mktemp("annotate") / ("brat" if output_format == "brat" else f"out.{output_format}")
    writer = Writer(out, output_format)
    record = InputRecord(doc_id, doc.text)
    problem = writer.problem(record)
    if problem is not None:
        assert doc_id in problem or repr(doc_id) in problem
        writer.close()
        return
    annotations = doc_annotations(doc)
    writer.write(record, annotations)
    writer.close()
    with Writer(out, output_format) as again:
        assert list(again.written_ids()) == [doc_id]
    expected = _entity_set(annotations)
    if output_format == "jsonl":
        (row,) = [json.loads(line) for line in out.open(encoding="utf8")]
        assert row["id"] == doc_id and row["text"] == doc.text and _entity_set(row) == expected
        assert row["relations"] == annotations["relations"]
    elif output_format == "pubtator":
        (document,) = iter_pubtator(out)
        assert document.id == doc_id
        assert document.text == doc.text.replace("\r", " ").replace("\n", " ")
        assert {(s, e, label) for s, e, label, _ in document.annotations} == expected
    else:
        again = read_brat(out / f"{doc_id}.txt", NLP, spans_key="gold")
        assert again.text == doc.text
        assert {(s.start_char, s.end_char, s.label_) for s in again.spans["gold"]} == expected
        written = {(h.start_char, h.end_char, t.start_char, t.end_char, label) for h, t, label, _ in again._.relations}
        assert written == {
            (r.head.start_char, r.head.end_char, r.tail.start_char, r.tail.end_char, r.label) for r in doc._.relations
        }


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=200), input_format=st.sampled_from(["txt", "jsonl", "pubtator", "dir"]))
def test_annotate_inputs_report_bad_documents_and_never_crash(tmp_path_factory, data, input_format):
    root = tmp_path_factory.mktemp("inputs")
    path = root / "docs"
    if input_format == "dir":
        path.mkdir()
        (path / "a.txt").write_bytes(data)
        (path / "b.txt").write_bytes(data[::-1])
    else:
        path.write_bytes(data)
    records = list(iter_inputs(path, input_format, 100))
    for record in records:
        assert isinstance(record.id, (str, int)) and isinstance(record.text, str)
        if record.problem is None:
            record.text.encode("utf8")
            str(record.id).encode("utf8")
            assert record.text.strip() and len(record.text) <= 100


def test_jsonl_input_with_lone_surrogates_is_a_bad_document(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(
        '{"id": 1, "text": "ok"}\n{"id": 2, "text": "bad \\ud800 text"}\n{"id": "\\udfff", "text": "x"}\n',
        encoding="utf8",
    )
    records = list(iter_inputs(path, "jsonl", 1000))
    assert [r.problem is None for r in records] == [True, False, False]
    assert "line 2" in records[1].problem and "surrogate" in records[1].problem


def test_a_file_name_that_is_not_utf8_is_a_bad_document(tmp_path):
    (tmp_path / "ok.txt").write_text("Aspirin .", encoding="utf8")
    with open(os.fsencode(tmp_path) + b"/bad\xff.txt", "wb") as file:
        file.write(b"text")
    records = list(iter_inputs(tmp_path, "dir", 1000))
    assert [(r.id, r.problem) for r in records] == [("bad\ufffd", "the file name is not valid UTF-8"), ("ok", None)]


def test_ids_an_output_format_cannot_hold_are_reported(tmp_path):
    summary = Summary()
    records = [InputRecord("../escape", "a text"), InputRecord("ok", "a text"), InputRecord("a|b", "a text")]
    brat = Writer(tmp_path / "brat", "brat")
    assert [r.id for r in pending_records(records, brat, summary)] == ["ok", "a|b"]
    assert [doc_id for doc_id, _ in summary.bad] == ["../escape"]
    pubtator = Writer(tmp_path / "out.pubtator", "pubtator")
    summary = Summary()
    assert [r.id for r in pending_records(records, pubtator, summary)] == ["../escape", "ok"]
    assert [doc_id for doc_id, _ in summary.bad] == ["a|b"]
    assert not (tmp_path / "escape.txt").exists()


@SETTINGS
@given(title=TRICKY, abstract=TRICKY, data=st.data())
def test_pubtator_writer_keeps_text_and_offsets(workdir, title, abstract, data):
    document = PubTatorDocument("123", title, abstract)
    text = document.text
    if text:
        bounds = st.tuples(st.integers(0, len(text) - 1), st.integers(1, len(text))).filter(lambda b: b[0] < b[1])
        document.annotations = [
            (s, e, label, "") for (s, e), label in data.draw(st.lists(st.tuples(bounds, LABEL), max_size=4))
        ]
    path = workdir / "doc.pubtator"
    with path.open("w", encoding="utf8", newline="") as file:
        write_pubtator_document(file, document)
    documents = list(iter_pubtator(path))
    if not title and not abstract and not document.annotations:
        assert [d.id for d in documents] == ["123"]
        return
    (again,) = documents
    assert again.text == text.replace("\r", " ").replace("\n", " ")
    assert again.annotations == [(s, e, label, "") for s, e, label, _ in document.annotations]
