import subprocess
import sys

import numpy
import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example

from spacy_bioner.bio import iob_to_spans
from spacy_bioner.bio_decoding import FORBIDDEN, bio_constraints, decode
from spacy_bioner.layers.crf import forward_backward
from spacy_bioner.losses import softmax
from spacy_bioner.scoring import score_entities

from .util import make_examples, make_nlp, train


@pytest.fixture(
    scope="module",
    params=[
        ("softmax", "welt", 0, "iob"),
        ("crf", "none", 0, "iob"),
        ("softmax", "welt", 16, "iob"),
        ("softmax", "welt", 0, "iobes"),
        ("crf", "none", 0, "iobes"),
    ],
    ids=["softmax", "crf", "hidden", "softmax-iobes", "crf-iobes"],
)
def trained(request):
    spacy.util.fix_random_seed(0)
    output, scheme, hidden_width, tagging = request.param
    nlp = make_nlp(output, scheme, hidden_width, tagging=tagging)
    examples = make_examples(nlp)
    return train(nlp, examples), examples


def test_overfits_tiny_set_to_perfect_f1(trained):
    nlp, examples = trained
    scores = score_entities([Example(nlp(eg.reference.text), eg.reference) for eg in examples])
    assert scores["ents_f"] == 1.0


def test_writes_span_group_with_scores_and_ents(trained):
    nlp, _ = trained
    doc = nlp("Aspirin induced Reye syndrome in children .")
    group = doc.spans["bioner_tagger"]
    assert [(s.text, s.label_) for s in group] == [("Aspirin", "Chemical"), ("Reye syndrome", "Disease")]
    assert len(group.attrs["scores"]) == 2 and all(0.5 < s <= 1.0 for s in group.attrs["scores"])
    assert list(doc.ents) == list(group)


def test_disk_round_trip_gives_identical_predictions(trained, tmp_path):
    nlp, examples = trained
    texts = [eg.reference.text for eg in examples]
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.get_pipe("bioner_tagger").cfg["class_weights"] == pytest.approx(
        nlp.get_pipe("bioner_tagger").cfg["class_weights"]
    )
    for before, after in zip(nlp.pipe(texts), loaded.pipe(texts)):
        assert [(e.start, e.end, e.label_) for e in before.ents] == [(e.start, e.end, e.label_) for e in after.ents]
        assert before.spans["bioner_tagger"].attrs["scores"] == pytest.approx(
            after.spans["bioner_tagger"].attrs["scores"]
        )


def test_pipe_equals_call_and_survives_docbin(trained):
    nlp, examples = trained
    texts = [eg.reference.text for eg in examples] + ["", "   "]
    piped = list(nlp.pipe(texts, batch_size=3))
    called = [nlp(text) for text in texts]
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in piped] == [
        [(e.start, e.end, e.label_) for e in d.ents] for d in called
    ]
    restored = list(DocBin(docs=piped, store_user_data=True).get_docs(nlp.vocab))
    assert [d.spans["bioner_tagger"].attrs["scores"] for d in restored] == [
        d.spans["bioner_tagger"].attrs["scores"] for d in piped
    ]


def test_empty_and_whitespace_docs(trained):
    nlp, _ = trained
    for text in ["", " ", "\n\n"]:
        doc = nlp(text)
        assert len(doc.spans["bioner_tagger"]) == len(doc.ents) == 0


def test_entities_never_cross_a_marked_sentence_start(trained):
    """As in spaCy's `ner`: an entity may not go on across a sentence start the doc
    marks; without the mark the same words give the two-token entity."""
    nlp, _ = trained
    words = ["Aspirin", "induced", "Reye", "syndrome", "."]
    unmarked = nlp(Doc(nlp.vocab, words=words))
    assert ("Reye syndrome", "Disease") in [(e.text, e.label_) for e in unmarked.ents]
    marked = nlp(Doc(nlp.vocab, words=words, sent_starts=[True, False, False, True, False]))
    assert not [e for e in marked.ents if e.start < 3 < e.end]
    assert [(e.text, e.label_) for e in marked.ents if e.start == 0] == [("Aspirin", "Chemical")]


def test_entry_points_work_in_a_fresh_process(trained, tmp_path):
    nlp, _ = trained
    nlp.to_disk(tmp_path / "pipeline")
    code = (
        "import spacy, sys\n"
        "blank = spacy.blank('en'); blank.add_pipe('bioner_tagger')\n"
        "assert 'spacy_bioner.components.tagger' in sys.modules\n"
        f"nlp = spacy.load({str(tmp_path / 'pipeline')!r})\n"
        "print([(e.text, e.label_) for e in nlp('Cisplatin causes acute kidney injury .').ents])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "('Cisplatin', 'Chemical')" in result.stdout


def test_factory_default_is_the_crf_and_softmax_welt_is_a_setting():
    """`add_pipe` without a config gives the output the benchmarks chose (the CRF, no
    class weights); the paper's softmax with WeLT weights is two settings away."""
    tagger = spacy.blank("en").add_pipe("bioner_tagger")
    assert tagger.model.attrs["output"] == "crf" and tagger.model.has_ref("crf")
    assert tagger.cfg["scheme"] == "none"
    welt = spacy.blank("en").add_pipe("bioner_tagger", config={"model": {"output": "softmax"}, "scheme": "welt"})
    assert welt.model.attrs["output"] == "softmax" and not welt.model.has_ref("crf")
    assert welt.cfg["scheme"] == "welt"


def test_class_weights_are_computed_from_training_tags():
    nlp = make_nlp(scheme="ins")
    train(nlp, make_examples(nlp), n_iter=1)
    tagger = nlp.get_pipe("bioner_tagger")
    counts = tagger.cfg["tag_counts"]
    assert counts["B-Chemical"] == 4 and counts["I-Disease"] == 6
    weights = tagger.cfg["class_weights"]
    assert weights["B-Chemical"] / weights["O"] == pytest.approx(counts["O"] / 4)


def test_iobes_tagging_counts_end_and_single_token_tags():
    """With tagging = "iobes" the gold tags mark an entity's last token (E-) and
    one-token entities (S-): "Aspirin" is S-Chemical, "Reye syndrome" B-, E-Disease."""
    nlp = make_nlp("crf", "none", tagging="iobes")
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    tagger = nlp.get_pipe("bioner_tagger")
    assert tagger.tags == ["O", *(f"{p}-{t}" for t in ("Chemical", "Disease") for p in "BIES")]
    counts = tagger.cfg["tag_counts"]
    assert counts["S-Chemical"] > 0 and counts["E-Disease"] > 0
    assert counts["B-Disease"] == counts["E-Disease"]
    assert sum(counts.values()) == sum(len(eg.predicted) for eg in examples)


def test_explicit_class_weights_must_cover_every_tag():
    nlp = make_nlp(class_weights={"O": 1.0, "B-Chemical": 2.0})
    with pytest.raises(ValueError, match="missing classes.*I-Chemical"):
        nlp.initialize(lambda: make_examples(nlp))


def test_explicit_class_weights_are_used():
    weights = {"O": 0.5, "B-Chemical": 2.0, "I-Chemical": 2.0, "B-Disease": 3.0, "I-Disease": 3.0}
    nlp = make_nlp(class_weights=weights)
    nlp.initialize(lambda: make_examples(nlp))
    assert nlp.get_pipe("bioner_tagger").cfg["class_weights"] == weights


def test_unknown_entity_type_in_training_data_is_reported():
    nlp = make_nlp()
    with pytest.raises(ValueError, match="entity type 'Disease'.*not given"):
        nlp.get_pipe("bioner_tagger").initialize(lambda: make_examples(nlp), nlp=nlp, labels=["Chemical"])


def test_labels_from_init_labels_are_used():
    nlp = make_nlp()
    nlp.get_pipe("bioner_tagger").initialize(
        lambda: make_examples(nlp), nlp=nlp, labels=["Disease", "Chemical", "Gene"]
    )
    tagger = nlp.get_pipe("bioner_tagger")
    assert tagger.label_data == ["Disease", "Chemical", "Gene"]
    assert tagger.tags[0] == "O" and len(tagger.tags) == 7


def test_misaligned_tokens_are_ignored_in_training():
    nlp = make_nlp()
    reference = Doc(nlp.vocab, words=["IL-2", "gene"], spaces=[True, False])
    reference.ents = [Span(reference, 0, 1, label="Gene")]
    predicted = Doc(nlp.vocab, words=["IL", "-2", "gene"], spaces=[False, True, False])
    example = Example(predicted, reference)
    nlp.initialize(lambda: [example])
    losses = nlp.update([example])
    assert losses["bioner_tagger"] >= 0.0


@pytest.mark.parametrize(
    "config,message",
    [
        ({"scheme": "focal"}, "scheme = 'focal'"),
        ({"output": "crf", "scheme": "welt"}, "CRF output"),
        ({"output": "linear"}, "Unknown tagger output 'linear'"),
        ({"hidden_width": -1}, "hidden_width must be >= 0"),
        ({"tagging": "bilou"}, "unknown tagging 'bilou'"),
    ],
)
def test_invalid_config_is_named(config, message):
    with pytest.raises(Exception, match=message):
        make_nlp(**config)


def test_cannot_add_labels_after_initialize():
    nlp = make_nlp()
    nlp.initialize(lambda: make_examples(nlp))
    with pytest.raises(ValueError, match="after the model is initialized"):
        nlp.get_pipe("bioner_tagger").add_label("Gene")


def _reference_entities(tagger, doc):
    """One doc decoded alone, token lists and iob_to_spans: what the batched predict()
    and set_annotations() must reproduce."""
    if not len(doc):
        return []
    to_numpy = tagger.model.ops.to_numpy  # decoded on the host, as predict does
    scores = to_numpy(tagger.model.predict([doc])[0]).copy()
    scores[[token.is_space for token in doc], 1:] += FORBIDDEN
    forbidden, forbidden_start, forbidden_end = bio_constraints(tagger.tags)
    if tagger.is_crf:
        crf = tagger.model.get_ref("crf")
        transitions = to_numpy(crf.get_param("transitions")) + forbidden
        start = to_numpy(crf.get_param("start")) + forbidden_start
        end = to_numpy(crf.get_param("end")) + forbidden_end
        path = decode(numpy, [scores], transitions, start, end)[0]
        _, marginals, _ = forward_backward(numpy, scores[None], numpy.asarray([len(doc)]), transitions, start, end)
        probs = marginals[0]
    else:
        probs = softmax(numpy, scores)
        log_probs = numpy.log(numpy.maximum(probs, 1e-12))
        path = decode(numpy, [log_probs], forbidden, forbidden_start, forbidden_end)[0]
    chosen = probs[numpy.arange(len(path)), path]
    spans = iob_to_spans([tagger.tags[i] for i in path])
    return [(start, end, label, float(chosen[start:end].mean())) for start, end, label in spans]


def test_batched_decoding_matches_one_doc_at_a_time(trained):
    nlp, examples = trained
    texts = [eg.reference.text for eg in examples] + [
        "",
        "  Aspirin  induced\n\nReye syndrome  ",
        "cancer tamoxifen Reye syndrome kidney injury Cisplatin breast cancer daily",
        "\n",
        "Haloperidol",
    ]
    tagger = nlp.get_pipe("bioner_tagger")
    docs = list(nlp.pipe(texts, batch_size=4))
    for doc in docs:
        group = doc.spans[tagger.spans_key]
        got = [(span.start, span.end, span.label_) for span in group]
        expected = _reference_entities(tagger, nlp.make_doc(doc.text))
        assert got == [entity[:3] for entity in expected]
        assert group.attrs["scores"] == pytest.approx([entity[3] for entity in expected], abs=1e-5)
