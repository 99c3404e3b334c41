"""Strict entity-level precision, recall and F1, micro-averaged and per type.

An entity is ``(start_char, end_char, label)``: a prediction counts only if its
boundaries and its type both match a gold entity. Character offsets make the score
independent of tokenization, as in spaCy's own span scorer.
"""
from collections import Counter
from typing import Any, Callable, Dict, Hashable, Iterable, Optional, Set, Tuple

from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

Entity = Tuple[int, int, str]


def prf(n_correct: int, n_predicted: int, n_gold: int) -> Dict[str, float]:
    """Precision, recall and F1 from counts (0.0 where undefined)."""
    p = n_correct / n_predicted if n_predicted else 0.0
    r = n_correct / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"p": p, "r": r, "f": f}


def score_sets(pairs: Iterable[Tuple[Set[Hashable], Set[Hashable]]], label_of=lambda item: item[-1]) -> Dict[str, Any]:
    """Micro P/R/F and per-label P/R/F over (predicted, gold) sets, one pair per document."""
    correct, predicted, gold = Counter(), Counter(), Counter()
    for pred_items, gold_items in pairs:
        predicted.update(label_of(item) for item in pred_items)
        gold.update(label_of(item) for item in gold_items)
        correct.update(label_of(item) for item in pred_items & gold_items)
    micro = prf(sum(correct.values()), sum(predicted.values()), sum(gold.values()))
    per_type = {
        label: prf(correct[label], predicted[label], gold[label]) for label in sorted(set(predicted) | set(gold))
    }
    return {**micro, "per_type": per_type}


def doc_entities(doc: Doc, spans_key: Optional[str] = None) -> Set[Entity]:
    """The entities of a doc as character-offset triples, from doc.ents or a span group."""
    spans = doc.ents if spans_key is None else doc.spans.get(spans_key, [])
    return {(span.start_char, span.end_char, span.label_) for span in spans}


def gold_entities(doc: Doc, spans_key: Optional[str] = None) -> Set[Entity]:
    """Gold entities: the span group `spans_key` if the reference has it, else doc.ents."""
    if spans_key is not None and spans_key in doc.spans:
        return doc_entities(doc, spans_key)
    return doc_entities(doc)


def score_entities(
    examples: Iterable[Example], pred_key: Optional[str] = None, gold_key: Optional[str] = None, prefix: str = "ents"
) -> Dict[str, Any]:
    """spaCy-style scores `{prefix}_p/_r/_f/_per_type` for predicted vs reference entities.

    pred_key: read predictions from this span group instead of doc.ents.
    gold_key: read gold entities from this span group when the reference has it.
    """
    scores = score_sets((doc_entities(eg.predicted, pred_key), gold_entities(eg.reference, gold_key)) for eg in examples)
    return {
        f"{prefix}_p": scores["p"],
        f"{prefix}_r": scores["r"],
        f"{prefix}_f": scores["f"],
        f"{prefix}_per_type": scores["per_type"],
    }


@registry.scorers("spacy_bioner.entity_scorer.v1")
def make_entity_scorer(spans_key: Optional[str] = None) -> Callable[..., Dict[str, Any]]:
    """Scorer for doc.ents (keys ents_*), or for a span group when spans_key is given
    (keys spans_{key}_*, gold from the reference's group or, failing that, its ents)."""

    def score(examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        if spans_key is None:
            return score_entities(examples)
        return score_entities(examples, spans_key, spans_key, prefix=f"spans_{spans_key}")

    return score
