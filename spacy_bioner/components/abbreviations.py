"""`bioner_abbreviations`: label every mention of an abbreviation the way its
definition's long form is labelled.

A document defines "hereditary nonpolyposis colorectal cancer ( HNPCC )" once and then
writes "HNPCC" alone; a tagger that recognises the long form often misses the bare
short form, which it cannot tell from a gene symbol without the definition. This
component, placed after any component that writes entities (`bioner_tagger`, spaCy's
`ner`, `bioner_ensemble`), finds the definitions whose long form is an entity and adds
an entity of the same label at every other occurrence of the short form that no
entity overlaps, to that component's span group (with its scores) and to doc.ents.
Mentions the model found are never removed or changed.

It needs documents, not sentences: an abstract is one Doc (see `convert --n-sents`).
"""

from typing import List, Optional

from spacy.language import Language
from spacy.tokens import Doc, Span, SpanGroup

from ..abbreviations import defined_short_forms, occurrences
from ..entity_writing import select_non_overlapping


@Language.factory(
    "bioner_abbreviations",
    assigns=["doc.ents", "doc.spans"],
    default_config={"spans_key": None, "set_ents": True, "max_short_form_chars": 10},
)
def make_abbreviations(
    nlp: Language, name: str, spans_key: Optional[str], set_ents: bool, max_short_form_chars: int
) -> "AbbreviationPropagator":
    """spans_key: the span group whose entities define and receive the short forms
        (e.g. "bioner_tagger"); None: doc.ents.
    set_ents: also add the new entities to doc.ents (where no entity overlaps).
    max_short_form_chars: the longest short form, in characters without spaces."""
    if max_short_form_chars < 2:
        raise ValueError(f"{name}: max_short_form_chars must be at least 2, got {max_short_form_chars}")
    if spans_key is None and not set_ents:
        raise ValueError(f"{name}: with spans_key = null (read doc.ents) set_ents must be true, or nothing is written")
    return AbbreviationPropagator(spans_key, set_ents, max_short_form_chars)


class AbbreviationPropagator:
    def __init__(self, spans_key: Optional[str] = None, set_ents: bool = True, max_short_form_chars: int = 10):
        self.spans_key = spans_key
        self.set_ents = set_ents
        self.max_short_form_chars = max_short_form_chars

    def __call__(self, doc: Doc) -> Doc:
        if self.spans_key is None:
            entities = list(doc.ents)
        elif self.spans_key in doc.spans:
            entities = list(doc.spans[self.spans_key])
        else:
            return doc
        taken = [False] * len(doc)
        for entity in entities:
            taken[entity.start : entity.end] = [True] * len(entity)
        added: List[Span] = []
        sources: List[Span] = []
        for words, long_form in defined_short_forms(doc, entities, self.max_short_form_chars).items():
            for start, end in occurrences(doc, words):
                if not any(taken[start:end]):
                    added.append(Span(doc, start, end, label=long_form.label))
                    sources.append(long_form)
                    taken[start:end] = [True] * (end - start)
        if added and self.spans_key is not None:
            self._extend_group(doc, added, sources)
        if added and self.set_ents:
            # The existing entities first, then the new ones where they do not overlap.
            ents = list(doc.ents)
            doc.ents = select_non_overlapping(ents + added, [(1,)] * len(ents) + [(0,)] * len(added))
        return doc

    def _extend_group(self, doc: Doc, added: List[Span], sources: List[Span]) -> None:
        """Append the new spans to the group; each copies its long form's per-span
        attributes (such as the score)."""
        group = doc.spans[self.spans_key]
        index = {(span.start, span.end, span.label): i for i, span in enumerate(group)}
        extended = SpanGroup(doc, name=group.name, spans=list(group) + added)
        for name, values in group.attrs.items():
            if isinstance(values, list) and len(values) == len(group):
                values = values + [values[index[(s.start, s.end, s.label)]] for s in sources]
            extended.attrs[name] = values
        doc.spans[self.spans_key] = extended
