"""Relations between entity spans: the `Relation` type and the `Doc._.relations`
extension.

The values live in ``doc.user_data[RELATIONS_KEY]`` as plain rows of ints, strings and
floats ``[head_start, head_end, head_label, tail_start, tail_end, tail_label, label,
score]`` (token offsets, end exclusive), so ``DocBin(store_user_data=True)``,
``to_bytes``, pickling and ``nlp.pipe(n_process=2)`` keep them. Gold relations for
training live in the same place on ``Example.reference``. Importing this module
registers the extension.
"""

from typing import Iterable, List, NamedTuple, Sequence, Tuple, Union

from spacy.tokens import Doc, Span

RELATIONS_KEY = "spacy_bioner.relations"


class Relation(NamedTuple):
    """A directed, labelled relation from `head` to `tail`."""

    head: Span
    tail: Span
    label: str
    score: float = 1.0


RelationLike = Union[Relation, Tuple[Span, Span, str], Tuple[Span, Span, str, float]]


def get_relations(doc: Doc) -> List[Relation]:
    return [
        Relation(Span(doc, hs, he, label=hl), Span(doc, ts, te, label=tl), label, score)
        for hs, he, hl, ts, te, tl, label, score in doc.user_data.get(RELATIONS_KEY, [])
    ]


def set_relations(doc: Doc, relations: Iterable[RelationLike]) -> None:
    rows = []
    for relation in relations:
        head, tail, label, score = Relation(*relation)
        for role, span in (("head", head), ("tail", tail)):
            if not isinstance(span, Span) or span.doc is not doc:
                raise ValueError(f"The {role} of relation {label!r} must be a Span of the same Doc")
        rows.append([head.start, head.end, head.label_, tail.start, tail.end, tail.label_, str(label), float(score)])
    doc.user_data[RELATIONS_KEY] = rows


def relation_rows(doc: Doc) -> Sequence[list]:
    """The stored rows, without building Span objects (for scoring)."""
    return doc.user_data.get(RELATIONS_KEY, [])


if not Doc.has_extension("relations"):
    Doc.set_extension("relations", getter=get_relations, setter=set_relations)
