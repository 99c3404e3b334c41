import json
import math
import pickle
import random
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example

from spacy_bioner.components import relation_extractor
from spacy_bioner.losses import pairwise_ranking_loss
from spacy_bioner.relations import Relation

from .pipelines import relations_examples
from .util import tiny_tok2vec

# (text, entities (start, end, type), relations (head entity, tail entity, type))
RELATION_SENTENCES = [
    ("Aspirin induced Reye syndrome in children .", [(0, 1, "Drug"), (2, 4, "Effect")], [(1, 0, "ADE")]),
    ("Cisplatin causes acute kidney injury .", [(0, 1, "Drug"), (2, 5, "Effect")], [(1, 0, "ADE")]),
    ("No adverse events were seen .", [], []),
    (
        "Rash was noted after penicillin and fever after ibuprofen .",
        [(0, 1, "Effect"), (4, 5, "Drug"), (6, 7, "Effect"), (8, 9, "Drug")],
        [(0, 1, "ADE"), (2, 3, "ADE")],
    ),
    (
        "Haloperidol was given ; neuroleptic malignant syndrome followed .",
        [(0, 1, "Drug"), (4, 7, "Effect")],
        [(1, 0, "ADE")],
    ),
    ("Metformin treats diabetes .", [(0, 1, "Drug"), (2, 3, "Disease")], [(0, 1, "Treats")]),
]


def make_nlp(model=None, **config):
    nlp = spacy.blank("en")
    model = {
        "@architectures": "spacy_bioner.RelationExtractor.v1",
        "tok2vec": tiny_tok2vec(48),
        "dropout": 0.0,
        **(model or {}),
    }
    nlp.add_pipe("bioner_relations", config={"model": model, **config})
    return nlp


def train(nlp, examples, n_iter=60):
    random.seed(0)
    numpy.random.seed(0)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(n_iter):
        random.shuffle(examples)
        nlp.update(examples, sgd=optimizer, losses={})
    return nlp


@pytest.fixture(scope="module")
def trained():
    nlp = make_nlp()
    return train(nlp, relations_examples(nlp, RELATION_SENTENCES)), relations_examples(nlp, RELATION_SENTENCES)


def relation_set(doc):
    return {
        (r.head.start, r.head.end, r.head.label_, r.tail.start, r.tail.end, r.tail.label_, r.label)
        for r in doc._.relations
    }


def test_overfits_entities_and_relations(trained):
    nlp, examples = trained
    scores = nlp.evaluate(examples)
    assert scores["spans_bioner_relations_f"] == 1.0
    assert scores["rel_strict_micro_f"] == 1.0
    assert scores["rel_micro_f"] == 1.0
    assert scores["rel_macro_f"] == 1.0
    doc = nlp("Rash was noted after penicillin and fever after ibuprofen .")
    assert relation_set(doc) == {(0, 1, "Effect", 4, 5, "Drug", "ADE"), (6, 7, "Effect", 8, 9, "Drug", "ADE")}
    assert all(isinstance(r, Relation) and r.score >= 0.85 for r in doc._.relations)
    assert [(s.start, s.end, s.label_) for s in doc.spans["bioner_relations"]] == [
        (0, 1, "Effect"),
        (4, 5, "Drug"),
        (6, 7, "Effect"),
        (8, 9, "Drug"),
    ]


def test_relation_threshold_applies_to_the_relation_stage_only(trained):
    nlp, _ = trained
    pipe = nlp.get_pipe("bioner_relations")
    text = "Rash was noted after penicillin and fever after ibuprofen ."
    doc = nlp(text)
    entities = [(s.start, s.end, s.label_) for s in doc.spans["bioner_relations"]]
    scores = sorted(r.score for r in doc._.relations)
    assert pipe.cfg["relation_threshold"] is None and len(scores) == 2
    try:
        # between the two relation scores: only the stronger one is kept, entities unchanged
        pipe.cfg["relation_threshold"] = (scores[0] + scores[1]) / 2
        doc = nlp(text)
        assert [r.score for r in doc._.relations] == pytest.approx([scores[1]])
        assert [(s.start, s.end, s.label_) for s in doc.spans["bioner_relations"]] == entities
        # below every score: pairs the threshold kept out come in; the entities still do not change
        pipe.cfg["relation_threshold"] = -100.0
        doc = nlp(text)
        assert len(doc._.relations) > 2
        assert [(s.start, s.end, s.label_) for s in doc.spans["bioner_relations"]] == entities
    finally:
        pipe.cfg["relation_threshold"] = None


def test_round_trips_keep_relations(trained):
    nlp, _ = trained
    texts = [text for text, _, _ in RELATION_SENTENCES]
    docs = list(nlp.pipe(texts))
    expected = [relation_set(doc) for doc in docs]
    assert any(expected)
    restored = list(DocBin(docs=docs, store_user_data=True).get_docs(nlp.vocab))
    assert [relation_set(doc) for doc in restored] == expected
    assert [relation_set(Doc(nlp.vocab).from_bytes(doc.to_bytes())) for doc in docs] == expected
    assert [relation_set(pickle.loads(pickle.dumps(doc))) for doc in docs] == expected


@pytest.mark.forks
def test_two_processes_keep_relations(trained):
    nlp, _ = trained
    texts = [text for text, _, _ in RELATION_SENTENCES]
    expected = [relation_set(doc) for doc in nlp.pipe(texts)]
    assert [relation_set(doc) for doc in nlp.pipe(texts, n_process=2, batch_size=2)] == expected


def test_pipeline_serialization(trained, tmp_path):
    nlp, _ = trained
    text = RELATION_SENTENCES[3][0]
    expected = relation_set(nlp(text))
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert relation_set(loaded(text)) == expected
    assert relation_set(pickle.loads(pickle.dumps(nlp))(text)) == expected
    assert loaded.get_pipe("bioner_relations").label_data == {
        "entities": ["Disease", "Drug", "Effect"],
        "relations": ["ADE", "Treats"],
    }


def test_no_one_and_many_entities(monkeypatch):
    nlp = make_nlp(negative_relations=120)
    many_text = " ".join(f"w{i}" for i in range(300))
    many = [(i, i + 1, "Drug" if i % 2 else "Effect") for i in range(300)]
    sentences = [RELATION_SENTENCES[2], ("Aspirin helps .", [(0, 1, "Drug")], []), (many_text, many, [(0, 1, "ADE")])]
    examples = relations_examples(nlp, sentences)
    nlp.initialize(lambda: examples)
    seen = []
    original = relation_extractor.sample_pairs

    def spy(*args):
        pairs, targets = original(*args)
        seen.append((pairs, targets))
        return pairs, targets

    monkeypatch.setattr(relation_extractor, "sample_pairs", spy)
    losses = nlp.update(examples, losses={})
    assert numpy.isfinite(losses["bioner_relations"])
    pairs, targets = seen[0]
    # the one positive pair, and at most 120 negatives per doc out of 300 * 299 in the long one
    assert 121 <= len(pairs) <= 1 + 3 * 120
    assert (targets >= 0).sum() == 1
    for doc in nlp.pipe(["No adverse events were seen .", "Aspirin helps .", many_text]):
        assert isinstance(doc._.relations, list)


@pytest.mark.parametrize("allow_overlap", [True, False])
def test_use_ents_from_pairs_upstream_entities(trained, allow_overlap):
    """Relations between upstream entities stay whatever the entity stage thinks of
    those spans, with or without overlapping entities."""
    nlp, _ = trained
    pipe = nlp.get_pipe("bioner_relations")
    doc = nlp.make_doc("Rash was noted after penicillin and fever after ibuprofen .")
    doc.ents = [Span(doc, 0, 1, label="Effect"), Span(doc, 4, 5, label="Drug")]
    saved = dict(pipe.cfg)
    # the entity stage rejects every span, the upstream entities included; the
    # relation stage keeps its theta
    pipe.cfg.update(use_ents_from="ents", allow_overlap=allow_overlap, threshold=1e9, relation_threshold=0.85)
    try:
        doc = pipe(doc)
    finally:
        pipe.cfg.update(saved)
    assert relation_set(doc) == {(0, 1, "Effect", 4, 5, "Drug", "ADE")}


def test_relation_to_missing_entity_names_the_document():
    nlp = make_nlp()
    examples = relations_examples(nlp, RELATION_SENTENCES)
    reference = examples[1].reference
    head = Span(reference, 3, 5, label="Effect")  # not one of the gold entities
    reference._.relations = [(head, reference.ents[0], "ADE")]
    with pytest.raises(ValueError, match=r"example 1: the head of relation 'ADE'.*not a gold entity"):
        nlp.initialize(lambda: examples)


def test_unknown_labels_are_errors():
    nlp = make_nlp()
    examples = relations_examples(nlp, RELATION_SENTENCES)
    pipe = nlp.get_pipe("bioner_relations")
    with pytest.raises(ValueError, match="relation type 'Treats'"):
        pipe.initialize(lambda: examples, labels={"entities": ["Drug", "Effect", "Disease"], "relations": ["ADE"]})


def test_convert_spert_round_trip_with_symmetric_types(tmp_path):
    import srsly
    from typer.testing import CliRunner

    from spacy_bioner.cli import app

    records = [
        {
            "tokens": ["Ann", "met", "Bob", "in", "Rome"],
            "entities": [
                {"type": "Peop", "start": 0, "end": 1},
                {"type": "Peop", "start": 2, "end": 3},
                {"type": "Loc", "start": 4, "end": 5},
            ],
            "relations": [{"type": "Meet", "head": 0, "tail": 1}, {"type": "Live_In", "head": 1, "tail": 2}],
        }
    ]
    srsly.write_json(tmp_path / "in.json", records)
    srsly.write_json(
        tmp_path / "types.json",
        {"entities": {}, "relations": {"Meet": {"symmetric": True}, "Live_In": {"symmetric": False}}},
    )
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "convert",
            "spert",
            str(tmp_path / "in.json"),
            str(tmp_path / "out.spacy"),
            "--spans-key",
            "bioner_relations",
            "--types",
            str(tmp_path / "types.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    doc = next(DocBin().from_disk(tmp_path / "out.spacy").get_docs(spacy.blank("en").vocab))
    assert relation_set(doc) == {
        (0, 1, "Peop", 2, 3, "Peop", "Meet"),
        (2, 3, "Peop", 0, 1, "Peop", "Meet"),
        (2, 3, "Peop", 4, 5, "Loc", "Live_In"),
    }
    assert len(doc.spans["bioner_relations"]) == 3
    result = runner.invoke(
        app,
        [
            "convert",
            "spert",
            str(tmp_path / "out.spacy"),
            str(tmp_path / "back.json"),
            "--spans-key",
            "bioner_relations",
            "--types",
            str(tmp_path / "types.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert srsly.read_json(tmp_path / "back.json") == records


def test_evaluation_prints_relation_tables(trained):
    from spacy_bioner.evaluation import evaluate_examples, format_table

    nlp, examples = trained
    predicted = [Example(nlp(eg.reference.text), eg.reference) for eg in examples]
    results = evaluate_examples(predicted)
    assert results["relations"]["rel_strict_micro_f"] == 1.0
    table = format_table(results)
    assert "relations, strict" in table and "relations, boundaries" in table and "ALL (macro)" in table


# Class weights -------------------------------------------------------------------------

ENTITY_CLASSES = ["Neg_Span", "Disease", "Drug", "Effect"]
RELATION_CLASSES = ["Neg_Relation", "ADE", "Treats"]


def initialized(**config):
    """make_nlp(**config) initialized on RELATION_SENTENCES with fixed seeds; the pipe."""
    spacy.util.fix_random_seed(0)
    nlp = make_nlp(**config)
    examples = relations_examples(nlp, RELATION_SENTENCES)
    nlp.initialize(lambda: examples)
    return nlp, nlp.get_pipe("bioner_relations"), examples


def test_class_counts_and_default_weights():
    _, pipe, _ = initialized()
    # Neg_Span: per sentence min(120, candidate spans - gold spans), e.g. 10 tokens:
    # 55 - 4; Neg_Relation: ordered pairs of gold entities minus gold relations
    assert pipe.cfg["class_counts"] == {
        "entities": {"Neg_Span": 26 + 19 + 21 + 51 + 43 + 8, "Disease": 1, "Drug": 6, "Effect": 5},
        "relations": {"Neg_Relation": 1 + 1 + 0 + 10 + 1 + 1, "ADE": 5, "Treats": 1},
    }
    assert pipe.cfg["scheme"] == "none"
    assert {w for stage in pipe.cfg["class_weights"].values() for w in stage.values()} == {1.0}
    _, pipe, _ = initialized(scheme="ins", negative_entities=20)
    assert pipe.cfg["class_counts"]["entities"]["Neg_Span"] == 20 + 19 + 20 + 20 + 20 + 8
    weights = pipe.cfg["class_weights"]
    assert weights["entities"]["Neg_Span"] < weights["entities"]["Drug"] < weights["entities"]["Disease"]
    assert weights["relations"]["Neg_Relation"] < weights["relations"]["ADE"] < weights["relations"]["Treats"]


def test_beta_and_weight_strength_reach_the_weights():
    def entity_weights(**config):
        return initialized(**config)[1].cfg["class_weights"]["entities"]

    assert set(entity_weights(scheme="ins", weight_strength=0.0).values()) == {1.0}
    # ENS: beta 0.5 treats the classes seen more than a few times (nearly) alike, 0.99 does not
    low, high = entity_weights(scheme="ens", beta=0.5), entity_weights(scheme="ens", beta=0.99)
    assert low["Drug"] / low["Neg_Span"] == pytest.approx(1.0, abs=0.02)
    assert high["Drug"] / high["Neg_Span"] > 5


@pytest.mark.parametrize("multitask", [True, False])
def test_class_weights_weight_each_row_by_its_gold_class(multitask):
    """Rows Drug (weight 4), negative (0.5), Effect (1): the classification loss is the
    weighted mean of the rows' losses, and each row's gradient is scaled to match."""
    explicit = {"Neg_Span": 0.5, "Disease": 1.0, "Drug": 4.0, "Effect": 1.0}
    _, pipe, _ = initialized(multitask=multitask, identification_weight=0.0, class_weights={"entities": explicit})
    scores = numpy.asarray([[2.0, 0.5, -1.0, 0.3], [0.3, 1.2, 0.1, -0.2], [-0.5, 0.2, 0.4, 1.1]], dtype="f")
    identification = numpy.zeros((3, 1), dtype="f")
    mask = numpy.ones(3, dtype=bool)

    def row_losses_and_grads(scores, targets):
        """Each row's unweighted loss and gradient (ranking loss, or cross-entropy over
        the none class and the types)."""
        if multitask:
            rows = [pairwise_ranking_loss(numpy, scores[i : i + 1], targets[i : i + 1]) for i in range(len(scores))]
            return numpy.asarray([loss for loss, _ in rows]), numpy.concatenate([grad for _, grad in rows])
        probs = numpy.exp(scores) / numpy.exp(scores).sum(axis=1, keepdims=True)
        gold = numpy.eye(scores.shape[1])[targets + 1]
        return -numpy.log((probs * gold).sum(axis=1)), probs - gold

    entity_scores = scores[:, :3] if multitask else scores
    targets = numpy.asarray([1, -1, 2])
    weights = numpy.asarray([4.0, 0.5, 1.0])
    ops = pipe.model.ops  # the loss takes the model's arrays (cupy in the GPU tier)
    identification = ops.asarray2f(identification)
    loss, d_scores, _ = pipe._stage_loss("entities", ops.asarray2f(entity_scores), identification, targets, mask)
    row_losses, row_grads = row_losses_and_grads(entity_scores, targets)
    assert loss == pytest.approx(float((weights * row_losses).sum() / weights.sum()), rel=1e-5)
    expected = row_grads * weights[:, None] / weights.sum()
    assert d_scores.tolist() == [pytest.approx(row, rel=1e-5, abs=1e-7) for row in expected.tolist()]
    # the relation stage keeps the scheme (none): the plain mean
    relation_scores = scores[:, :2] if multitask else scores[:, :3]
    targets = numpy.asarray([1, -1, 0])
    loss, _, _ = pipe._stage_loss("relations", ops.asarray2f(relation_scores), identification, targets, mask)
    assert loss == pytest.approx(float(row_losses_and_grads(relation_scores, targets)[0].mean()), rel=1e-5)


def test_class_weights_in_training_updates():
    def first_loss(**config):
        nlp, _, examples = initialized(**config)
        numpy.random.seed(0)
        return nlp.update(examples, losses={})["bioner_relations"]

    base = first_loss()
    equal = {"entities": dict.fromkeys(ENTITY_CLASSES, 3.0), "relations": dict.fromkeys(RELATION_CLASSES, 3.0)}
    assert first_loss(class_weights=equal) == pytest.approx(base, rel=1e-5)  # only ratios matter
    assert first_loss(scheme="ins") != pytest.approx(base, rel=1e-3)


@pytest.mark.parametrize(
    "config,message",
    [
        ({"scheme": "focal"}, "unknown setting scheme = 'focal'; valid schemes: none, welt, ins, isns, ens"),
        ({"class_weights": {"entity": {"Drug": 1.0}}}, "class_weights must map 'entities' and/or 'relations'"),
    ],
)
def test_invalid_weight_settings_are_clear_errors(config, message):
    with pytest.raises(ValueError, match=message):
        make_nlp(**config)


def test_explicit_weights_must_name_every_class():
    nlp = make_nlp(class_weights={"relations": {"ADE": 1.0, "Treats": 2.0}})
    message = r"class_weights.relations must give one weight per class .*missing classes: \['Neg_Relation'\]"
    with pytest.raises(ValueError, match=message):
        nlp.initialize(lambda: relations_examples(nlp, RELATION_SENTENCES))


# Ablation switches (Lu & Xue 2024, Table 2) -------------------------------------------------


@pytest.mark.parametrize("multitask", [True, False])
def test_entity_logits_false_narrows_the_pair_input(multitask):
    widths = {}
    for entity_logits in (True, False):
        _, pipe, _ = initialized(multitask=multitask, model={"entity_logits": entity_logits})
        n_entity_classes = pipe.model.get_ref("entity_classes").get_dim("nO")
        widths[entity_logits] = pipe.model.get_ref("relation_classes").get_dim("nI")
        assert pipe.model.get_ref("relation_identification").get_dim("nI") == widths[entity_logits]
    assert n_entity_classes == len(pipe.labels) + (0 if multitask else 1)
    assert widths[True] - widths[False] == 2 * n_entity_classes


@pytest.mark.parametrize("entity_logits", [True, False])
def test_relation_scores_depend_on_entity_scores_only_with_entity_logits(entity_logits):
    """Shift the entity class head: the entity scores change; the scores of fixed pairs
    change with them only when the entity logits are part of the pair input."""
    nlp, pipe, _ = initialized(model={"entity_logits": entity_logits})
    docs = [nlp.make_doc(RELATION_SENTENCES[3][0])]
    spans = pipe._batch(docs, [[]]).spans
    pairs = numpy.asarray([[0, 40], [40, 0], [3, 7]])
    ops = pipe.model.ops

    def scores():
        scored = pipe.model.predict((docs, spans))
        relation_scores = scored.score_pairs(pairs).relation_scores
        return ops.to_numpy(scored.entity_scores).copy(), ops.to_numpy(relation_scores).copy()

    entity_before, relation_before = scores()
    head = pipe.model.get_ref("entity_classes")
    weights = head.get_param("W")
    head.set_param("W", weights + ops.asarray2f(numpy.random.default_rng(0).normal(size=weights.shape).astype("f")))
    entity_after, relation_after = scores()
    assert not numpy.allclose(entity_before, entity_after)
    assert numpy.allclose(relation_before, relation_after) == (not entity_logits)


@pytest.mark.parametrize("iou_scaling", [True, False])
def test_iou_scaling_switch_on_hand_computed_values(iou_scaling):
    """With ranking_weight = 0 the entity loss is the identification loss alone: Eq. 13
    with delta 0.25, or without IoU scaling the plain BCE of Eq. 4."""
    _, pipe, _ = initialized(iou_scaling=iou_scaling, ranking_weight=0.0)
    logits = numpy.asarray([[0.5], [-1.0], [2.0]], dtype="f")
    targets = numpy.asarray([0, -1, -1])  # a Disease span and two negatives
    eniou = numpy.asarray([1.0, 0.5, 0.0], dtype="f")
    scores, mask = numpy.zeros((3, 3), dtype="f"), numpy.ones(3, dtype=bool)
    # the scores and logits are model outputs (device arrays in the GPU tier); the
    # targets, mask and IoUs are built on the host, as get_loss passes them
    ops = pipe.model.ops
    loss, _, d_logits = pipe._stage_loss("entities", ops.asarray2f(scores), ops.asarray2f(logits), targets, mask, eniou)
    p = [1 / (1 + math.exp(-z)) for z in logits[:, 0].tolist()]
    if iou_scaling:
        expected = (-0.75 * math.log(p[0]) - 0.25 * 1.5 * math.log(1 - p[1]) - 0.25 * 1.0 * math.log(1 - p[2])) / 3
        gradient = [-0.75 * (1 - p[0]) / 3, 0.375 * p[1] / 3, 0.25 * p[2] / 3]
    else:
        expected = (-math.log(p[0]) - math.log(1 - p[1]) - math.log(1 - p[2])) / 3
        gradient = [(p[0] - 1) / 3, p[1] / 3, p[2] / 3]
    assert loss == pytest.approx(expected, rel=1e-5)
    assert d_logits[:, 0].tolist() == pytest.approx(gradient, rel=1e-5)


def test_iou_scaling_reaches_the_training_loss():
    losses = {}
    for iou_scaling in (True, False):
        nlp, _, examples = initialized(iou_scaling=iou_scaling)
        numpy.random.seed(0)
        losses[iou_scaling] = nlp.update(examples, losses={})["bioner_relations"]
    assert losses[True] != pytest.approx(losses[False], rel=1e-3)


@pytest.fixture(scope="module")
def trained_single_task():
    """multitask = false (SpERT): softmax with a none class, trained like `trained`."""
    nlp = make_nlp(multitask=False)
    return train(nlp, relations_examples(nlp, RELATION_SENTENCES)), relations_examples(nlp, RELATION_SENTENCES)


def test_single_task_has_a_none_class_and_overfits(trained_single_task):
    nlp, examples = trained_single_task
    pipe = nlp.get_pipe("bioner_relations")
    assert pipe.model.get_ref("entity_classes").get_dim("nO") == len(pipe.labels) + 1
    assert pipe.model.get_ref("relation_classes").get_dim("nO") == len(pipe.relation_labels) + 1
    scores = nlp.evaluate(examples)
    assert scores["spans_bioner_relations_f"] == 1.0
    assert scores["rel_strict_micro_f"] == 1.0
    text = "Rash was noted after penicillin and fever after ibuprofen ."
    expected = {(0, 1, "Effect", 4, 5, "Drug", "ADE"), (6, 7, "Effect", 8, 9, "Drug", "ADE")}
    assert relation_set(nlp(text)) == expected
    # a class wins by beating the none class (scores are probabilities); theta is unused
    pipe.cfg["threshold"] = 2.0
    doc = nlp(text)
    assert relation_set(doc) == expected
    assert all(0.0 < r.score <= 1.0 for r in doc._.relations)


def test_decide_rules_on_hand_computed_rows():
    scores = numpy.asarray([[0.9, 0.2], [0.1, 0.5], [-1.0, 3.0]], dtype="f")
    identification = numpy.asarray([[-2.0], [0.0], [4.0]], dtype="f")
    best, confidence, keep = relation_extractor.decide(scores, identification, True, "score", 0.85)
    assert best.tolist() == [0, 1, 1]
    assert numpy.allclose(confidence, [0.9, 0.5, 3.0])
    assert keep.tolist() == [True, False, True]
    best, confidence, keep = relation_extractor.decide(scores, identification, True, "identification", 0.85)
    assert best.tolist() == [0, 1, 1]
    assert numpy.allclose(confidence, [1 / (1 + math.exp(2.0)), 0.5, 1 / (1 + math.exp(-4.0))])
    assert keep.tolist() == [False, True, True]
    # without multitask, column 0 is "none": kept when a type beats it
    best, confidence, keep = relation_extractor.decide(scores, identification, False, "score", 0.85)
    assert best.tolist() == [0, 0, 0]
    assert keep.tolist() == [False, True, True]


@pytest.mark.parametrize("decision", ["score", "identification"])
def test_decision_setting_drives_prediction(decision):
    """Force one head to accept every span and the other to reject every span: only
    the head the decision names is followed."""
    nlp, pipe, _ = initialized(decision=decision)
    ops = pipe.model.ops
    classes, identification = pipe.model.get_ref("entity_classes"), pipe.model.get_ref("entity_identification")
    classes.set_param("b", ops.asarray1f(numpy.full(classes.get_dim("nO"), 100.0, dtype="f")))
    identification.set_param("b", ops.asarray1f(numpy.full(identification.get_dim("nO"), -100.0, dtype="f")))
    doc = nlp("Aspirin induced Reye syndrome .")
    assert len(doc.spans["bioner_relations"]) == (15 if decision == "score" else 0)


@pytest.mark.parametrize("decision", ["score", "identification"])
def test_collapsed_model_never_exceeds_max_pairs(decision):
    """A model that accepts every span (both heads' biases forced high) pairs at most
    max_pairs entities per doc, the most confident ones, in training and prediction."""
    nlp, pipe, examples = initialized(decision=decision, max_pairs=12, train_on_predicted=True)
    ops = pipe.model.ops
    for ref in ("entity_classes", "entity_identification"):
        layer = pipe.model.get_ref(ref)
        layer.set_param("b", ops.asarray1f(numpy.full(layer.get_dim("nO"), 100.0, dtype="f")))
    texts = [" ".join(f"w{i}" for i in range(n)) for n in (3, 9, 40)]
    docs = [nlp.make_doc(text) for text in texts]
    batch, _, pair_scores = pipe.predict(docs)
    pairs = ops.to_numpy(pair_scores.pairs).reshape((-1, 2))
    pair_docs = numpy.searchsorted(batch.offsets, pairs[:, 0], side="right") - 1
    # 3 tokens: 6 candidates, 4 kept (4 * 3 = 12 pairs); longer docs: 4 kept too
    assert numpy.bincount(pair_docs, minlength=3).tolist() == [12, 12, 12]
    for doc in nlp.pipe(texts):
        assert len(doc._.relations) <= 12
    seen = []
    original = relation_extractor.sample_pairs

    def spy(*args):
        pairs, targets = original(*args)
        seen.append(len(pairs))
        return pairs, targets

    long_examples = [Example(nlp.make_doc(text), nlp.make_doc(text)) for text in texts]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(relation_extractor, "sample_pairs", spy)
        nlp.update(long_examples, losses={})
    assert seen and seen[0] <= 3 * 12


@pytest.mark.parametrize("allow_overlap", [True, False])
def test_allow_overlap_false_keeps_and_pairs_non_overlapping_entities(allow_overlap):
    """A model that accepts every span and pair predicts overlapping entities; without
    allow_overlap each doc keeps a non-overlapping selection and pairs only those."""
    nlp, pipe, _ = initialized(allow_overlap=allow_overlap)
    ops = pipe.model.ops
    for ref in ("entity_classes", "entity_identification", "relation_classes", "relation_identification"):
        layer = pipe.model.get_ref(ref)
        layer.set_param("b", ops.asarray1f(numpy.full(layer.get_dim("nO"), 100.0, dtype="f")))
    doc = nlp("Aspirin caused rash .")  # 10 spans, 90 pairs: all paired
    entities = [(span.start, span.end) for span in doc.spans["bioner_relations"]]
    overlapping = any(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(entities) for b in entities[i + 1 :])
    assert overlapping == allow_overlap
    assert len(entities) == (4 * 5 // 2 if allow_overlap else len(set(entities)))
    if not allow_overlap:
        assert sum(end - start for start, end in entities) == len(doc)
        assert doc._.relations
        assert {(r.head.start, r.head.end) for r in doc._.relations} <= set(entities)
        assert {(r.tail.start, r.tail.end) for r in doc._.relations} <= set(entities)


def test_settings_named_as_in_0_1_are_read_with_their_0_1_meaning(tmp_path):
    """0.1 called the loss weights alpha and beta and the ENS beta ens_beta: a complete
    0.1 config (as every saved 0.1 pipeline has) is renamed, a mixed one is an error."""
    old = {"alpha": 0.5, "beta": 2.0, "ens_beta": 0.99, "scheme": "ens"}
    cfg = make_nlp(**old).get_pipe("bioner_relations").cfg
    assert (cfg["identification_weight"], cfg["ranking_weight"], cfg["beta"]) == (0.5, 2.0, 0.99)
    assert "alpha" not in cfg and "ens_beta" not in cfg
    with pytest.raises(ValueError, match="identification_weight"):
        make_nlp(alpha=0.5)
    nlp = make_nlp(**old)
    nlp.initialize(lambda: relations_examples(nlp, RELATION_SENTENCES))
    nlp.to_disk(tmp_path)
    loaded = spacy.load(tmp_path).get_pipe("bioner_relations").cfg
    assert (loaded["identification_weight"], loaded["ranking_weight"], loaded["beta"]) == (0.5, 2.0, 0.99)


def test_pipeline_saved_by_0_1_loads_with_todays_setting_names():
    path = Path(__file__).parent / "fixtures" / "pipeline_v0_1" / "relations"
    saved = json.loads((path / "bioner_relations" / "cfg").read_text())
    assert {"alpha", "beta", "ens_beta"} <= set(saved)
    cfg = spacy.load(path).get_pipe("bioner_relations").cfg
    assert cfg["identification_weight"] == saved["alpha"]
    assert cfg["ranking_weight"] == saved["beta"]
    assert cfg["beta"] == saved["ens_beta"]
    assert "alpha" not in cfg and "ens_beta" not in cfg


@pytest.mark.parametrize("train_on_predicted", [True, False])
def test_train_on_predicted_adds_pairs_of_predicted_entities(train_on_predicted):
    """With every span accepted by the entity stage, training pairs include candidate
    spans (predicted entities) only with train_on_predicted; else only gold entities."""
    nlp, pipe, examples = initialized(train_on_predicted=train_on_predicted)
    ops = pipe.model.ops
    layer = pipe.model.get_ref("entity_classes")
    layer.set_param("b", ops.asarray1f(numpy.full(layer.get_dim("nO"), 100.0, dtype="f")))
    seen, batches = [], []
    original, original_batch = relation_extractor.sample_pairs, relation_extractor.span_batch

    def spy(data, golds, rows, *args):
        seen.append(rows)
        return original(data, golds, rows, *args)

    def spy_batch(*args):
        batches.append(original_batch(*args))
        return batches[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(relation_extractor, "sample_pairs", spy)
        patch.setattr(relation_extractor, "span_batch", spy_batch)
        nlp.update(examples[:2], losses={})
    batch = batches[0]
    candidate_rows = {
        row for start, n in zip(batch.offsets.tolist(), batch.n_candidates.tolist()) for row in range(start, start + n)
    }
    used = set(numpy.concatenate(seen[0]).tolist())
    assert used >= set(numpy.concatenate(batch.arguments).tolist())
    assert bool(used & candidate_rows) == train_on_predicted
