"""Odd input never crashes a component (the pipelines of tests/pipelines.py): empty and
whitespace-only docs, a single token, control characters, random Unicode, tokens with
spaces inside, and 100,000-character documents, whose cost stays linear in their length
(asserted on candidate and window counts, not on time).
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc

from spacy_bioner.layers.spans import count_spans
from spacy_bioner.meta import CONTEXT_TOKENS, marked_text

from .pipelines import PIPELINES, check_doc, entity_groups

pytestmark = pytest.mark.usefixtures("one_torch_thread")

EDGE_CASES = {
    "empty": "",
    "space": " ",
    "whitespace": "\n\t\r \u3000\n\n",
    "controls": "\x00\x01\x7f\x1b[31m\x08",
    "single token": "cisplatin",
    "invisible": "\u200b\u202e\ufeff\u2028",
    "scripts and emoji": "Aspirin 😀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 کلمه 漢字 ﷽ e\u0301",
    "5,000-character word": "a" * 5000,
}
# A 100,000-character document: mostly sentences without entities, an entity every
# few of them (so the meta filter's cost, one input per prediction, stays modest).
LONG = "No adverse events were seen . " * 8 + "Cisplatin causes acute kidney injury . "
LONG = (LONG * (100_000 // len(LONG) + 1))[:100_000]


def run(nlp, doc_or_text):
    doc = nlp(doc_or_text)
    check_doc(doc)
    return doc


@pytest.mark.parametrize("name", PIPELINES)
def test_edge_case_documents(pipelines, name):
    nlp = pipelines.loaded(name)
    for case, text in EDGE_CASES.items():
        doc = run(nlp, text)
        assert doc.text == text, case
        assert set(entity_groups(name)) <= set(doc.spans), case
    # tokens with spaces, tabs and line breaks inside, as other formats can make them
    words = ["kidney injury", "a\tb", "x\ny", " ", "Cisplatin", "\u00a0"]
    doc = run(nlp, Doc(nlp.vocab, words=words, spaces=[True, False, True, False, True, False]))
    assert [token.text for token in doc] == words


UNICODE = st.text(st.characters(blacklist_categories=["Cs"]), max_size=200)
WORDS = st.lists(st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=8), max_size=12)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=UNICODE, words=WORDS, data=st.data())
@pytest.mark.parametrize("name", PIPELINES)
def test_random_unicode_never_crashes(pipelines, name, text, words, data):
    nlp = pipelines.loaded(name)
    run(nlp, text)
    spaces = data.draw(st.lists(st.booleans(), min_size=len(words), max_size=len(words)))
    run(nlp, Doc(nlp.vocab, words=words, spaces=spaces))


@pytest.fixture(scope="module")
def long_doc(pipelines):
    return pipelines.loaded("tagger_softmax").make_doc(LONG)


def test_long_documents_tagger(pipelines, long_doc):
    for name in ("tagger_softmax", "tagger_crf"):
        doc = run(pipelines.loaded(name), LONG)
        assert len(doc) == len(long_doc)
        assert doc.spans["bioner_tagger"], name


def test_long_documents_spans_have_linear_candidates(pipelines, long_doc):
    nlp = pipelines.loaded("spans")
    pipe = nlp.get_pipe("bioner_spans")
    n = len(long_doc)
    candidates = pipe.suggest([long_doc]).dataXd.shape[0]
    assert candidates == count_spans([n], pipe.cfg["max_span_length"])[0] <= pipe.cfg["max_span_length"] * n
    run(nlp, LONG)


def test_long_documents_relations_have_bounded_pairs(pipelines, long_doc):
    nlp = pipelines.loaded("relations")
    pipe = nlp.get_pipe("bioner_relations")
    n, cfg = len(long_doc), pipe.cfg
    batch, _, pair_scores = pipe.predict([long_doc])
    assert batch.n_candidates.tolist() == count_spans([n], cfg["max_span_length"]).tolist()
    assert len(pair_scores.pairs) <= cfg["max_pairs"]
    doc = run(nlp, LONG)
    assert len(doc._.relations) <= cfg["max_pairs"]


def test_long_documents_llm_windows(pipelines, long_doc):
    nlp = pipelines.loaded("llm")
    tagger = nlp.get_pipe("bioner_llm_tagger")
    from spacy_bioner.llm.instructions import Instance

    words, spaces = [t.text for t in long_doc], [bool(t.whitespace_) for t in long_doc]
    instances = [Instance(words, spaces, label, "BC5CDR") for label in tagger.labels]
    windows = tagger.encoder.encode(instances)
    max_length = tagger.model.attrs["settings"]["max_length"]
    assert max(len(window.input_ids) for window in windows) <= max_length
    pieces = sum(len(p) for p in tagger.encoder.word_pieces(words, spaces))
    prefix = max(len(tagger.encoder.prefix(label, "BC5CDR")) for label in tagger.labels)
    budget = max_length - prefix
    # consecutive windows share at most a quarter of the budget
    assert len(windows) <= len(tagger.labels) * (pieces // (budget - budget // 4 - 1) + 1)
    run(nlp, LONG)


def test_long_documents_ensemble_filter_inputs_stay_short(pipelines, long_doc, monkeypatch):
    nlp = pipelines.loaded("ensemble")
    meta = nlp.get_pipe("ensemble_meta")
    texts = []
    judge = meta.filter.pipe

    def spy(stream, **kwargs):
        stream = list(stream)
        texts.extend(stream)
        return judge(stream, **kwargs)

    monkeypatch.setattr(meta.filter, "pipe", spy)
    doc = run(nlp, LONG)
    assert len(texts) == len(doc.spans["ensemble_union"]) > 0
    longest = max(len(text.split()) for text in texts)
    assert longest <= 2 * CONTEXT_TOKENS + 10
    long_span = marked_text(long_doc, 0, len(long_doc), "Disease")
    assert len(long_span) > len(LONG)  # the prediction itself is never cut
