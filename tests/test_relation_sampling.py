"""The relation extractor's pure batching, sampling and pairing functions, and its
prediction rule."""

import numpy
import pytest
from thinc.api import NumpyOps

from spacy_bioner.components.relation_extractor import decide, without_overlap
from spacy_bioner.layers.spans import enumerate_spans
from spacy_bioner.relation_sampling import (
    Gold,
    all_pairs,
    candidate_rows,
    entities_for_pairs,
    entity_targets,
    kept_entities,
    non_overlapping,
    sample_pairs,
    span_batch,
)

OPS = NumpyOps()


@pytest.mark.parametrize("doc_length,max_length", [(1, 10), (7, 3), (12, 10), (30, 1)])
def test_candidate_rows_index_the_enumeration(doc_length, max_length):
    data = OPS.to_numpy(enumerate_spans([doc_length], max_length, OPS).dataXd)
    rows = candidate_rows(data[:, 0], data[:, 1], doc_length, max_length)
    assert rows.tolist() == list(range(len(data)))


def test_span_batch_puts_extras_after_each_docs_candidates():
    batch = span_batch([3, 2], [[(0, 2, "Drug")], [(1, 2, "Effect"), (0, 1, "Drug")]], 2, OPS)
    assert batch.n_candidates.tolist() == [5, 3]
    assert batch.offsets.tolist() == [0, 6]
    assert [batch.data[rows].tolist() for rows in batch.arguments] == [[[0, 2]], [[1, 2], [0, 1]]]
    assert batch.extra_labels == [["Drug"], ["Effect", "Drug"]]
    assert OPS.to_numpy(batch.spans.lengths).tolist() == [6, 5]


def test_entity_targets_mark_gold_and_a_bounded_sample_of_negatives():
    gold = Gold(numpy.asarray([[0, 2], [5, 6]]), numpy.asarray([1, 0]), {})
    batch = span_batch([8], [[]], 3, OPS)
    targets, mask, eniou = entity_targets(batch, [gold], 3, 4, numpy.random.default_rng(0))
    spans = [tuple(span) for span in batch.data.tolist()]
    assert targets[spans.index((0, 2))] == 1 and targets[spans.index((5, 6))] == 0
    assert (targets >= 0).sum() == 2
    assert mask.sum() == 2 + 4 and mask[targets >= 0].all()
    assert eniou[spans.index((0, 2))] == 1.0 and eniou[spans.index((0, 1))] == 0.5
    assert eniou[spans.index((3, 4))] == 0.0


def test_sample_pairs_keeps_every_positive_and_draws_distinct_negatives():
    data = numpy.asarray([[i, i + 1] for i in range(12)], dtype="int32")
    relations = {(0, 1, 3, 4): 2, (5, 6, 0, 1): 0}
    gold = Gold(data[[0, 3, 5]], numpy.zeros(3, dtype="int64"), relations)
    rows = [numpy.arange(12)]
    pairs, targets = sample_pairs(data, [gold], rows, 20, numpy.random.default_rng(0))
    keys = [tuple(data[h].tolist() + data[t].tolist()) for h, t in pairs]
    assert dict(zip(keys[:2], targets[:2].tolist())) == relations
    assert (targets[2:] == -1).all() and len(pairs) == 2 + 20
    assert (pairs[:, 0] != pairs[:, 1]).all()
    assert len(set(keys)) == len(keys)
    assert not set(keys[2:]) & set(relations)


def test_sample_pairs_with_few_entities_takes_every_pair():
    data = numpy.asarray([[0, 1], [2, 3], [4, 5]], dtype="int32")
    gold = Gold(data, numpy.zeros(3, dtype="int64"), {(0, 1, 2, 3): 0})
    pairs, targets = sample_pairs(data, [gold], [numpy.arange(3)], 100, numpy.random.default_rng(1))
    assert len(pairs) == 6 and (targets >= 0).sum() == 1


@pytest.mark.parametrize("max_pairs,expected", [(2, 2), (5, 2), (6, 3), (1000, 32), (9900, 100)])
def test_entities_for_pairs(max_pairs, expected):
    k = entities_for_pairs(max_pairs)
    assert k == expected and k * (k - 1) <= max_pairs < (k + 1) * k


def test_kept_entities_bound_the_pairs_and_keep_the_most_confident():
    batch = span_batch([40, 5], [[], []], 4, OPS)
    n = len(batch.data)
    confidence = numpy.linspace(0.0, 1.0, n)
    rows = kept_entities(batch, confidence, numpy.ones(n, dtype=bool), 100, 20)
    assert [len(doc_rows) for doc_rows in rows] == [5, 5]
    first_doc = numpy.arange(batch.n_candidates[0])
    assert sorted(rows[0].tolist()) == first_doc[-5:].tolist()
    assert all(len(all_pairs(batch.data, [doc_rows])) <= 20 for doc_rows in rows)


def test_non_overlapping_keeps_the_most_confident_then_longest_spans_per_doc():
    # doc 0: 4 tokens, spans up to 2 tokens; doc 1: 3 tokens plus one extra span
    batch = span_batch([4, 3], [[], [(0, 3, "Drug")]], 2, OPS)
    spans = [tuple(span) for span in batch.data.tolist()]
    confidence = numpy.zeros(len(spans))
    keep = numpy.zeros(len(spans), dtype=bool)

    def mark(row, score):
        confidence[row] = score
        keep[row] = True

    first = batch.offsets[1]
    mark(spans.index((2, 3)), 0.95)  # doc 0: beats the overlapping (1, 3)
    mark(spans.index((1, 3)), 0.9)
    mark(spans.index((0, 2)), 0.5)  # overlaps only the dropped (1, 3): kept
    mark(spans.index((3, 4)), 0.2)
    mark(first + spans[first:].index((0, 1)), 0.7)  # doc 1: equal scores, the longer wins
    mark(first + spans[first:].index((0, 2)), 0.7)
    extra = int(batch.arguments[1][0])
    keep[extra] = True  # an extra span overlaps doc 1's kept one and stays
    selected = non_overlapping(batch, confidence[:, None], keep)
    assert sorted(spans[row] for row in numpy.flatnonzero(selected[:first])) == [(0, 2), (2, 3), (3, 4)]
    assert sorted(spans[row] for row in numpy.flatnonzero(selected[first:]) + first) == [(0, 2), (0, 3)]
    assert selected[extra]
    assert keep.sum() == 7  # the input is not changed


def test_non_overlapping_compares_priorities_column_by_column():
    batch = span_batch([3], [[]], 3, OPS)
    spans = [tuple(span) for span in batch.data.tolist()]
    rows = [spans.index(span) for span in ((0, 1), (0, 3), (1, 2))]
    keep = numpy.zeros(len(spans), dtype=bool)
    keep[rows] = True
    priorities = numpy.zeros((len(spans), 2))
    priorities[rows] = [[1.0, 0.1], [0.0, 0.9], [1.0, 0.2]]  # the first column decides
    selected = non_overlapping(batch, priorities, keep)
    assert sorted(spans[row] for row in numpy.flatnonzero(selected)) == [(0, 1), (1, 2)]


def test_without_overlap_prefers_entities_in_relations_and_drops_relations_of_dropped_ones():
    batch = span_batch([4, 4], [[], []], 2, OPS)
    spans = [tuple(span) for span in batch.data.tolist()]
    second = int(batch.offsets[1])

    def row(doc, span):
        return spans.index(span) if doc == 0 else second + spans[second:].index(span)

    confidence = numpy.zeros(len(spans))
    keep = numpy.zeros(len(spans), dtype=bool)
    for doc, span, score in [
        (0, (0, 2), 0.9),  # the most confident, but in no kept relation: loses to (1, 2)
        (0, (1, 2), 0.6),
        (0, (3, 4), 0.5),
        (1, (0, 2), 0.9),  # both overlapping spans are related: the more confident wins
        (1, (1, 2), 0.95),
        (1, (3, 4), 0.5),
    ]:
        confidence[row(doc, span)], keep[row(doc, span)] = score, True
    pairs = numpy.asarray(
        [
            [row(0, (0, 2)), row(0, (3, 4))],
            [row(0, (1, 2)), row(0, (3, 4))],
            [row(1, (0, 2)), row(1, (3, 4))],
            [row(1, (1, 2)), row(1, (3, 4))],
        ]
    )
    keep_relation = numpy.asarray([False, True, True, True])
    selected, kept_relations = without_overlap(batch, confidence, keep, pairs, keep_relation)
    assert sorted(spans[r] for r in numpy.flatnonzero(selected[:second])) == [(1, 2), (3, 4)]
    assert sorted(spans[r] for r in numpy.flatnonzero(selected[second:]) + second) == [(1, 2), (3, 4)]
    assert kept_relations.tolist() == [False, True, False, True]


def test_all_pairs_skips_self_pairs_and_duplicate_spans():
    data = numpy.asarray([[0, 1], [2, 3], [0, 1]], dtype="int32")
    pairs = all_pairs(data, [numpy.asarray([0, 1, 2])])
    assert sorted(map(tuple, pairs.tolist())) == [(0, 1), (1, 0)]


def test_decide_rules():
    scores = numpy.asarray([[0.9, 0.1], [0.2, 0.5], [3.0, 1.0]], dtype="f")
    identification = numpy.asarray([[-2.0], [1.0], [0.0]], dtype="f")
    best, confidence, keep = decide(scores, identification, True, "score", 0.85)
    assert best.tolist() == [0, 1, 0] and keep.tolist() == [True, False, True]
    best, confidence, keep = decide(scores, identification, True, "identification", 0.85)
    assert best.tolist() == [0, 1, 0] and keep.tolist() == [False, True, True]
    assert confidence[2] == pytest.approx(0.5)
    none_first = numpy.asarray([[2.0, 0.0, 1.0], [0.0, 3.0, 1.0]], dtype="f")
    best, _, keep = decide(none_first, identification[:2], False, "score", 0.85)
    assert best.tolist() == [1, 0] and keep.tolist() == [False, True]
