"""Writing predicted entities to a Doc: the contract every predicting component follows.

Predictions go to ``doc.spans[key]`` (overlaps allowed) with one score per span in
``attrs["scores"]``; with ``set_ents`` a non-overlapping selection goes to ``doc.ents``.
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple

from spacy.tokens import Doc, Span, SpanGroup


def greedy_non_overlapping(bounds: Sequence[Tuple[int, int]], priorities: Sequence[Tuple[float, ...]]) -> List[int]:
    """The indices of a non-overlapping selection of token spans (start, end), chosen
    greedily: highest priority first (tuples compare in order), then longest, then
    leftmost. The one rule behind doc.ents, the relation extractor's entities and the
    entity dictionary's matches."""
    order = sorted(
        range(len(bounds)),
        key=lambda i: (tuple(-p for p in priorities[i]), bounds[i][0] - bounds[i][1], bounds[i][0]),
    )
    taken = set()
    chosen = []
    for i in order:
        tokens = range(*bounds[i])
        if not taken.intersection(tokens):
            chosen.append(i)
            taken.update(tokens)
    return chosen


def select_non_overlapping(spans: Sequence[Span], priorities: Sequence[Tuple[float, ...]]) -> List[Span]:
    """The spans that :func:`greedy_non_overlapping` selects, in document order."""
    chosen = greedy_non_overlapping([(span.start, span.end) for span in spans], priorities)
    return sorted((spans[i] for i in chosen), key=lambda span: span.start)


def write_entities(
    doc: Doc,
    key: str,
    spans: Sequence[Span],
    scores: Sequence[float],
    set_ents: bool,
    priorities: Optional[Sequence[Tuple[float, ...]]] = None,
    attrs: Optional[Dict[str, Sequence[Any]]] = None,
) -> None:
    """Store spans and their scores in doc.spans[key] (plus any other per-span `attrs`)
    and, if set_ents, a non-overlapping selection of them in doc.ents (replacing what
    was there), chosen by `priorities` (default: the score)."""
    if len(spans) != len(scores):
        raise ValueError(f"Got {len(spans)} spans but {len(scores)} scores for span group {key!r}")
    group = SpanGroup(doc, name=key, spans=list(spans))
    group.attrs["scores"] = [float(score) for score in scores]
    for name, values in (attrs or {}).items():
        group.attrs[name] = list(values)
    doc.spans[key] = group
    if set_ents:
        doc.ents = select_non_overlapping(spans, priorities or [(score,) for score in scores])
