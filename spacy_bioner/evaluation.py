"""Evaluating a pipeline on gold documents: strict P/R/F per type, error categories
counted once, and an HTML page listing every error in its sentence."""

import html
from typing import Any, Dict, List, Optional, Sequence

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example

from .datasets import mark
from .relations import relation_rows
from .scoring import categorize_errors, count_errors, doc_entities, gold_entities, score_entities, score_relations


def predict_examples(
    nlp: Language,
    references: Sequence[Doc],
    batch_size: int = 256,
    dataset: Optional[str] = None,
    gold_key: Optional[str] = None,
) -> List[Example]:
    """Run the pipeline over the raw text of each reference doc, as `spacy evaluate` does.

    dataset: mark every doc as coming from this dataset, annotated with the entity types
        of the gold entities in `references` (read as `gold_key` says), as
        spacy_bioner.MultiCorpus.v1 marks training data, so that a component instructed
        per dataset and type (the LLM tagger) tags only those types, with that
        dataset's instruction.
    """
    docs = [nlp.make_doc(doc.text) for doc in references]
    if dataset is not None:
        entity_types = sorted({label for doc in references for _, _, label in gold_entities(doc, gold_key)})
        for doc in docs:
            mark(doc, dataset, entity_types)
    predictions = nlp.pipe(docs, batch_size=batch_size)
    return [Example(pred, ref) for pred, ref in zip(predictions, references)]


def evaluate_examples(
    examples: Sequence[Example], pred_key: Optional[str] = None, gold_key: Optional[str] = None
) -> Dict[str, Any]:
    """Scores and error counts of predicted vs reference entities.

    pred_key: read predictions from this span group instead of doc.ents.
    gold_key: read gold entities from this span group where the reference has it.
    With gold relations, `relations` holds :func:`~spacy_bioner.scoring.score_relations`.
    """
    pairs = [(doc_entities(eg.predicted, pred_key), gold_entities(eg.reference, gold_key)) for eg in examples]
    scores = score_entities(examples, pred_key, gold_key)
    relations = score_relations(examples) if any(relation_rows(eg.reference) for eg in examples) else None
    return {
        "p": scores["ents_p"],
        "r": scores["ents_r"],
        "f": scores["ents_f"],
        "per_type": scores["ents_per_type"],
        "errors": count_errors(pairs),
        "n_docs": len(examples),
        "n_gold": sum(len(gold) for _, gold in pairs),
        "n_predicted": sum(len(pred) for pred, _ in pairs),
        **({"relations": relations} if relations is not None else {}),
    }


def format_table(results: Dict[str, Any]) -> str:
    """Per-type P/R/F and the error counts as plain-text tables."""
    lines = [f"{'type':<24}{'P':>8}{'R':>8}{'F1':>8}"]
    for label, prf in results["per_type"].items():
        lines.append(f"{label:<24}{100 * prf['p']:>8.2f}{100 * prf['r']:>8.2f}{100 * prf['f']:>8.2f}")
    lines.append(f"{'ALL (micro)':<24}{100 * results['p']:>8.2f}{100 * results['r']:>8.2f}{100 * results['f']:>8.2f}")
    categories = list(results["errors"]["total"])
    lines += ["", "errors (each counted once)", f"{'type':<24}" + "".join(f"{c:>{len(c) + 2}}" for c in categories)]
    for label, counts in list(results["errors"]["per_type"].items()) + [("ALL", results["errors"]["total"])]:
        lines.append(f"{label:<24}" + "".join(f"{counts[c]:>{len(c) + 2}}" for c in categories))
    if "relations" in results:
        lines += ["", *format_relation_table(results["relations"])]
    return "\n".join(lines)


def format_relation_table(scores: Dict[str, Any]) -> List[str]:
    """Relation P/R/F per type and micro/macro, in SpERT's strict and boundaries settings."""
    lines = []
    for prefix, title in (
        ("rel_strict", "relations, strict (spans, entity types, relation type)"),
        ("rel", "relations, boundaries (spans, relation type)"),
    ):
        lines += [title, f"{'type':<24}{'P':>8}{'R':>8}{'F1':>8}"]
        rows = list(scores[f"{prefix}_per_type"].items())
        rows += [
            (f"ALL ({avg})", {k: scores[f"{prefix}_{avg}_{k}"] for k in ("p", "r", "f")}) for avg in ("micro", "macro")
        ]
        for label, prf in rows:
            lines.append(f"{label:<24}{100 * prf['p']:>8.2f}{100 * prf['r']:>8.2f}{100 * prf['f']:>8.2f}")
        lines.append("")
    return lines[:-1]


def _mark(text: str, entity, css: str) -> str:
    start, end, label = entity
    return (
        html.escape(text[:start])
        + f'<mark class="{css}">{html.escape(text[start:end])}<sup>{html.escape(label)}</sup></mark>'
        + html.escape(text[end:])
    )


def errors_html(examples: Sequence[Example], pred_key: Optional[str] = None, gold_key: Optional[str] = None) -> str:
    """A self-contained HTML page with one row per error: category, the prediction and
    the gold entity, each marked in its sentence."""
    rows = []
    for i, eg in enumerate(examples):
        text = eg.reference.text
        errors = categorize_errors(doc_entities(eg.predicted, pred_key), gold_entities(eg.reference, gold_key))
        for category, predicted, gold in errors:
            pred_cell = _mark(eg.predicted.text, predicted, "pred") if predicted else "&mdash;"
            gold_cell = _mark(text, gold, "gold") if gold else "&mdash;"
            rows.append(f"<tr><td>{i}</td><td>{category}</td><td>{pred_cell}</td><td>{gold_cell}</td></tr>")
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>spacy-bioner errors</title><style>"
        "body{font-family:sans-serif}td{vertical-align:top;padding:4px;border-bottom:1px solid #ddd}"
        "mark.pred{background:#fdd}mark.gold{background:#dfd}sup{font-size:70%;margin-left:2px}"
        "</style></head><body><h1>Errors</h1><table><tr><th>doc</th><th>category</th>"
        "<th>prediction</th><th>gold</th></tr>" + "".join(rows) + "</table></body></html>"
    )
