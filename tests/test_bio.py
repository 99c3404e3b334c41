import pytest

from spacy_bioner.bio import iob_to_spans, spans_to_iob, split_tag, tag_inventory


def test_tag_inventory_orders_o_then_b_i_per_type():
    assert tag_inventory(["Chemical", "Disease"]) == ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]


def test_iob_and_iobes_read_alike():
    iob = ["B-D", "I-D", "O", "B-C", "B-C", "I-C", "I-C"]
    iobes = ["B-D", "E-D", "O", "S-C", "B-C", "I-C", "E-C"]
    expected = [(0, 2, "D"), (3, 4, "C"), (4, 7, "C")]
    assert iob_to_spans(iob) == expected
    assert iob_to_spans(iobes) == expected
    assert spans_to_iob(expected, 7) == iob
    assert spans_to_iob(expected, 7, "iobes") == iobes


def test_stray_inside_tag_starts_a_new_entity():
    assert iob_to_spans(["O", "I-D", "I-D", "I-C", "O"]) == [(1, 3, "D"), (3, 4, "C")]


def test_entity_at_the_end_is_closed():
    assert iob_to_spans(["O", "B-D"]) == [(1, 2, "D")]


@pytest.mark.parametrize("tag", ["I-", "B", "X-Disease", "BI-Disease", "-Disease"])
def test_invalid_tags_are_rejected(tag):
    with pytest.raises(ValueError, match="Invalid tag"):
        split_tag(tag)


def test_overlapping_spans_cannot_be_tagged():
    with pytest.raises(ValueError, match="Overlapping"):
        spans_to_iob([(0, 2, "A"), (1, 3, "B")], 4)
