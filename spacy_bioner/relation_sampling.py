"""Candidates, training targets and pairs of the relation extractor (`bioner_relations`),
as pure numpy functions, so that each can be tested on its own.

A batch's spans are every candidate of each doc (all spans of up to ``max_span_length``
tokens, in the order of :func:`~spacy_bioner.layers.spans.enumerate_spans`) followed by
the doc's *extra* spans (gold or upstream entities, used only as relation arguments).
All spans of the batch are concatenated, and a span is named by its row in that
concatenation. A pair is a row ``(head, tail)`` of two such span rows.
"""

from typing import Dict, List, NamedTuple, Sequence, Tuple

import numpy
from thinc.api import Ops
from thinc.types import Ragged

from .entity_writing import greedy_non_overlapping
from .layers.spans import enumerate_spans
from .losses import max_iou


class Gold(NamedTuple):
    """Gold annotation of one doc aligned to its predicted tokens: entity boundaries
    (n, 2) and entity type ids, and relation type ids by (head start, head end, tail
    start, tail end)."""

    entities: numpy.ndarray
    entity_classes: numpy.ndarray
    relations: Dict[Tuple[int, int, int, int], int]


class SpanBatch(NamedTuple):
    """The spans of a batch: `spans` (one Ragged group per doc) and the same rows as
    `data` (numpy, (n, 2)); doc d's rows start at `offsets[d]`, its first
    `n_candidates[d]` rows are candidates, `arguments[d]` are the rows of its extra
    spans and `extra_labels[d]` their labels."""

    spans: Ragged
    data: numpy.ndarray
    offsets: numpy.ndarray
    n_candidates: numpy.ndarray
    arguments: List[numpy.ndarray]
    extra_labels: List[List[str]]


def span_batch(
    doc_lengths: Sequence[int], extras: Sequence[Sequence[Tuple[int, int, str]]], max_span_length: int, ops: Ops
) -> SpanBatch:
    """Each doc's candidate spans followed by its `extras` (start, end, label)."""
    candidates = enumerate_spans(doc_lengths, max_span_length, ops)
    n_candidates = ops.to_numpy(candidates.lengths).astype("int64")
    pieces = numpy.split(ops.to_numpy(candidates.dataXd).reshape((-1, 2)), numpy.cumsum(n_candidates)[:-1])
    data, lengths, arguments, offset = [], [], [], 0
    for piece, extra in zip(pieces, extras):
        extra_data = numpy.asarray([(start, end) for start, end, _ in extra], dtype="int32").reshape((-1, 2))
        data += [piece, extra_data]
        lengths.append(len(piece) + len(extra_data))
        arguments.append(offset + len(piece) + numpy.arange(len(extra_data)))
        offset += lengths[-1]
    lengths = numpy.asarray(lengths, dtype="int64")
    data = numpy.concatenate(data).astype("int32") if data else numpy.zeros((0, 2), dtype="int32")
    spans = Ragged(ops.asarray2i(data), ops.asarray1i(lengths.astype("int32")))
    labels = [[label for _, _, label in extra] for extra in extras]
    return SpanBatch(spans, data, numpy.cumsum(lengths) - lengths, n_candidates, arguments, labels)


def candidate_rows(starts: numpy.ndarray, ends: numpy.ndarray, doc_length: int, max_span_length: int) -> numpy.ndarray:
    """The rows, within one doc's candidates, of the spans (start, end) (each at most
    max_span_length tokens long): the enumeration is ordered by start, then width, so
    a span's row is the number of candidates starting before it plus its width - 1."""
    per_start = numpy.minimum(doc_length - numpy.arange(doc_length), max_span_length)
    first = numpy.cumsum(per_start) - per_start
    return first[starts] + (ends - starts) - 1


def entity_targets(
    batch: SpanBatch,
    golds: Sequence[Gold],
    max_span_length: int,
    negative_entities: int,
    rng: numpy.random.Generator,
) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Per span of the batch: its gold type id (-1: none), whether the entity loss
    trains on it (candidates only: every gold entity that fits max_span_length and up
    to `negative_entities` negatives per doc, drawn at random), and its ENIoU with the
    doc's gold entities (SpERT.MT Eq. 12)."""
    n = len(batch.data)
    targets = numpy.full((n,), -1, dtype="int64")
    mask = numpy.zeros((n,), dtype=bool)
    eniou = numpy.zeros((n,), dtype="f")
    for start, n_candidates, gold in zip(batch.offsets.tolist(), batch.n_candidates.tolist(), golds):
        rows = slice(start, start + n_candidates)
        eniou[rows] = max_iou(batch.data[rows], gold.entities)
        if len(gold.entities) and n_candidates:
            doc_length = int(batch.data[rows][:, 1].max())
            fits = gold.entities[:, 1] - gold.entities[:, 0] <= max_span_length
            positions = candidate_rows(gold.entities[fits, 0], gold.entities[fits, 1], doc_length, max_span_length)
            targets[start + positions] = gold.entity_classes[fits]
        mask[rows] = targets[rows] >= 0
        negatives = start + numpy.flatnonzero(targets[rows] < 0)
        mask[sample(negatives, negative_entities, rng)] = True
    return targets, mask, eniou


def unique_spans(data: numpy.ndarray, rows: numpy.ndarray) -> numpy.ndarray:
    """`rows` with spans of the same boundaries (rows of `data`) kept once, the first,
    in their order."""
    if not len(rows):
        return numpy.asarray(rows, dtype="int64")
    _, first = numpy.unique(data[rows], axis=0, return_index=True)
    return numpy.asarray(rows, dtype="int64")[numpy.sort(first)]


def entities_for_pairs(max_pairs: int) -> int:
    """The most entities whose ordered pairs, k (k - 1), fit in max_pairs."""
    return int((1 + (1 + 4 * max_pairs) ** 0.5) // 2)


def non_overlapping(batch: SpanBatch, priorities: numpy.ndarray, keep: numpy.ndarray) -> numpy.ndarray:
    """`keep` with each doc's kept candidates narrowed to the non-overlapping selection
    of :func:`~spacy_bioner.entity_writing.greedy_non_overlapping` (the rule that chooses
    doc.ents; `priorities` has one row per span). Extra spans (rows after a doc's
    candidates) stay as they are."""
    selected = keep.copy()
    for start, n in zip(batch.offsets.tolist(), batch.n_candidates.tolist()):
        rows = start + numpy.flatnonzero(keep[start : start + n])
        chosen = greedy_non_overlapping(batch.data[rows].tolist(), priorities[rows].tolist())
        selected[rows] = False
        selected[rows[chosen]] = True
    return selected


def kept_entities(
    batch: SpanBatch, confidence: numpy.ndarray, keep: numpy.ndarray, max_entities: int, max_pairs: int
) -> List[numpy.ndarray]:
    """Per doc, the rows of the candidates predicted as entities (`keep`) to pair: the
    most confident ones, at most max_entities and few enough that their ordered pairs
    fit in max_pairs (an untrained or collapsed model can accept every span)."""
    limit = min(max_entities, entities_for_pairs(max_pairs))
    rows = []
    for start, n in zip(batch.offsets.tolist(), batch.n_candidates.tolist()):
        kept = start + numpy.flatnonzero(keep[start : start + n])
        rows.append(kept[numpy.argsort(-confidence[kept], kind="stable")[:limit]])
    return rows


def all_pairs(data: numpy.ndarray, rows: Sequence[numpy.ndarray]) -> numpy.ndarray:
    """Every ordered pair of distinct spans among each doc's `rows`, concatenated."""
    pairs = [numpy.zeros((0, 2), dtype="int64")]
    for doc_rows in rows:
        doc_rows = unique_spans(data, doc_rows)
        head, tail = numpy.meshgrid(doc_rows, doc_rows, indexing="ij")
        distinct = head != tail
        pairs.append(numpy.stack([head[distinct], tail[distinct]], axis=1))
    return numpy.concatenate(pairs)


def sample_pairs(
    data: numpy.ndarray,
    golds: Sequence[Gold],
    rows: Sequence[numpy.ndarray],
    negative_relations: int,
    rng: numpy.random.Generator,
) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Training pairs among each doc's entity `rows` (which hold every gold entity):
    every gold relation and up to `negative_relations` other ordered pairs drawn at
    random, without enumerating all pairs; with their relation type ids (-1: none)."""
    empty = numpy.zeros((0,), dtype="int64")
    heads, tails, targets = [empty], [empty], [empty]
    for doc_rows, gold in zip(rows, golds):
        doc_rows = unique_spans(data, doc_rows)
        index = {tuple(span): i for i, span in enumerate(data[doc_rows].tolist())}
        n = len(doc_rows)
        positives = numpy.asarray(
            [(index[key[:2]], index[key[2:]], label) for key, label in gold.relations.items()], dtype="int64"
        ).reshape((-1, 3))
        n_pairs = n * (n - 1)
        # Draw more codes than needed, so that enough remain after the positives are
        # dropped. Code c names the ordered pair (c // (n - 1), c % (n - 1)) of local
        # indices, where a tail index at or above the head's is shifted up by one: the
        # n - 1 codes of a head cover every tail but itself.
        draw = min(n_pairs, negative_relations + len(positives))
        codes = rng.choice(n_pairs, draw, replace=False)
        head, tail = codes // max(n - 1, 1), codes % max(n - 1, 1)
        tail += tail >= head
        negative = ~numpy.isin(head * n + tail, positives[:, 0] * n + positives[:, 1])
        head, tail = head[negative][:negative_relations], tail[negative][:negative_relations]
        heads.append(doc_rows[numpy.concatenate([positives[:, 0], head])])
        tails.append(doc_rows[numpy.concatenate([positives[:, 1], tail])])
        targets.append(numpy.concatenate([positives[:, 2], numpy.full(head.shape, -1, dtype="int64")]))
    pairs = numpy.stack([numpy.concatenate(heads), numpy.concatenate(tails)], axis=1)
    return pairs, numpy.concatenate(targets)


def sample(rows: numpy.ndarray, limit: int, rng: numpy.random.Generator) -> numpy.ndarray:
    """At most `limit` of `rows`, drawn at random."""
    if len(rows) <= limit:
        return rows
    return rng.choice(rows, limit, replace=False)
