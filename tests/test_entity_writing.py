"""The one greedy rule that chooses non-overlapping entities (doc.ents, and the
relation extractor's entities with allow_overlap = false)."""

import spacy

from spacy_bioner.entity_writing import greedy_non_overlapping, select_non_overlapping


def test_highest_priority_wins_an_overlap():
    bounds = [(0, 2), (1, 3), (3, 4)]
    assert sorted(greedy_non_overlapping(bounds, [(0.2,), (0.9,), (0.1,)])) == [1, 2]


def test_priorities_compare_column_by_column():
    bounds = [(0, 2), (1, 3)]
    assert greedy_non_overlapping(bounds, [(1.0, 0.1), (0.0, 0.9)]) == [0]
    assert greedy_non_overlapping(bounds, [(1.0, 0.1), (1.0, 0.9)]) == [1]


def test_ties_go_to_the_longest_then_the_leftmost():
    assert greedy_non_overlapping([(1, 2), (0, 3)], [(0.5,), (0.5,)]) == [1]
    assert greedy_non_overlapping([(1, 3), (0, 2)], [(0.5,), (0.5,)]) == [1]


def test_select_non_overlapping_returns_spans_in_document_order():
    doc = spacy.blank("en")("a b c d e")
    spans = [doc[3:5], doc[0:2], doc[1:4]]
    chosen = select_non_overlapping(spans, [(0.9,), (0.8,), (0.5,)])
    assert [(span.start, span.end) for span in chosen] == [(0, 2), (3, 5)]
