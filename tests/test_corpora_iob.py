import pytest
import spacy

from spacy_bioner.corpora import CorpusFormatError, read_iob, write_iob
from spacy_bioner.corpora.iob import tag_counts


@pytest.fixture
def nlp():
    return spacy.blank("en")


def _write(tmp_path, text, name="data.tsv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf8")
    return path


def test_reads_real_ncbi_sentences(shared_data, nlp):
    docs, repairs = read_iob(shared_data / "ner" / "NCBI-disease" / "devel.tsv", nlp.vocab)
    assert len(docs) == 923
    assert repairs == 0
    assert all(ent.label_ == "Disease" for doc in docs for ent in doc.ents)
    assert sum(len(doc.ents) for doc in docs) > 700


def test_bc5cdr_has_both_types(shared_data, nlp):
    docs, _ = read_iob(shared_data / "ner" / "BC5CDR" / "devel.tsv", nlp.vocab)
    assert {ent.label_ for doc in docs for ent in doc.ents} == {"Chemical", "Disease"}


@pytest.mark.parametrize("scheme", ["iob", "iobes"])
def test_round_trip(tmp_path, nlp, scheme):
    text = "Aspirin\tB-Chemical\ncauses\tO\nReye\tB-Disease\nsyndrome\tI-Disease\n.\tO\n\nNo\tO\nentity\tO\n"
    docs, _ = read_iob(_write(tmp_path, text), nlp.vocab)
    out = tmp_path / f"out.{scheme}.tsv"
    assert write_iob(docs, out, scheme) == 2
    again, _ = read_iob(out, nlp.vocab)
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in again] == [
        [(0, 1, "Chemical"), (2, 4, "Disease")],
        [],
    ]
    if scheme == "iobes":
        assert "S-Chemical" in out.read_text() and "E-Disease" in out.read_text()
    else:
        assert out.read_text().startswith(text.split("\n\n")[0])


def test_stray_inside_tags_are_repaired_and_counted(tmp_path, nlp):
    docs, repairs = read_iob(_write(tmp_path, "a\tO\nb\tI-Gene\nc\tI-Gene\nd\tI-Chemical\n"), nlp.vocab)
    assert repairs == 2
    assert [(e.start, e.end, e.label_) for e in docs[0].ents] == [(1, 3, "Gene"), (3, 4, "Chemical")]


def test_docstart_lines_and_crlf_are_handled(tmp_path, nlp):
    docs, _ = read_iob(_write(tmp_path, "-DOCSTART-\tO\r\n\r\nx\tB-A\r\ny\tO\r\n"), nlp.vocab)
    assert len(docs) == 1 and docs[0].ents[0].text == "x"


def test_n_sents_groups_consecutive_sentences_into_docs(shared_data, nlp):
    sentences, _ = read_iob(shared_data / "ner" / "NCBI-disease" / "devel.tsv", nlp.vocab)
    docs, _ = read_iob(shared_data / "ner" / "NCBI-disease" / "devel.tsv", nlp.vocab, n_sents=10)
    assert len(docs) == 93  # 923 sentences
    assert [len(list(doc.sents)) for doc in docs[:2]] == [10, 10] and len(list(docs[-1].sents)) == 3
    assert [sent.text for sent in docs[0].sents] == [doc.text for doc in sentences[:10]]
    grouped = [(e.text, e.label_) for doc in docs for e in doc.ents]
    assert grouped == [(e.text, e.label_) for doc in sentences for e in doc.ents]


def test_docstart_lines_mark_the_docs_and_override_n_sents(tmp_path, nlp):
    text = "-DOCSTART-\tO\n\na\tB-X\n\nb\tO\n\n-DOCSTART-\tO\n\nc\tO\n\nd\tB-X\ne\tI-X\n\nf\tO\n"
    docs, _ = read_iob(_write(tmp_path, text), nlp.vocab, n_sents=2)
    assert [[sent.text for sent in doc.sents] for doc in docs] == [["a", "b"], ["c", "d e", "f"]]
    assert [(e.text, e.label_) for e in docs[1].ents] == [("d e", "X")]


def test_grouped_docs_write_back_one_sentence_per_block(tmp_path, nlp):
    text = "a\tB-X\nb\tO\n\nc\tO\n\nd\tB-X\ne\tI-X\n"
    docs, _ = read_iob(_write(tmp_path, text), nlp.vocab, n_sents=3)
    out = tmp_path / "out.tsv"
    assert len(docs) == 1 and write_iob(docs, out) == 3
    assert out.read_text() == text + "\n"


def test_n_sents_below_one_is_an_error(tmp_path, nlp):
    with pytest.raises(ValueError, match="n_sents"):
        read_iob(_write(tmp_path, "a\tO\n"), nlp.vocab, n_sents=0)


@pytest.mark.parametrize(
    "text,line,problem",
    [
        ("a\tO\nb B-Gene\n", 2, "no tab"),
        ("a\tO\n\nb\tI-\n", 3, "Invalid tag"),
        ("a\tO\nb\tX-Gene\n", 2, "Invalid tag"),
        ("\n\n", 1, "no tagged tokens"),
        ("", 1, "no tagged tokens"),
        ("a\tO\n\t\tO\n", 2, "empty token"),
    ],
)
def test_malformed_input_names_file_and_line(tmp_path, nlp, text, line, problem):
    path = _write(tmp_path, text)
    with pytest.raises(CorpusFormatError, match=problem) as info:
        read_iob(path, nlp.vocab)
    assert info.value.line == line
    assert str(path) in str(info.value) and f"line {line}" in str(info.value)


def test_missing_file_is_named(tmp_path, nlp):
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        read_iob(tmp_path / "nope.tsv", nlp.vocab)


def test_tag_counts_list_o_first_then_by_entity_type(nlp, tmp_path):
    docs, _ = read_iob(
        _write(tmp_path, "IL-2\tB-Gene\nin\tO\nacute\tB-Disease\nfever\tI-Disease\n\nIL-6\tB-Gene\n"), nlp.vocab
    )
    counts = tag_counts(docs)
    assert counts == {"O": 1, "B-Disease": 1, "I-Disease": 1, "B-Gene": 2}
    assert list(counts) == ["O", "B-Disease", "I-Disease", "B-Gene"]
    assert tag_counts([]) == {}


def test_registered_reader_groups_sentences_like_convert(shared_data, nlp):
    from spacy_bioner.corpora.readers import create_iob_reader

    path = shared_data / "ner" / "NCBI-disease" / "devel.tsv"
    examples = list(create_iob_reader(path, limit=2, n_sents=10)(nlp))
    docs, _ = read_iob(path, nlp.vocab, n_sents=10)
    assert [eg.reference.text for eg in examples] == [doc.text for doc in docs[:2]]
    assert [[e.text for e in eg.reference.ents] for eg in examples] == [[e.text for e in d.ents] for d in docs[:2]]
