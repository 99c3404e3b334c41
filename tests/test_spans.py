import random
import tracemalloc
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example
from thinc.api import NumpyOps
from thinc.types import Ragged

from spacy_bioner.components.spans import NEGATIVE, decide
from spacy_bioner.layers.spans import (
    SpanRepresentation,
    backprop_range_max,
    count_spans,
    enumerate_spans,
    limit_width,
    range_max,
)
from spacy_bioner.scoring import score_entities

from .pipelines import spans_examples
from .util import tiny_tok2vec

ROOT = Path(__file__).resolve().parents[1]
OPS = NumpyOps()

# Nested and overlapping entities: "BRCA1" inside "BRCA1 gene", "kidney injury" inside
# "Cisplatin induced kidney injury", "lung" inside "lung cancer", and a drug that
# overlaps an adverse effect.
NESTED = [
    ("Mutations in the BRCA1 gene cause breast cancer .", [(3, 5, "Gene"), (3, 4, "Gene"), (6, 8, "Disease")]),
    ("Cisplatin induced kidney injury was severe .", [(0, 1, "Drug"), (0, 4, "Disease"), (2, 4, "Disease")]),
    ("Patients with lung cancer received cisplatin .", [(2, 4, "Disease"), (2, 3, "Organ"), (5, 6, "Drug")]),
    ("No adverse events were seen .", []),
]


def model_config(**settings):
    return {"@architectures": "spacy_bioner.SpanClassifier.v1", "tok2vec": tiny_tok2vec(), **settings}


def make_nlp(model=None, **config):
    nlp = spacy.blank("en")
    nlp.add_pipe("bioner_spans", config={"model": model or model_config(), **config})
    return nlp


def train(nlp, examples, n_iter=60):
    random.seed(0)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(n_iter):
        random.shuffle(examples)
        nlp.update(examples, sgd=optimizer, drop=0.0)
    return nlp


def span_triples(doc, key="bioner_spans"):
    return sorted((s.start, s.end, s.label_) for s in doc.spans[key])


@pytest.fixture(scope="module", params=[["boundary"], ["boundary", "maxpool", "width"]], ids=["paper", "all-parts"])
def trained(request):
    spacy.util.fix_random_seed(0)
    nlp = make_nlp(model_config(representation=request.param, hidden_size=16 if len(request.param) > 1 else 0))
    examples = spans_examples(nlp, NESTED)
    return train(nlp, examples), examples


# Candidate enumeration -----------------------------------------------------------------


@pytest.mark.parametrize("lengths,max_length", [([5], 3), ([1, 0, 4, 7], 32), ([0], 2), ([40, 3], 32), ([], 4)])
def test_enumerates_every_span_up_to_max_length_in_order(lengths, max_length):
    spans = enumerate_spans(lengths, max_length, OPS)
    expected = [(s, e) for n in lengths for s in range(n) for e in range(s + 1, min(n, s + max_length) + 1)]
    assert [tuple(row) for row in spans.dataXd.reshape((-1, 2)).tolist()] == expected
    assert spans.lengths.tolist() == count_spans(lengths, max_length).tolist()


def test_limit_width_caps_a_spacy_suggester():
    nlp = spacy.blank("en")
    docs = [nlp.make_doc("a b c d e"), nlp.make_doc(""), nlp.make_doc("f g")]
    suggester = spacy.registry.misc.get("spacy.ngram_suggester.v1")(sizes=[1, 2, 4])
    capped = limit_width(suggester(docs, ops=OPS), 2, OPS)
    widths = capped.dataXd[:, 1] - capped.dataXd[:, 0]
    assert capped.lengths.tolist() == [5 + 4, 0, 2 + 1]
    assert set(widths.tolist()) == {1, 2}


@pytest.mark.parametrize(
    "suggester,max_span_length,widths",
    [
        ({"@misc": "spacy.ngram_suggester.v1", "sizes": [1, 3]}, 32, {1, 3}),
        ({"@misc": "spacy.ngram_range_suggester.v1", "min_size": 1, "max_size": 5}, 2, {1, 2}),
        ({"@misc": "spacy_bioner.all_spans_suggester.v1", "max_length": 4}, 32, {1, 2, 3, 4}),
    ],
)
def test_component_takes_a_registered_suggester_capped_by_max_span_length(suggester, max_span_length, widths):
    nlp = make_nlp(suggester=suggester, max_span_length=max_span_length)
    spans = nlp.get_pipe("bioner_spans").suggest([nlp.make_doc("a b c d e f")])
    assert set((spans.dataXd[:, 1] - spans.dataXd[:, 0]).tolist()) == widths


# Span representation -------------------------------------------------------------------


def test_range_max_and_its_gradient_match_brute_force():
    rng = numpy.random.default_rng(0)
    X = rng.normal(size=(40, 5)).astype("f")
    starts = rng.integers(0, 40, 100).astype("i")
    ends = numpy.minimum(starts + rng.integers(0, 20, 100), 40).astype("i")
    Y, which = range_max(OPS, X, starts, ends)
    dY = rng.normal(size=Y.shape).astype("f")
    dX = backprop_range_max(OPS, dY, which, len(X))
    expected_dX = numpy.zeros_like(X)
    for i, (s, e) in enumerate(zip(starts, ends)):
        if e == s:
            assert not Y[i].any()
            continue
        assert numpy.array_equal(Y[i], X[s:e].max(axis=0))
        expected_dX[s + X[s:e].argmax(axis=0), numpy.arange(5)] += dY[i]
    assert numpy.allclose(dX, expected_dX, atol=1e-6)


def test_span_representation_gradient_matches_finite_differences():
    rng = numpy.random.default_rng(1)
    layer = SpanRepresentation(["boundary", "maxpool", "width"], width_size=3, max_width=2)
    ops = layer.ops  # the current ops: CupyOps in the GPU tier
    X = Ragged(ops.asarray2f(rng.normal(size=(7, 4)).astype("f")), ops.asarray1i([3, 4]))
    spans = enumerate_spans([3, 4], 3, ops)
    layer.initialize(X=(X, spans))
    assert layer.get_dim("nO") == 2 * 4 + 4 + 3
    output, backprop = layer.begin_update((X, spans))
    assert output.shape == (int(count_spans([3, 4], 3).sum()), 15)
    weights = ops.asarray2f(rng.normal(size=output.shape).astype("f"))
    dX = ops.to_numpy(backprop(weights)[0].dataXd)
    eps = 1e-3
    for i, j in [(0, 0), (2, 3), (4, 1), (6, 2)]:
        shifted = []
        for sign in (1, -1):
            data = X.dataXd.copy()
            data[i, j] += sign * eps
            shifted.append(float((layer.predict((Ragged(data, X.lengths), spans)) * weights).sum()))
        assert dX[i, j] == pytest.approx((shifted[0] - shifted[1]) / (2 * eps), rel=1e-2, abs=1e-2)


# Training and prediction ---------------------------------------------------------------


def test_overfits_tiny_nested_set_to_perfect_span_f1(trained):
    nlp, examples = trained
    predicted = [Example(nlp(eg.reference.text), eg.reference) for eg in examples]
    scores = score_entities(predicted, pred_key="bioner_spans", gold_key="bioner_spans", prefix="spans")
    assert scores["spans_f"] == 1.0
    assert nlp.evaluate(examples)["spans_bioner_spans_f"] == 1.0
    doc = nlp("Mutations in the BRCA1 gene cause breast cancer .")
    assert span_triples(doc) == [(3, 4, "Gene"), (3, 5, "Gene"), (6, 8, "Disease")]
    scores = doc.spans["bioner_spans"].attrs["scores"]
    assert len(scores) == 3 and all(0.5 < score <= 1.0 for score in scores)


def test_disk_round_trip_and_pipe_give_identical_predictions(trained, tmp_path):
    nlp, examples = trained
    texts = [eg.reference.text for eg in examples]
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    original_cfg, loaded_cfg = nlp.get_pipe("bioner_spans").cfg, loaded.get_pipe("bioner_spans").cfg
    assert loaded_cfg["class_weights"] == pytest.approx(original_cfg["class_weights"])
    assert loaded_cfg["labels"] == original_cfg["labels"]
    for text, piped, reloaded in zip(texts, nlp.pipe(texts, batch_size=2), loaded.pipe(texts)):
        single = nlp(text)
        assert span_triples(single) == span_triples(piped) == span_triples(reloaded)
        scores = single.spans["bioner_spans"].attrs["scores"]
        assert scores == pytest.approx(piped.spans["bioner_spans"].attrs["scores"])
        assert scores == pytest.approx(reloaded.spans["bioner_spans"].attrs["scores"])


def test_empty_doc_and_doc_shorter_than_max_span_length(trained):
    nlp, _ = trained
    pipe = nlp.get_pipe("bioner_spans")
    empty, short = nlp(""), nlp("BRCA1 gene")
    assert len(empty.spans["bioner_spans"]) == 0 and len(empty.ents) == 0
    assert pipe.suggest([short]).dataXd.tolist() == [[0, 1], [0, 2], [1, 2]]
    assert all(span.end <= 2 for span in short.spans["bioner_spans"])
    assert [len(doc.spans["bioner_spans"]) for doc in nlp.pipe(["", "", ""])] == [0, 0, 0]


def test_long_doc_has_linear_number_of_candidates_and_bounded_memory(trained):
    nlp, _ = trained
    pipe = nlp.get_pipe("bioner_spans")
    doc = nlp.make_doc(" ".join(["cisplatin"] * 5000))
    candidates = pipe.suggest([doc])
    assert candidates.dataXd.shape == (32 * 5000 - 32 * 31 // 2, 2)
    tracemalloc.start()
    doc = nlp(doc)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    representation_bytes = candidates.dataXd.shape[0] * pipe.model.get_ref("span_vectors").get_dim("nO") * 4
    assert peak < 3 * representation_bytes
    assert all(len(span) <= 32 for span in doc.spans["bioner_spans"])


def test_set_ents_writes_a_non_overlapping_selection(trained):
    nlp, _ = trained
    pipe = nlp.get_pipe("bioner_spans")
    pipe.cfg["set_ents"] = True
    try:
        doc = nlp("Cisplatin induced kidney injury was severe .")
    finally:
        pipe.cfg["set_ents"] = False
    group = doc.spans["bioner_spans"]
    assert len(group) == 3
    ents = [(e.start, e.end, e.label_) for e in doc.ents]
    assert 0 < len(ents) < 3 and set(ents) < set(span_triples(doc))
    taken = {i for start, end, _ in ents for i in range(start, end)}
    assert sum(end - start for start, end, _ in ents) == len(taken)
    best = max(range(len(group)), key=lambda i: group.attrs["scores"][i])
    assert (group[best].start, group[best].end, group[best].label_) in ents
    assert all(taken & set(range(span.start, span.end)) for span in group)


def test_lower_threshold_keeps_a_superset_of_spans(trained):
    nlp, _ = trained
    pipe = nlp.get_pipe("bioner_spans")
    text = "Patients with breast cancer received cisplatin ."
    default = set(span_triples(nlp(text)))
    pipe.cfg["threshold"] = 0.01
    try:
        lenient = set(span_triples(nlp(text)))
    finally:
        pipe.cfg["threshold"] = None
    assert default < lenient


def test_decide_argmax_and_threshold():
    probs = numpy.asarray([[0.5, 0.3, 0.2], [0.2, 0.7, 0.1], [0.4, 0.1, 0.5]], dtype="f")
    classes, confidence, keep = decide(probs, None)
    assert classes.tolist() == [1, 1, 2] and keep.tolist() == [False, True, True]
    assert confidence.tolist() == pytest.approx([0.3, 0.7, 0.5])
    assert decide(probs, 0.25)[2].tolist() == [True, True, True]
    assert decide(probs, 0.6)[2].tolist() == [False, True, False]


# Gold data, sampling, weights ----------------------------------------------------------


def test_factory_default_is_the_recipe_and_the_paper_is_a_setting():
    """`add_pipe` without a config gives configs/spans.cfg's classifier (boundary, max-pool
    and width parts, a hidden layer), which the benchmark chose; the paper's linear
    classifier over [u_b; u_e] is two settings away."""
    recipe = spacy.blank("en").add_pipe("bioner_spans").model
    assert list(recipe.get_ref("span_vectors").attrs["parts"]) == ["boundary", "maxpool", "width"]
    assert recipe.layers[-1] is not recipe.get_ref("output")  # a hidden layer before it
    paper = {"representation": ["boundary"], "hidden_size": 0}
    linear = spacy.blank("en").add_pipe("bioner_spans", config={"model": paper}).model
    assert list(linear.get_ref("span_vectors").attrs["parts"]) == ["boundary"]
    assert linear.layers[-1] is linear.get_ref("output")


def test_gold_from_ents_when_no_span_group():
    spacy.util.fix_random_seed(0)
    nlp = make_nlp()
    flat = [("Aspirin induced Reye syndrome .", [(0, 1, "Chemical"), (2, 4, "Disease")])]
    examples = []
    for text, spans in flat:
        reference = Doc(nlp.vocab, words=text.split())
        reference.ents = [Span(reference, s, e, label=label) for s, e, label in spans]
        examples.append(Example(nlp.make_doc(text), reference))
    nlp.initialize(lambda: examples)
    pipe = nlp.get_pipe("bioner_spans")
    assert pipe.labels == ("Chemical", "Disease")
    assert pipe.cfg["class_counts"] == {NEGATIVE: 15 - 2, "Chemical": 1, "Disease": 1}


def test_negative_sampling_keeps_positives_and_caps_negatives():
    spacy.util.fix_random_seed(0)
    nlp = make_nlp(negatives_per_doc=4)
    examples = spans_examples(nlp, NESTED)
    nlp.initialize(lambda: examples)
    pipe = nlp.get_pipe("bioner_spans")
    n_positive = sum(len(spans) for _, spans in NESTED)
    assert pipe.cfg["class_counts"][NEGATIVE] == 4 * len(NESTED)
    assert sum(pipe.cfg["class_counts"].values()) == n_positive + 4 * len(NESTED)
    spans = pipe.suggest([eg.predicted for eg in examples])
    targets = pipe._targets(examples, spans)
    kept, kept_targets = pipe._sample_negatives(spans, targets)
    assert kept.lengths.tolist() == [len(s) + 4 for _, s in NESTED]
    assert (kept_targets != 0).sum() == n_positive and (kept_targets == 0).sum() == 4 * len(NESTED)
    losses = nlp.update(examples, sgd=None)
    assert losses["bioner_spans"] > 0


def test_scheme_none_and_explicit_class_weights():
    nlp = make_nlp(scheme="none")
    examples = spans_examples(nlp, NESTED)
    nlp.initialize(lambda: examples)
    assert set(nlp.get_pipe("bioner_spans").cfg["class_weights"].values()) == {1.0}
    nlp = make_nlp(class_weights={NEGATIVE: 0.1, "Gene": 1.0})
    with pytest.raises(ValueError, match="missing classes: \\['Disease', 'Drug', 'Organ'\\]"):
        nlp.initialize(lambda: spans_examples(nlp, NESTED))


def test_type_not_given_is_a_clear_error():
    nlp = make_nlp()
    examples = spans_examples(nlp, NESTED)
    with pytest.raises(ValueError, match="example 1 has entity type 'Drug'"):
        nlp.get_pipe("bioner_spans").initialize(lambda: examples, nlp=nlp, labels=["Gene", "Disease", "Organ"])


@pytest.mark.parametrize(
    "config,message",
    [
        ({"max_span_length": 0}, "max_span_length must be a positive integer; got 0"),
        ({"model": model_config(representation=["boundary", "centroid"])}, "unknown: \\['centroid'\\]"),
        ({"model": model_config(representation=[])}, "Invalid span representation"),
        ({"negatives_per_doc": 0}, "negatives_per_doc must be a positive integer"),
        ({"threshold": 1.5}, "threshold must be in \\(0, 1\\]"),
        ({"scheme": "focal"}, "unknown setting scheme = 'focal'"),
    ],
)
def test_invalid_config_is_a_clear_error(config, message):
    with pytest.raises(ValueError, match=message):
        make_nlp(**config)


def test_config_file_builds_the_pipeline_with_a_listener():
    config = spacy.util.load_config(ROOT / "configs" / "spans.cfg")
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    assert nlp.pipe_names == ["tok2vec", "bioner_spans"]
    pipe = nlp.get_pipe("bioner_spans")
    assert pipe.cfg["max_span_length"] == 32 and pipe.model.get_ref("span_vectors").attrs["parts"] == (
        "boundary",
        "maxpool",
        "width",
    )
    assert nlp.get_pipe("tok2vec").listening_components == ["bioner_spans"]
