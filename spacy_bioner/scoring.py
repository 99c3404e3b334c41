"""Strict entity-level precision, recall and F1, micro-averaged and per type; relation
P/R/F in SpERT's strict and boundaries settings.

An entity is ``(start_char, end_char, label)``: a prediction counts only if its
boundaries and its type both match a gold entity. Character offsets make the score
independent of tokenization, as in spaCy's own span scorer.
"""

from collections import Counter
from typing import Any, Callable, Dict, Hashable, Iterable, List, Optional, Set, Tuple

from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from .relations import relation_rows

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
    scores = score_sets(
        (doc_entities(eg.predicted, pred_key), gold_entities(eg.reference, gold_key)) for eg in examples
    )
    return {
        f"{prefix}_p": scores["p"],
        f"{prefix}_r": scores["r"],
        f"{prefix}_f": scores["f"],
        f"{prefix}_per_type": scores["per_type"],
    }


def entity_score(examples: Iterable[Example], spans_key: Optional[str] = None) -> Dict[str, Any]:
    """Strict scores of doc.ents (keys ents_*), or of the span group `spans_key` (keys
    spans_{key}_*, gold from the reference's group or, failing that, its ents)."""
    if spans_key is None:
        return score_entities(examples)
    return score_entities(examples, spans_key, spans_key, prefix=f"spans_{spans_key}")


class BoundScorer:
    """`score(examples, spans_key)` bound to a span group key. spaCy calls a component's
    scorer with the component's cfg as keyword arguments; they are ignored. A class
    rather than a closure, so that components holding it can be pickled (as
    nlp.pipe(n_process=...) does where worker processes are spawned)."""

    def __init__(self, score: Callable[..., Dict[str, Any]], spans_key: Optional[str]) -> None:
        self.score = score
        self.spans_key = spans_key

    def __call__(self, examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        return self.score(examples, self.spans_key)


@registry.scorers("spacy_bioner.entity_scorer.v1")
def make_entity_scorer(spans_key: Optional[str] = None) -> Callable[..., Dict[str, Any]]:
    """Scorer for doc.ents (keys ents_*), or for a span group when spans_key is given
    (keys spans_{key}_*, gold from the reference's group or, failing that, its ents)."""
    return BoundScorer(entity_score, spans_key)


ERROR_TYPES = ("false_positive", "false_negative", "wrong_label", "wrong_boundary", "wrong_label_and_boundary")


def _overlaps(a: Entity, b: Entity) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def categorize_errors(
    predicted: Set[Entity], gold: Set[Entity]
) -> List[Tuple[str, Optional[Entity], Optional[Entity]]]:
    """Every error of one document, counted once (the FairEval idea).

    Exact matches are correct. The rest are paired one-to-one, in this order: same
    boundaries with another label (wrong_label), overlapping with the same label
    (wrong_boundary), overlapping with another label (wrong_label_and_boundary);
    what stays unpaired is a false_positive (prediction) or false_negative (gold).
    Returns (category, predicted entity or None, gold entity or None) triples.
    """
    pred_left = sorted(predicted - gold)
    gold_left = sorted(gold - predicted)
    errors: List[Tuple[str, Optional[Entity], Optional[Entity]]] = []
    rules = (
        ("wrong_label", lambda p, g: p[:2] == g[:2]),
        ("wrong_boundary", lambda p, g: p[2] == g[2] and _overlaps(p, g)),
        ("wrong_label_and_boundary", lambda p, g: p[2] != g[2] and _overlaps(p, g)),
    )
    for category, matches in rules:
        for p in list(pred_left):
            partner = next((g for g in gold_left if matches(p, g)), None)
            if partner is not None:
                errors.append((category, p, partner))
                pred_left.remove(p)
                gold_left.remove(partner)
    errors += [("false_positive", p, None) for p in pred_left]
    errors += [("false_negative", None, g) for g in gold_left]
    return errors


def count_errors(pairs: Iterable[Tuple[Set[Entity], Set[Entity]]]) -> Dict[str, Any]:
    """Error counts per category, overall and per (gold, else predicted) entity type."""
    total = Counter({category: 0 for category in ERROR_TYPES})
    per_type: Dict[str, Counter] = {}
    for predicted, gold in pairs:
        for category, p, g in categorize_errors(predicted, gold):
            label = (g or p)[2]
            total[category] += 1
            per_type.setdefault(label, Counter({c: 0 for c in ERROR_TYPES}))[category] += 1
    return {"total": dict(total), "per_type": {label: dict(c) for label, c in sorted(per_type.items())}}


def macro_prf(per_type: Dict[str, Dict[str, float]]) -> Dict[str, float]:
    """Unweighted means of the per-type P, R and F1 (SpERT's macro average)."""
    if not per_type:
        return {"p": 0.0, "r": 0.0, "f": 0.0}
    return {key: sum(scores[key] for scores in per_type.values()) / len(per_type) for key in ("p", "r", "f")}


def doc_relations(doc: Doc, strict: bool) -> Set[Tuple]:
    """The relations of a doc as character-offset tuples ending in the relation type:
    head and tail boundaries, plus their entity types when `strict`."""
    relations = set()
    for hs, he, hl, ts, te, tl, label, _ in relation_rows(doc):
        head, tail = doc[hs:he], doc[ts:te]
        head_key = (head.start_char, head.end_char, hl) if strict else (head.start_char, head.end_char)
        tail_key = (tail.start_char, tail.end_char, tl) if strict else (tail.start_char, tail.end_char)
        relations.add((*head_key, *tail_key, label))
    return relations


def score_relations(examples: Iterable[Example]) -> Dict[str, Any]:
    """Relation P/R/F in SpERT's two settings, micro and macro over relation types:
    ``rel_*`` (boundaries: spans and relation type correct) and ``rel_strict_*`` (also
    both entity types), e.g. rel_micro_f, rel_macro_f, rel_strict_micro_f, rel_per_type."""
    examples = list(examples)
    results: Dict[str, Any] = {}
    for prefix, strict in (("rel", False), ("rel_strict", True)):
        scores = score_sets(
            (doc_relations(eg.predicted, strict), doc_relations(eg.reference, strict)) for eg in examples
        )
        macro = macro_prf(scores["per_type"])
        for key in ("p", "r", "f"):
            results[f"{prefix}_micro_{key}"] = scores[key]
            results[f"{prefix}_macro_{key}"] = macro[key]
        results[f"{prefix}_per_type"] = scores["per_type"]
    return results


@registry.scorers("spacy_bioner.relation_scorer.v1")
def make_relation_scorer(spans_key: Optional[str] = None) -> Callable[..., Dict[str, Any]]:
    """Scorer of a joint entity and relation component: strict entity P/R/F (micro,
    macro and per type) of doc.ents or of the span group `spans_key` (keys ents_* or
    spans_{key}_*, as make_entity_scorer, plus *_macro_p/r/f) and the relation scores of
    :func:`score_relations`."""
    return BoundScorer(relation_score, spans_key)


def relation_score(examples: Iterable[Example], spans_key: Optional[str] = None) -> Dict[str, Any]:
    """The scores of :func:`make_relation_scorer`."""
    examples = list(examples)
    prefix = "ents" if spans_key is None else f"spans_{spans_key}"
    scores = entity_score(examples, spans_key)
    macro = macro_prf(scores[f"{prefix}_per_type"])
    scores.update({f"{prefix}_macro_{key}": macro[key] for key in ("p", "r", "f")})
    scores.update(score_relations(examples))
    return scores
