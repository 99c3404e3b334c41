import random

import pytest
import spacy
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from seqeval.scheme import IOB2
from spacy.tokens import Doc, Span
from spacy.training import Example

from spacy_bioner.bio import iob_to_spans, spans_to_iob
from spacy_bioner.scoring import make_entity_scorer, score_entities

TYPES = ["Chemical", "Disease", "Gene"]


def _random_spans(rng, length):
    spans, i = [], 0
    while i < length:
        if rng.random() < 0.3:
            end = min(length, i + rng.randint(1, 4))
            spans.append((i, end, rng.choice(TYPES)))
            i = end + rng.randint(0, 2)
        else:
            i += 1
    return spans


def _doc(nlp, words, spans, key=None):
    doc = Doc(nlp.vocab, words=words)
    entities = [Span(doc, s, e, label=label) for s, e, label in spans]
    if key is None:
        doc.ents = entities
    else:
        doc.spans[key] = entities
    return doc


def _random_corpus(seed, n_docs=60):
    rng = random.Random(seed)
    nlp = spacy.blank("en")
    examples, gold_tags, pred_tags = [], [], []
    for _ in range(n_docs):
        words = [f"w{i}" for i in range(rng.randint(1, 25))]
        gold = _random_spans(rng, len(words))
        # Predictions: mostly the gold entities, some dropped, some shifted or relabelled.
        pred = []
        for s, e, label in gold:
            roll = rng.random()
            if roll < 0.6:
                pred.append((s, e, label))
            elif roll < 0.75:
                pred.append((s, e, rng.choice(TYPES)))
            elif (
                roll < 0.9
                and e < len(words)
                and all(ps >= e + 1 or pe <= s for ps, pe, _ in gold if (ps, pe) != (s, e))
            ):
                pred.append((s, e + 1, label))
        pred = sorted(set(pred))
        pred = [span for i, span in enumerate(pred) if i == 0 or span[0] >= pred[i - 1][1]]
        pred += [
            span
            for span in _random_spans(rng, len(words))
            if rng.random() < 0.1 and all(span[1] <= s or span[0] >= e for s, e, _ in pred)
        ]
        pred = sorted(pred)
        examples.append(Example(_doc(nlp, words, pred), _doc(nlp, words, gold)))
        gold_tags.append(spans_to_iob(gold, len(words)))
        pred_tags.append(spans_to_iob(pred, len(words)))
    return examples, gold_tags, pred_tags


@pytest.mark.parametrize("seed", range(4))
def test_scorer_matches_seqeval_strict_iob2(seed):
    examples, gold_tags, pred_tags = _random_corpus(seed)
    scores = score_entities(examples)
    kwargs = {"mode": "strict", "scheme": IOB2}
    assert scores["ents_p"] == pytest.approx(precision_score(gold_tags, pred_tags, **kwargs))
    assert scores["ents_r"] == pytest.approx(recall_score(gold_tags, pred_tags, **kwargs))
    assert scores["ents_f"] == pytest.approx(f1_score(gold_tags, pred_tags, **kwargs))
    report = classification_report(gold_tags, pred_tags, output_dict=True, zero_division=0, **kwargs)
    for label in TYPES:
        if label in report:
            assert scores["ents_per_type"][label]["p"] == pytest.approx(report[label]["precision"])
            assert scores["ents_per_type"][label]["r"] == pytest.approx(report[label]["recall"])
            assert scores["ents_per_type"][label]["f"] == pytest.approx(report[label]["f1-score"])


def test_repaired_sequences_score_like_their_spans():
    # A stray I- in the prediction starts a new entity when read (documented repair rule).
    nlp = spacy.blank("en")
    words = ["a", "b", "c", "d"]
    gold = iob_to_spans(["B-Gene", "I-Gene", "O", "B-Gene"])
    pred = iob_to_spans(["O", "I-Gene", "O", "I-Gene"])
    scores = score_entities([Example(_doc(nlp, words, pred), _doc(nlp, words, gold))])
    assert scores["ents_p"] == pytest.approx(0.5) and scores["ents_r"] == pytest.approx(0.5)


def test_span_group_scorer_keeps_overlaps_and_uses_its_key():
    nlp = spacy.blank("en")
    words = ["the", "breast", "cancer", "gene"]
    gold = [(1, 3, "Disease"), (1, 4, "Gene")]
    pred = [(1, 3, "Disease"), (2, 3, "Disease")]
    example = Example(_doc(nlp, words, pred, key="sc"), _doc(nlp, words, gold, key="sc"))
    scores = make_entity_scorer(spans_key="sc")([example])
    assert scores["spans_sc_p"] == pytest.approx(0.5)
    assert scores["spans_sc_r"] == pytest.approx(0.5)
    assert scores["spans_sc_per_type"]["Gene"]["r"] == 0.0


def test_empty_prediction_and_gold_give_zero_not_an_error():
    nlp = spacy.blank("en")
    example = Example(_doc(nlp, ["x"], []), _doc(nlp, ["x"], []))
    assert score_entities([example])["ents_f"] == 0.0


@pytest.mark.parametrize(
    "factory,config,default_key",
    [
        ("bioner_tagger", {}, None),
        ("bioner_spans", {}, "spans_a"),
        ("bioner_relations", {}, "spans_a"),
        ("bioner_ensemble", {"sources": ["x", "y"]}, None),
    ],
)
def test_every_component_has_one_scorer_mechanism(factory, config, default_key):
    """`scorer = null` (the default) is the component's registered scorer bound to what
    it writes (doc.ents, or its span group, which follows the component's name); a
    configured scorer replaces it."""
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe(factory, name="spans_a", config=config)
    assert nlp.config["components"]["spans_a"]["scorer"] is None
    assert pipe.scorer.spans_key == default_key
    other = spacy.blank("en")
    configured = {**config, "scorer": {"@scorers": "spacy_bioner.entity_scorer.v1", "spans_key": "sc"}}
    assert other.add_pipe(factory, name="spans_a", config=configured).scorer.spans_key == "sc"
