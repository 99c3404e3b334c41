"""BIO (IOB2) and IOBES tag sequences <-> entity spans, and the tag inventory of a label set.

Pure functions with no spaCy import. A span is ``(start, end, label)`` with ``end``
exclusive, in token indices.

Repair rule for inconsistent input: an ``I-X`` (or IOBES ``E-X``) that does not continue
an entity of type ``X`` starts a new entity of type ``X``, as in conlleval and spaCy's
own converters. The taggers in this package never produce such sequences (decoding is
constrained to valid transitions), so the rule only matters for reading gold files.
"""

from typing import Iterable, List, Sequence, Tuple

Span = Tuple[int, int, str]
OUTSIDE = "O"


def tag_inventory(entity_types: Iterable[str]) -> List[str]:
    """The IOB2 tags for a set of entity types: O first, then B-X, I-X per type."""
    tags = [OUTSIDE]
    for label in entity_types:
        tags.extend((f"B-{label}", f"I-{label}"))
    return tags


def split_tag(tag: str) -> Tuple[str, str]:
    """Split 'B-Disease' into ('B', 'Disease'); 'O' into ('O', '')."""
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, sep, label = tag.partition("-")
    if not sep or not label or prefix not in "BIES" or len(prefix) != 1:
        raise ValueError(f"Invalid tag {tag!r}: expected 'O' or a prefix B/I/E/S, a dash and an entity type")
    return prefix, label


def iob_to_spans(tags: Sequence[str]) -> List[Span]:
    """Entity spans of an IOB2 or IOBES tag sequence (the two are read alike)."""
    spans: List[Span] = []
    start, label = -1, ""
    for i, tag in enumerate(tags):
        prefix, tag_label = split_tag(tag)
        continues = start >= 0 and tag_label == label and prefix in ("I", "E")
        if not continues and start >= 0:
            spans.append((start, i, label))
            start, label = -1, ""
        if prefix == OUTSIDE:
            continue
        if not continues:
            start, label = i, tag_label
        if prefix in ("E", "S"):
            spans.append((start, i + 1, label))
            start, label = -1, ""
    if start >= 0:
        spans.append((start, len(tags), label))
    return spans


def spans_to_iob(spans: Iterable[Span], length: int, scheme: str = "iob") -> List[str]:
    """Tag sequence of `length` tokens for non-overlapping spans, in 'iob' or 'iobes'."""
    if scheme not in ("iob", "iobes"):
        raise ValueError(f"Unknown tagging scheme {scheme!r}; valid: iob, iobes")
    tags = [OUTSIDE] * length
    for start, end, label in sorted(spans):
        if any(tag != OUTSIDE for tag in tags[start:end]):
            raise ValueError(f"Overlapping entity spans cannot be written as tags: {(start, end, label)}")
        for i in range(start, end):
            tags[i] = f"I-{label}"
        tags[start] = f"B-{label}"
        if scheme == "iobes":
            if end - start == 1:
                tags[start] = f"S-{label}"
            else:
                tags[end - 1] = f"E-{label}"
    return tags
