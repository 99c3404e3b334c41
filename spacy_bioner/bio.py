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


TAGGINGS = ("iob", "iobes")


def tag_inventory(entity_types: Iterable[str], tagging: str = "iob") -> List[str]:
    """The tags for a set of entity types: O first, then per type B-X, I-X ('iob', IOB2)
    or B-X, I-X, E-X, S-X ('iobes': an entity's last token and one-token entities get
    tags of their own)."""
    if tagging not in TAGGINGS:
        raise ValueError(f"Unknown tagging {tagging!r}; valid: {', '.join(TAGGINGS)}")
    prefixes = "BIES" if tagging == "iobes" else "BI"
    tags = [OUTSIDE]
    for label in entity_types:
        tags.extend(f"{prefix}-{label}" for prefix in prefixes)
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
    if scheme not in TAGGINGS:
        raise ValueError(f"Unknown tagging scheme {scheme!r}; valid: {', '.join(TAGGINGS)}")
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
