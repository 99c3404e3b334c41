"""The multi-dataset reader: several named corpora, each example marked with its dataset."""

import pytest
import spacy

from spacy_bioner.corpora.multi import create_multi_corpus_reader
from spacy_bioner.datasets import dataset_of, entity_types_of

NCBI = "Germline\tO\nBRCA1\tO\nmutations\tO\ncause\tO\nbreast\tB-Disease\ncancer\tI-Disease\n\nNo\tO\nevent\tO\n\n"
CDR = "Aspirin\tB-Chemical\ncaused\tO\nReye\tB-Disease\nsyndrome\tI-Disease\n\n"


@pytest.fixture
def corpora(tmp_path):
    (tmp_path / "ncbi.tsv").write_text(NCBI, encoding="utf8")
    (tmp_path / "cdr.tsv").write_text(CDR, encoding="utf8")
    return {"NCBI-disease": str(tmp_path / "ncbi.tsv"), "BC5CDR": str(tmp_path / "cdr.tsv")}


def test_examples_are_marked_with_dataset_and_types(corpora):
    nlp = spacy.blank("en")
    examples = list(create_multi_corpus_reader(corpora)(nlp))
    assert [dataset_of(eg.reference) for eg in examples] == ["NCBI-disease", "NCBI-disease", "BC5CDR"]
    assert [dataset_of(eg.predicted) for eg in examples] == ["NCBI-disease", "NCBI-disease", "BC5CDR"]
    assert entity_types_of(examples[1].reference) == ["Disease"]
    assert entity_types_of(examples[2].predicted) == ["Chemical", "Disease"]
    assert [(e.text, e.label_) for e in examples[2].reference.ents] == [
        ("Aspirin", "Chemical"),
        ("Reye syndrome", "Disease"),
    ]


def test_declared_types_limit_and_errors(corpora):
    nlp = spacy.blank("en")
    reader = create_multi_corpus_reader(corpora, entity_types={"NCBI-disease": ["Disease", "Gene"]}, limit=1)
    examples = list(reader(nlp))
    assert len(examples) == 2
    assert entity_types_of(examples[0].reference) == ["Disease", "Gene"]
    with pytest.raises(ValueError, match="Chemical"):
        list(create_multi_corpus_reader(corpora, entity_types={"BC5CDR": ["Disease"]})(nlp))
    with pytest.raises(ValueError, match="no path"):
        create_multi_corpus_reader(corpora, entity_types={"CRAFT": ["Gene"]})


def test_docbin_input(corpora, tmp_path):
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    docs = [eg.reference for eg in create_multi_corpus_reader({"x": corpora["BC5CDR"]})(nlp)]
    DocBin(docs=docs).to_disk(tmp_path / "cdr.spacy")
    (example,) = create_multi_corpus_reader({"BC5CDR": str(tmp_path / "cdr.spacy")})(nlp)
    assert dataset_of(example.reference) == "BC5CDR" and len(example.reference.ents) == 2
