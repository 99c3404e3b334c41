"""SpERT JSON <-> spaCy Docs.

A SpERT file is a JSON list of records ``{"tokens": [...], "entities": [{"type",
"start", "end"}], "relations": [{"type", "head", "tail"}]}`` with token offsets, ``end``
exclusive, and ``head``/``tail`` indexing the record's entity list (ADE and CoNLL04 in
../shared/data/re). Entities, nested or not, go to ``doc.spans[spans_key]`` (and
optionally a non-overlapping selection to ``doc.ents``); relations go to
``doc._.relations`` (plain data, see :mod:`spacy_bioner.relations`); an ``orig_id`` is
kept in ``doc.user_data["orig_id"]``.
"""

import json
from pathlib import Path
from typing import Any, Dict, Iterable, List, Set, Union

import srsly
from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

from ..entity_writing import write_entities
from ..relations import get_relations, set_relations
from .iob import CorpusFormatError, decode_text

# The span group the readers fill by default: the default key of `bioner_spans`, so the
# component finds its gold spans without further configuration.
DEFAULT_SPANS_KEY = "bioner_spans"


def read_spert(
    path: Union[str, Path], vocab: Vocab, spans_key: str = DEFAULT_SPANS_KEY, set_ents: bool = True
) -> List[Doc]:
    """One Doc per record of a SpERT JSON file.

    set_ents: also put a non-overlapping selection of the entities (longest first) in
        doc.ents, for components that cannot represent nesting.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such corpus file: {path}")
    try:
        records = json.loads(decode_text(path, path.read_bytes()))
    except json.JSONDecodeError as err:
        raise CorpusFormatError(path, err.lineno, f"invalid JSON ({err.msg}, column {err.colno})") from None
    if not isinstance(records, list):
        raise CorpusFormatError(path, 0, "expected a JSON list of records", unit="record")
    docs = []
    for index, record in enumerate(records):
        try:
            docs.append(record_to_doc(vocab, record, spans_key, set_ents))
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise CorpusFormatError(path, index, f"invalid SpERT record: {err!r}", unit="record") from None
    return docs


def record_to_doc(vocab: Vocab, record: Dict[str, Any], spans_key: str, set_ents: bool) -> Doc:
    """A Doc of one SpERT record; raises ValueError for offsets outside the tokens."""
    tokens = record["tokens"]
    if not tokens or not all(isinstance(token, str) and token.strip() for token in tokens):
        raise ValueError("tokens must be a non-empty list of non-blank strings")
    doc = Doc(vocab, words=tokens, spaces=[True] * (len(tokens) - 1) + [False])
    entities = []
    for entity in record["entities"]:
        start, end = _index(entity, "start"), _index(entity, "end")
        if not 0 <= start < end <= len(tokens):
            raise ValueError(f"entity offsets {start}-{end} outside 0-{len(tokens)} or empty")
        entities.append(Span(doc, start, end, label=_label(entity)))
    write_gold_entities(doc, entities, spans_key, set_ents)
    relations = []
    for relation in record.get("relations", []):
        head, tail = _index(relation, "head"), _index(relation, "tail")
        if not (0 <= head < len(entities) and 0 <= tail < len(entities)):
            raise IndexError(f"relation argument {head} or {tail} is not an entity index")
        relations.append((entities[head], entities[tail], _label(relation)))
    set_relations(doc, relations)
    if "orig_id" in record:
        doc.user_data["orig_id"] = record["orig_id"]
    return doc


def _index(item: Dict[str, Any], key: str) -> int:
    """item[key] as a token or entity index: an integer (a float or a string is an
    error, not truncated or parsed)."""
    value = item[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{key!r} must be an integer, not {value!r}")
    return value


def _label(item: Dict[str, Any]) -> str:
    """item["type"]: a non-empty string (spaCy would read an integer as a string id,
    and None would become "None")."""
    label = item["type"]
    if not isinstance(label, str) or not label:
        raise TypeError(f"'type' must be a non-empty string, not {label!r}")
    return label


def write_gold_entities(doc: Doc, spans: List[Span], spans_key: str, set_ents: bool) -> None:
    """All gold entities to doc.spans[spans_key] (score 1 each); with set_ents, a
    non-overlapping selection (longest first, then leftmost) to doc.ents, for
    components that cannot represent nesting."""
    write_entities(doc, spans_key, spans, [1.0] * len(spans), set_ents)


def doc_to_record(doc: Doc, spans_key: str = DEFAULT_SPANS_KEY) -> Dict[str, Any]:
    """The SpERT record of a Doc: entities from doc.spans[spans_key] (or doc.ents if the
    group is missing) and the relations stored on the Doc."""
    spans = doc.spans[spans_key] if spans_key in doc.spans else doc.ents
    entities = [{"type": span.label_, "start": span.start, "end": span.end} for span in spans]
    index = {(e["start"], e["end"], e["type"]): i for i, e in enumerate(entities)}
    relations = []
    for head, tail, label, _ in get_relations(doc):
        head_key, tail_key = (head.start, head.end, head.label_), (tail.start, tail.end, tail.label_)
        if head_key not in index or tail_key not in index:
            raise ValueError(f"Relation {label!r} connects a span that is not in the entities of {spans_key!r}")
        relations.append({"type": label, "head": index[head_key], "tail": index[tail_key]})
    record: Dict[str, Any] = {"tokens": [token.text for token in doc], "entities": entities, "relations": relations}
    if "orig_id" in doc.user_data:
        record["orig_id"] = doc.user_data["orig_id"]
    return record


def write_spert(docs: Iterable[Doc], path: Union[str, Path], spans_key: str = DEFAULT_SPANS_KEY) -> int:
    """Write docs as a SpERT JSON file; returns the number of records."""
    records = [doc_to_record(doc, spans_key) for doc in docs]
    srsly.write_json(path, records)
    return len(records)


def symmetric_relation_types(path: Union[str, Path]) -> Set[str]:
    """The relation types a SpERT types file marks ``"symmetric": true``.

    Raises FileNotFoundError for a missing file and ValueError for one that is not a
    types file ``{"relations": {NAME: {"symmetric": true}}}``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such types file: {path}")
    try:
        relations = srsly.read_json(path).get("relations", {})
        return {name for name, info in relations.items() if info.get("symmetric")}
    except (ValueError, AttributeError) as err:
        raise ValueError(
            f'expected a SpERT types file, {{"relations": {{NAME: {{"symmetric": true}}}}}} ({err})'
        ) from None


def add_symmetric_reverses(doc: Doc, symmetric: Iterable[str]) -> None:
    """Store each relation of a symmetric type in both directions (as SpERT reads its
    data, where a symmetric relation is listed once)."""
    symmetric = set(symmetric)
    relations = get_relations(doc)
    reverse = [(r.tail, r.head, r.label, r.score) for r in relations if r.label in symmetric]
    known = {(r.head.start, r.head.end, r.tail.start, r.tail.end, r.label) for r in relations}
    set_relations(
        doc, relations + [r for r in reverse if (r[0].start, r[0].end, r[1].start, r[1].end, r[2]) not in known]
    )


def drop_symmetric_reverses(doc: Doc, symmetric: Iterable[str]) -> None:
    """Keep one direction of each relation of a symmetric type (the first stored), so
    that it is written once; the inverse of :func:`add_symmetric_reverses`."""
    symmetric = set(symmetric)
    seen, kept = set(), []
    for relation in get_relations(doc):
        key = (
            relation.label,
            *sorted([(relation.head.start, relation.head.end), (relation.tail.start, relation.tail.end)]),
        )
        if relation.label not in symmetric or key not in seen:
            kept.append(relation)
            seen.add(key)
    set_relations(doc, kept)
