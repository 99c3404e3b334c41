import pytest
import spacy
from spacy.tokens import Doc, Span, SpanGroup

from spacy_bioner.abbreviations import defined_short_forms, long_form_start, short_form_candidates


@pytest.fixture
def nlp():
    nlp = spacy.blank("en")
    nlp.add_pipe("bioner_abbreviations")
    return nlp


def _doc(vocab, text, ents=()):
    doc = Doc(vocab, words=text.split())
    doc.ents = [Span(doc, start, end, label=label) for start, end, label in ents]
    return doc


@pytest.mark.parametrize(
    "short,long,expected",
    [
        ("HNPCC", "hereditary nonpolyposis colorectal cancer", True),
        ("FH", "Familial hypercholesterolemia", True),
        ("HPT - JT", "hyperparathyroidism - jaw tumour", True),
        ("PAX6", "aniridia", False),
        ("PAH", "deficiency of phenylalanine hydroxylase", True),  # the entity's last words
        # "x" occurs, but not at the start of a word
        ("XD", "oxidative damage", False),
        ("", "anything", False),
    ],
)
def test_short_form_test_of_schwartz_and_hearst(short, long, expected):
    assert (long_form_start(short, long) is not None) is expected


@pytest.mark.parametrize(
    "short,long,long_form",
    [
        ("IBS", "with irritable bowel syndrome", "irritable bowel syndrome"),
        # 'İ' lowercases to two characters; the offset must still point into `long`
        ("IBS", "İstanbul irritable bowel syndrome", "irritable bowel syndrome"),
    ],
)
def test_long_form_start_is_an_offset_into_the_long_form(short, long, long_form):
    start = long_form_start(short, long)
    assert start is not None
    assert long[start:] == long_form


def test_short_form_candidates():
    vocab = spacy.blank("en").vocab
    doc = _doc(vocab, "a ( HPT - JT ) b ( see below ) c ( 4 ) d ( ABCDEFGHIJKL ) e ( DM ) ( f")
    assert [span.text for span in short_form_candidates(doc)] == ["HPT - JT", "DM"]


def test_definitions_need_an_entity_right_before_the_parenthesis():
    vocab = spacy.blank("en").vocab
    text = "Duchenne muscular dystrophy ( DMD ) and insulin receptor ( IR ) , also dystrophin ( DMD ) ."
    doc = _doc(vocab, text, [(0, 3, "Disease"), (13, 14, "Gene")])
    definitions = defined_short_forms(doc, list(doc.ents))
    assert {words: span.text for words, span in definitions.items()} == {("DMD",): "Duchenne muscular dystrophy"}


@pytest.mark.parametrize(
    "text,defined",
    [
        # the long form leaves two words of the entity uncovered: still a definition
        ("X - linked spastic paraplegia ( SPG ) .", True),
        # PAH abbreviates the enzyme, three words into the entity: not the disease
        ("deficiency of the enzyme phenylalanine hydroxylase ( PAH ) .", False),
    ],
)
def test_the_long_form_must_cover_the_entity_but_two_leading_words(text, defined):
    vocab = spacy.blank("en").vocab
    end = text.split().index("(")
    doc = _doc(vocab, text, [(0, end, "Disease")])
    assert bool(defined_short_forms(doc, list(doc.ents))) is defined


def test_every_uncovered_short_form_gets_the_long_forms_label(nlp):
    doc = _doc(
        nlp.vocab,
        "Familial hypercholesterolemia ( FH ) is common . FH patients , FH - like and FHL",
        [(0, 2, "Disease"), (11, 14, "Disease")],
    )
    doc = nlp(doc)
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("Familial hypercholesterolemia", "Disease"),
        ("FH", "Disease"),
        ("FH", "Disease"),
        ("FH - like", "Disease"),  # the model's own mention is kept, not split
    ]


def test_nothing_changes_without_a_labelled_long_form(nlp):
    text = "Familial hypercholesterolemia ( FH ) is common . FH patients"
    assert nlp(_doc(nlp.vocab, text)).ents == ()
    doc = nlp(_doc(nlp.vocab, text, [(8, 9, "Disease")]))
    assert [(e.start, e.label_) for e in doc.ents] == [(8, "Disease")]
    assert nlp(_doc(nlp.vocab, "")).ents == ()


def _with_group(nlp, text, long_form, score):
    doc = _doc(nlp.vocab, text, [long_form])
    group = SpanGroup(doc, name="sc", spans=[Span(doc, *long_form)])
    group.attrs["scores"] = [score]
    doc.spans["sc"] = group
    return doc


def test_a_span_group_is_extended_with_the_long_forms_attributes():
    nlp = spacy.blank("en")
    nlp.add_pipe("bioner_abbreviations", config={"spans_key": "sc", "set_ents": False})
    doc = _with_group(nlp, "Wilms tumour ( WT ) in WT cases", (0, 2, "Disease"), 0.75)
    doc.ents = []
    doc = nlp(doc)
    assert [(s.text, s.label_) for s in doc.spans["sc"]] == [
        ("Wilms tumour", "Disease"),
        ("WT", "Disease"),
        ("WT", "Disease"),
    ]
    assert doc.spans["sc"].attrs["scores"] == [0.75, 0.75, 0.75]
    assert doc.ents == ()
    assert "sc" not in nlp(_doc(nlp.vocab, "no group here")).spans


def test_span_group_and_ents_stay_consistent():
    nlp = spacy.blank("en")
    nlp.add_pipe("bioner_abbreviations", config={"spans_key": "sc"})
    doc = nlp(_with_group(nlp, "Wilms tumour ( WT ) in WT cases", (0, 2, "Disease"), 0.75))
    assert [s.text for s in doc.spans["sc"]] == [e.text for e in doc.ents] == ["Wilms tumour", "WT", "WT"]


def test_the_component_saves_and_loads(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("bioner_abbreviations", config={"max_short_form_chars": 4})
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.pipe_names == ["bioner_abbreviations"]
    assert loaded.get_pipe("bioner_abbreviations").max_short_form_chars == 4
    doc = loaded(_doc(loaded.vocab, "Wilms tumour ( WT ) in WT cases", [(0, 2, "Disease")]))
    assert [e.text for e in doc.ents] == ["Wilms tumour", "WT", "WT"]


def test_settings_are_checked():
    with pytest.raises(ValueError, match="max_short_form_chars"):
        spacy.blank("en").add_pipe("bioner_abbreviations", config={"max_short_form_chars": 1})
    with pytest.raises(ValueError, match="set_ents"):
        spacy.blank("en").add_pipe("bioner_abbreviations", config={"set_ents": False})
