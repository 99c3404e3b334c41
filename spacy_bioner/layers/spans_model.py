"""The `spacy_bioner.SpanClassifier.v1` architecture: tok2vec >> span representation >>
label scores (entity types plus the negative class)."""

from typing import List, Optional, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Linear, Model, Relu, chain, list2ragged, with_getitem
from thinc.types import Floats2d, Ragged

from .spans import SpanRepresentation


@registry.architectures("spacy_bioner.SpanClassifier.v1")
def build_span_classifier_model(
    tok2vec: Model[List[Doc], List[Floats2d]],
    representation: List[str] = ["boundary"],
    width_size: int = 25,
    max_width: int = 32,
    hidden_size: int = 0,
    nO: Optional[int] = None,
) -> Model[Tuple[List[Doc], Ragged], Floats2d]:
    """Unnormalised label scores for candidate spans (SpanPred, Verma, Bergler & Tahaei 2023, section 4.3).

    Input: the docs and their candidate spans (a Ragged of doc-local (start, end) rows,
    one group per doc, as spaCy's suggesters return). Output: one row per span.
    representation: any of "boundary" ([u_b; u_e], the paper's choice), "maxpool" and
        "width" (a learned width embedding, as in SpERT); parts are concatenated.
    width_size, max_width: width embedding size (SpERT: 25) and the widest span with its
        own embedding row (wider spans share the last row).
    hidden_size: 0 for a linear classifier (the paper), else one ReLU hidden layer.
    nO: number of classes (entity types + 1); set by the component's initialize.
    """
    if hidden_size < 0:
        raise ValueError(f"hidden_size must be >= 0 (0 = linear classifier); got {hidden_size}")
    span_vectors = SpanRepresentation(representation, width_size=width_size, max_width=max_width)
    output = Linear(nO=nO)
    classifier = chain(Relu(nO=hidden_size, dropout=0.0), output) if hidden_size else output
    model = chain(with_getitem(0, chain(tok2vec, list2ragged())), span_vectors, classifier)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("span_vectors", span_vectors)
    model.set_ref("output", output)
    return model
