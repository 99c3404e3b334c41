"""Candidate spans and span representations, shared by the span classifier and the
relation extractor.

Spans travel as a thinc ``Ragged`` of ``(start, end)`` rows (token indices local to
their doc, ``end`` exclusive, int32), one group per doc: the format of spaCy's span
suggesters (``spacy.ngram_suggester.v1`` and friends), so any of them can be plugged in.
Enumeration is vectorised over the whole batch (no Python loop over docs or spans).

:func:`SpanRepresentation` turns token vectors and spans into one vector per span from
any combination of three parts, concatenated in this order:

- ``boundary``: ``[u_b; u_e]``, the vectors of the first and last token (Lee et al. 2017;
  SpanPred in Verma, Bergler & Tahaei 2023, section 4.3);
- ``maxpool``: the element-wise maximum over the span's tokens (SpERT); computed with a
  sparse table, so memory grows with ``n_tokens * log(max width)``, not with the summed
  widths of all spans;
- ``width``: a learned embedding of the span's width in tokens (SpERT uses 25 dims).
"""

from typing import Callable, Iterable, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Embed, Model, Ops, get_current_ops
from thinc.types import Floats2d, Ints1d, Ints2d, Ragged

PARTS = ("boundary", "maxpool", "width")


def count_spans(lengths: Sequence[int], max_length: int) -> numpy.ndarray:
    """Number of spans of 1..max_length tokens in docs of the given lengths."""
    n = numpy.asarray(lengths, dtype="int64")
    m = numpy.minimum(n, max_length)
    return m * (n + 1) - m * (m + 1) // 2


def enumerate_spans(lengths: Sequence[int], max_length: int, ops: Optional[Ops] = None) -> Ragged:
    """Every span of 1..max_length tokens of each doc, ordered by start, then end."""
    if max_length < 1:
        raise ValueError(f"max_length must be a positive integer; got {max_length}")
    ops = ops or get_current_ops()
    n = numpy.asarray(lengths, dtype="int64")
    offsets = numpy.cumsum(n) - n
    local = numpy.arange(n.sum()) - numpy.repeat(offsets, n)
    per_token = numpy.minimum(numpy.repeat(n, n) - local, max_length)
    starts = numpy.repeat(local, per_token)
    first = numpy.cumsum(per_token) - per_token
    widths = numpy.arange(per_token.sum()) - numpy.repeat(first, per_token) + 1
    data = numpy.stack([starts, starts + widths], axis=1).astype("int32")
    return Ragged(ops.asarray2i(data), ops.asarray1i(count_spans(n, max_length).astype("int32")))


@registry.misc("spacy_bioner.all_spans_suggester.v1")
def build_all_spans_suggester(max_length: int = 32) -> Callable[..., Ragged]:
    """Suggester of every span of 1..max_length tokens (Verma, Bergler & Tahaei 2023: 32), for
    `bioner_spans` or spaCy's `spancat`."""
    if max_length < 1:
        raise ValueError(f"max_length must be a positive integer; got {max_length}")

    def suggest(docs: Iterable[Doc], *, ops: Optional[Ops] = None) -> Ragged:
        return enumerate_spans([len(doc) for doc in docs], max_length, ops)

    return suggest


def limit_width(spans: Ragged, max_length: int, ops: Optional[Ops] = None) -> Ragged:
    """Drop spans longer than max_length tokens (and normalise spaCy's empty output)."""
    ops = ops or get_current_ops()
    data = ops.to_numpy(spans.dataXd).reshape((-1, 2)).astype("int32")
    lengths = ops.to_numpy(spans.lengths).astype("int64")
    keep = (data[:, 1] - data[:, 0]) <= max_length
    if keep.all():
        return Ragged(ops.asarray2i(data), ops.asarray1i(lengths.astype("int32")))
    doc_ids = numpy.repeat(numpy.arange(len(lengths)), lengths)
    kept_lengths = numpy.bincount(doc_ids[keep], minlength=len(lengths)).astype("int32")
    return Ragged(ops.asarray2i(data[keep]), ops.asarray1i(kept_lengths))


def token_bounds(ops: Ops, doc_lengths: Ints1d, spans: Ragged) -> Tuple[Ints1d, Ints1d]:
    """Start and end (exclusive) of each span as rows of the batch's concatenated tokens."""
    offsets = ops.xp.cumsum(doc_lengths) - doc_lengths
    shift = ops.xp.repeat(offsets, spans.lengths).astype("int32")
    data = spans.dataXd.reshape((-1, 2))
    return data[:, 0] + shift, data[:, 1] + shift


def range_max(ops: Ops, X: Floats2d, starts: Ints1d, ends: Ints1d) -> Tuple[Floats2d, Ints2d]:
    """Column-wise maximum of X[start:end] for each range, and the row it came from.

    Uses a sparse table: level k holds the maxima of all windows of 2**k rows, and a
    range of width w is covered by two windows of the largest 2**k <= w. Empty ranges
    give zeros and row -1 (no gradient).
    """
    xp = ops.xp
    widths = ends - starts
    n_ranges, width = starts.shape[0], X.shape[1]
    Y = ops.alloc2f(n_ranges, width)
    which = ops.alloc2i(n_ranges, width) - 1
    if n_ranges == 0 or int(widths.max()) <= 0:
        return Y, which
    levels = xp.zeros(widths.shape, dtype="int32")
    nonempty = widths > 0
    levels[nonempty] = xp.floor(xp.log2(widths[nonempty])).astype("int32")
    values = X
    rows = xp.broadcast_to(xp.arange(X.shape[0], dtype="int32")[:, None], X.shape)
    for level in range(int(levels[nonempty].max()) + 1):
        if level > 0:
            step = 2 ** (level - 1)
            left, right = values[:-step], values[step:]
            right_wins = right > left
            values = xp.where(right_wins, right, left)
            rows = xp.where(right_wins, rows[step:], rows[:-step])
        selected = xp.nonzero(nonempty & (levels == level))[0]
        if selected.size == 0:
            continue
        a, b = starts[selected], ends[selected] - 2**level
        b_wins = values[b] > values[a]
        Y[selected] = xp.where(b_wins, values[b], values[a])
        which[selected] = xp.where(b_wins, rows[b], rows[a])
    return Y, which


def backprop_range_max(ops: Ops, dY: Floats2d, which: Ints2d, n_rows: int) -> Floats2d:
    """Gradient of :func:`range_max` w.r.t. X: each output cell's gradient goes to its row."""
    width = dY.shape[1]
    dX = ops.alloc2f(n_rows * width, 1)
    cells = which >= 0
    columns = ops.xp.broadcast_to(ops.xp.arange(width, dtype="int32"), which.shape)
    _scatter_rows(ops, dX, (which * width + columns)[cells], dY[cells].reshape((-1, 1)))
    return dX.reshape((n_rows, width))


def check_parts(parts: Sequence[str]) -> Tuple[str, ...]:
    """The representation parts in canonical order; a clear error for unknown ones."""
    unknown = [part for part in parts if part not in PARTS]
    if unknown or not parts:
        raise ValueError(
            f"Invalid span representation {list(parts)!r}: give one or more of {', '.join(PARTS)} (unknown: {unknown})"
        )
    return tuple(part for part in PARTS if part in parts)


def SpanRepresentation(
    parts: Sequence[str] = ("boundary",), width_size: int = 25, max_width: int = 32
) -> Model[Tuple[Ragged, Ragged], Floats2d]:
    """One vector per span from the token vectors of its doc.

    Input: (token vectors as a Ragged with one group per doc, spans as a Ragged of
    doc-local (start, end) rows with one group per doc). Output: (n_spans, nO).
    width_size, max_width: size of the width embedding, and the widest span with its
        own row (wider spans share the last one); used only with the "width" part.
    """
    parts = check_parts(parts)
    if "width" in parts and (width_size < 1 or max_width < 1):
        raise ValueError(f"width_size and max_width must be positive; got {width_size} and {max_width}")
    layers = [Embed(nO=width_size, nV=max_width + 1)] if "width" in parts else []
    return Model(
        "span_representation",
        _span_representation_forward,
        init=_init_span_representation,
        layers=layers,
        dims={"nI": None, "nO": None},
        attrs={"parts": parts, "max_width": max_width},
    )


def _output_width(model: Model, nI: int) -> int:
    parts = model.attrs["parts"]
    width = 2 * nI * ("boundary" in parts) + nI * ("maxpool" in parts)
    if "width" in parts:
        width += model.layers[0].get_dim("nO")
    return width


def _init_span_representation(model: Model, X: Optional[Tuple[Ragged, Ragged]] = None, Y=None) -> None:
    if X is not None:
        model.set_dim("nI", X[0].dataXd.shape[1])
    if model.has_dim("nI"):
        model.set_dim("nO", _output_width(model, model.get_dim("nI")))
    for layer in model.layers:
        layer.initialize()


def _span_representation_forward(
    model: Model, inputs: Tuple[Ragged, Ragged], is_train: bool
) -> Tuple[Floats2d, Callable]:
    tokvecs, spans = inputs
    ops, parts = model.ops, model.attrs["parts"]
    X = tokvecs.dataXd
    starts, ends = token_bounds(ops, tokvecs.lengths, spans)
    width = X.shape[1]
    output = ops.alloc2f(starts.shape[0], model.get_dim("nO"), zeros=False)
    column = 0
    if "boundary" in parts:
        _gather_rows(X, starts, output[:, :width])
        _gather_rows(X, ends - 1, output[:, width : 2 * width])
        column = 2 * width
    if "maxpool" in parts:
        pooled, which = range_max(ops, X, starts, ends)
        output[:, column : column + width] = pooled
        column += width
    if "width" in parts:
        ids = ops.xp.minimum(ends - starts, model.attrs["max_width"]).astype("int32")
        embedded, backprop_width = model.layers[0](ids, is_train)
        output[:, column:] = embedded

    def backprop(dY: Floats2d) -> Tuple[Ragged, Ragged]:
        dX = ops.alloc2f(*X.shape)
        column = 0
        if "boundary" in parts:
            _scatter_rows(ops, dX, starts, dY[:, :width])
            _scatter_rows(ops, dX, ends - 1, dY[:, width : 2 * width])
            column = 2 * width
        if "maxpool" in parts:
            dX += backprop_range_max(ops, dY[:, column : column + width], which, X.shape[0])
            column += width
        if "width" in parts:
            backprop_width(ops.xp.ascontiguousarray(dY[:, column:]))
        return Ragged(dX, tokvecs.lengths), spans

    return output, backprop


def _gather_rows(X: Floats2d, rows: Ints1d, out: Floats2d, chunk: int = 4096) -> None:
    """out[i] = X[rows[i]], in chunks, so no temporary as large as `out` is made."""
    for start in range(0, rows.shape[0], chunk):
        out[start : start + chunk] = X[rows[start : start + chunk]]


def _scatter_rows(ops: Ops, table: Floats2d, rows: Ints1d, values: Floats2d) -> None:
    """table[rows[i]] += values[i], with repeated rows summed."""
    ops.scatter_add(table, ops.xp.ascontiguousarray(rows, dtype="int32"), ops.xp.ascontiguousarray(values))
