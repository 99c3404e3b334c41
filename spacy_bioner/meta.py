"""Training data for the learned Meta filter (Verma, Bergler & Tahaei 2023, sections 4.6-4.7).

Each prediction becomes one short text: the entity type as a prompt, then the sentence
(at most CONTEXT_TOKENS tokens on either side) with markers around the predicted span,
e.g. ``disease Bob has [e] HIV [/e] and flu``, with the category KEEP (the prediction is
correct) or DROP. Optionally the members' vote pattern and scores are prepended as
feature words (``votes_2 m0_0.9 m1_none``).
"""

import random
from pathlib import Path
from typing import Iterable, Iterator, List, Sequence, Tuple

from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from .voting import Vote, tally

KEEP, DROP = "KEEP", "DROP"
START_MARKER, END_MARKER = "[e]", "[/e]"
# Tokens of context kept on each side of a prediction. Every sentence of the corpora
# fits (NCBI-disease's longest has 123 tokens), so sentence-level inputs are the paper's;
# on a long document each input stays short, and the filter's cost grows with the number
# of predictions, not with predictions x document length.
CONTEXT_TOKENS = 128


def marked_text(doc: Doc, start: int, end: int, label: str, features: str = "", context: int = CONTEXT_TOKENS) -> str:
    """The filter's input for the prediction doc[start:end] with type `label`: the span
    between markers, with at most `context` tokens of the doc before and after it."""
    first, last = max(start - context, 0), min(end + context, len(doc))
    before = doc[first:start].text_with_ws if start > first else ""
    after = doc[end:last].text if last > end else ""
    parts = [features, label.lower(), before + START_MARKER, doc[start:end].text, END_MARKER, after]
    return " ".join(part.strip() for part in parts if part.strip())


def vote_features(vote: Vote) -> str:
    """Feature words for the vote pattern and the members' scores (one decimal)."""
    words = [f"votes_{vote.votes}"]
    for i, (voted, score) in enumerate(zip(vote.members, vote.member_scores)):
        words.append(f"m{i}_{score:.1f}" if voted else f"m{i}_none")
    return " ".join(words)


def member_predictions(doc: Doc, sources: Sequence[str]) -> List[dict]:
    """Each source's predictions on `doc` as {(start, end, label): score}; a missing
    source is a ValueError naming it (spaCy reports a KeyError from a component as
    "not initialized")."""
    members = []
    for key in sources:
        if key == "ents":
            members.append({(e.start, e.end, e.label_): 1.0 for e in doc.ents})
            continue
        if key not in doc.spans:
            raise ValueError(
                f"Span group {key!r} is missing from the doc (sources: {list(sources)}; doc has {list(doc.spans)})"
            )
        group = doc.spans[key]
        scores = group.attrs.get("scores") or [1.0] * len(group)
        members.append({(s.start, s.end, s.label_): float(score) for s, score in zip(group, scores)})
    return members


def filter_samples(
    predicted: Iterable[Doc], gold: Sequence[Doc], sources: Sequence[str], extra_features: bool
) -> Iterator[Tuple[str, bool]]:
    """(marked text, correct) for every member prediction on every doc; `predicted`
    and `gold` are the same documents in the same order."""
    for i, (doc, reference) in enumerate(zip(predicted, gold)):
        if doc.text != reference.text:
            raise ValueError(
                f"Predicted doc {i} does not match gold doc {i}: {doc.text[:60]!r} vs {reference.text[:60]!r}"
            )
        correct = {(e.start_char, e.end_char, e.label_) for e in reference.ents}
        for vote in tally(member_predictions(doc, sources)):
            start, end, label = vote.prediction
            span = doc[start:end]
            features = vote_features(vote) if extra_features else ""
            yield marked_text(doc, start, end, label, features), (span.start_char, span.end_char, label) in correct


def gold_samples(gold: Iterable[Doc]) -> Iterator[Tuple[str, bool]]:
    """Every gold entity of the training set, as a correct prediction."""
    for doc in gold:
        for entity in doc.ents:
            yield marked_text(doc, entity.start, entity.end, entity.label_), True


def write_filter_corpus(
    samples: Sequence[Tuple[str, bool]], vocab: Vocab, output_dir: Path, heldout: float = 0.15, seed: int = 0
) -> Tuple[int, int]:
    """Shuffle the samples, hold out a fraction for early stopping, and write
    train.spacy and dev.spacy of docs with cats KEEP/DROP. Returns the two sizes."""
    from spacy.lang.en import English

    tokenizer = English(vocab=vocab).tokenizer
    order = list(range(len(samples)))
    random.Random(seed).shuffle(order)
    n_dev = round(len(order) * heldout)
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, part in (("dev", order[:n_dev]), ("train", order[n_dev:])):
        # Added one at a time, keeping only what the filter reads (words, spaces, and
        # the tokenizer's norms): a corpus can hold millions of predictions.
        doc_bin = DocBin(attrs=["NORM"])
        for i in part:
            text, correct = samples[i]
            doc = tokenizer(text)
            doc.cats = {KEEP: float(correct), DROP: float(not correct)}
            doc_bin.add(doc)
        doc_bin.to_disk(output_dir / f"{name}.spacy")
    return len(order) - n_dev, n_dev
