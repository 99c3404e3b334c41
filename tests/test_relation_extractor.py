import pickle
import random

import numpy
import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example

from spacy_bioner.relations import Relation

from .conftest import tiny_tok2vec

# (text, entities (start, end, type), relations (head entity, tail entity, type))
RELATION_SENTENCES = [
    ("Aspirin induced Reye syndrome in children .", [(0, 1, "Drug"), (2, 4, "Effect")], [(1, 0, "ADE")]),
    ("Cisplatin causes acute kidney injury .", [(0, 1, "Drug"), (2, 5, "Effect")], [(1, 0, "ADE")]),
    ("No adverse events were seen .", [], []),
    ("Rash was noted after penicillin and fever after ibuprofen .", [(0, 1, "Effect"), (4, 5, "Drug"), (6, 7, "Effect"), (8, 9, "Drug")], [(0, 1, "ADE"), (2, 3, "ADE")]),
    ("Haloperidol was given ; neuroleptic malignant syndrome followed .", [(0, 1, "Drug"), (4, 7, "Effect")], [(1, 0, "ADE")]),
    ("Metformin treats diabetes .", [(0, 1, "Drug"), (2, 3, "Disease")], [(0, 1, "Treats")]),
]


def make_reference(vocab, text, entities, relations):
    doc = Doc(vocab, words=text.split())
    spans = [Span(doc, s, e, label=label) for s, e, label in entities]
    doc.ents = spans
    doc._.relations = [(spans[h], spans[t], label) for h, t, label in relations]
    return doc


def make_examples(nlp, sentences=RELATION_SENTENCES):
    return [Example(nlp.make_doc(text), make_reference(nlp.vocab, text, ents, rels)) for text, ents, rels in sentences]


def make_nlp(**config):
    nlp = spacy.blank("en")
    model = {"@architectures": "spacy_bioner.RelationExtractor.v1", "tok2vec": tiny_tok2vec(48), "dropout": 0.0}
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
    return train(nlp, make_examples(nlp)), make_examples(nlp)


def relation_set(doc):
    return {(r.head.start, r.head.end, r.head.label_, r.tail.start, r.tail.end, r.tail.label_, r.label) for r in doc._.relations}


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
    assert [(s.start, s.end, s.label_) for s in doc.spans["bioner_relations"]] == [(0, 1, "Effect"), (4, 5, "Drug"), (6, 7, "Effect"), (8, 9, "Drug")]


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
    assert [relation_set(doc) for doc in nlp.pipe(texts, n_process=2, batch_size=2)] == expected


def test_pipeline_serialization(trained, tmp_path):
    nlp, _ = trained
    text = RELATION_SENTENCES[3][0]
    expected = relation_set(nlp(text))
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert relation_set(loaded(text)) == expected
    assert relation_set(pickle.loads(pickle.dumps(nlp))(text)) == expected
    assert loaded.get_pipe("bioner_relations").label_data == {"entities": ["Disease", "Drug", "Effect"], "relations": ["ADE", "Treats"]}


def test_no_one_and_many_entities():
    nlp = make_nlp(negative_relations=120)
    many_text = " ".join(f"w{i}" for i in range(300))
    many = [(i, i + 1, "Drug" if i % 2 else "Effect") for i in range(300)]
    sentences = [RELATION_SENTENCES[2], ("Aspirin helps .", [(0, 1, "Drug")], []), (many_text, many, [(0, 1, "ADE")])]
    examples = make_examples(nlp, sentences)
    nlp.initialize(lambda: examples)
    pipe = nlp.get_pipe("bioner_relations")
    seen = []
    original = pipe._sample_pairs

    def spy(*args):
        pairs, targets = original(*args)
        seen.append((pairs, targets))
        return pairs, targets

    pipe._sample_pairs = spy
    losses = nlp.update(examples, losses={})
    assert numpy.isfinite(losses["bioner_relations"])
    pairs, targets = seen[0]
    # the one positive pair, and at most 120 negatives per doc out of 300 * 299 in the long one
    assert 121 <= len(pairs) <= 1 + 3 * 120
    assert (targets >= 0).sum() == 1
    for doc in nlp.pipe(["No adverse events were seen .", "Aspirin helps .", many_text]):
        assert isinstance(doc._.relations, list)


def test_use_ents_from_pairs_upstream_entities(trained):
    nlp, _ = trained
    pipe = nlp.get_pipe("bioner_relations")
    doc = nlp.make_doc("Rash was noted after penicillin and fever after ibuprofen .")
    doc.ents = [Span(doc, 0, 1, label="Effect"), Span(doc, 4, 5, label="Drug")]
    pipe.cfg["use_ents_from"] = "ents"
    try:
        doc = pipe(doc)
    finally:
        pipe.cfg["use_ents_from"] = None
    assert relation_set(doc) == {(0, 1, "Effect", 4, 5, "Drug", "ADE")}


def test_relation_to_missing_entity_names_the_document():
    nlp = make_nlp()
    examples = make_examples(nlp)
    reference = examples[1].reference
    head = Span(reference, 3, 5, label="Effect")  # not one of the gold entities
    reference._.relations = [(head, reference.ents[0], "ADE")]
    with pytest.raises(ValueError, match=r"example 1: the head of relation 'ADE'.*not a gold entity"):
        nlp.initialize(lambda: examples)


def test_unknown_labels_are_errors():
    nlp = make_nlp()
    examples = make_examples(nlp)
    pipe = nlp.get_pipe("bioner_relations")
    with pytest.raises(ValueError, match="relation type 'Treats'"):
        pipe.initialize(lambda: examples, labels={"entities": ["Drug", "Effect", "Disease"], "relations": ["ADE"]})


def test_convert_spert_round_trip_with_symmetric_types(tmp_path):
    import srsly
    from typer.testing import CliRunner

    from spacy_bioner.cli import app

    records = [{"tokens": ["Ann", "met", "Bob", "in", "Rome"], "entities": [{"type": "Peop", "start": 0, "end": 1}, {"type": "Peop", "start": 2, "end": 3}, {"type": "Loc", "start": 4, "end": 5}], "relations": [{"type": "Meet", "head": 0, "tail": 1}, {"type": "Live_In", "head": 1, "tail": 2}]}]
    srsly.write_json(tmp_path / "in.json", records)
    srsly.write_json(tmp_path / "types.json", {"entities": {}, "relations": {"Meet": {"symmetric": True}, "Live_In": {"symmetric": False}}})
    runner = CliRunner()
    result = runner.invoke(app, ["convert", "spert", str(tmp_path / "in.json"), str(tmp_path / "out.spacy"), "--spans-key", "bioner_relations", "--types", str(tmp_path / "types.json")])
    assert result.exit_code == 0, result.output
    doc = next(DocBin().from_disk(tmp_path / "out.spacy").get_docs(spacy.blank("en").vocab))
    assert relation_set(doc) == {(0, 1, "Peop", 2, 3, "Peop", "Meet"), (2, 3, "Peop", 0, 1, "Peop", "Meet"), (2, 3, "Peop", 4, 5, "Loc", "Live_In")}
    assert len(doc.spans["bioner_relations"]) == 3
    result = runner.invoke(app, ["convert", "spert", str(tmp_path / "out.spacy"), str(tmp_path / "back.json"), "--spans-key", "bioner_relations", "--types", str(tmp_path / "types.json")])
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
