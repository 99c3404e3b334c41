"""`bioner_ents_to_spans`: copy doc.ents into a span group, so that a component that
only writes doc.ents (spaCy's `ner`, an `entity_ruler`) can be an ensemble member
whose predictions later components cannot overwrite."""

from spacy.language import Language
from spacy.tokens import Doc


@Language.factory("bioner_ents_to_spans", assigns=["doc.spans"], default_config={"spans_key": "ner"})
def make_ents_to_spans(nlp: Language, name: str, spans_key: str) -> "EntsToSpans":
    return EntsToSpans(spans_key)


class EntsToSpans:
    def __init__(self, spans_key: str):
        self.spans_key = spans_key

    def __call__(self, doc: Doc) -> Doc:
        doc.spans[self.spans_key] = list(doc.ents)
        return doc
