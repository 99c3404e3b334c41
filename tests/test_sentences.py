import pytest
import spacy
from spacy.tokens import Doc


@pytest.fixture
def nlp():
    nlp = spacy.blank("en")
    nlp.add_pipe("bioner_sentences")
    return nlp


def _sentences(nlp, words):
    return [sent.text for sent in nlp(Doc(nlp.vocab, words=words)).sents]


def test_starts_a_sentence_only_before_a_capital_after_an_end(nlp):
    words = "Growth of E . coli was 5 . 6 fold . The strain died ! Mice survived ? yes".split()
    assert _sentences(nlp, words) == [
        "Growth of E . coli was 5 . 6 fold .",
        "The strain died !",
        "Mice survived ? yes",
    ]


def test_skips_whitespace_between_end_and_capital(nlp):
    doc = nlp("Reye syndrome .\n\nThe patients recovered .")
    assert [sent.text.strip() for sent in doc.sents] == ["Reye syndrome .", "The patients recovered ."]
    assert not any(token.is_sent_start for token in doc if token.is_space)


def test_keeps_existing_sentence_starts_unless_overwrite():
    words = ["a", "b", ".", "C"]
    marked = [True, True, False, False]
    keep = spacy.blank("en")
    keep.add_pipe("bioner_sentences")
    assert [s.text for s in keep(Doc(keep.vocab, words=words, sent_starts=marked)).sents] == ["a", "b . C"]
    replace = spacy.blank("en")
    replace.add_pipe("bioner_sentences", config={"overwrite": True})
    assert [s.text for s in replace(Doc(replace.vocab, words=words, sent_starts=marked)).sents] == ["a b .", "C"]


def test_custom_sentence_ends_and_empty_doc():
    nlp = spacy.blank("en")
    nlp.add_pipe("bioner_sentences", config={"sentence_ends": [";"]})
    assert _sentences(nlp, ["a", ";", "B", ".", "C"]) == ["a ;", "B . C"]
    assert len(nlp("")) == 0


def test_bad_sentence_ends_are_named():
    with pytest.raises(ValueError, match="sentence_ends must be a list of non-empty strings"):
        spacy.blank("en").add_pipe("bioner_sentences", config={"sentence_ends": [""]})
