"""The `spacy_bioner.RelationExtractor.v1` architecture: SpERT.MT's joint entity and
relation model (Lu & Xue 2024, section 3) in Thinc.

Entity stage (Eq. 1-3): a span is ``c(s) = maxpool(tokens) ∘ width embedding`` (the
shared :func:`~spacy_bioner.layers.spans.SpanRepresentation`) and is classified from
``x(s) = c(s) ∘ ctx``, where ``ctx`` stands in for BERT's [CLS]: the max-pool over all
token vectors of the span's doc (a tok2vec or listener has no [CLS] token). Two linear
heads read x(s): the class scores ``score_c = x(s)^T W_c`` and a one-unit
identification logit.

Relation stage (Eq. 14-16): an ordered pair is ``r(s1, s2) = c(s1) ∘ v ∘ c(s2) ∘ p(s1) ∘
p(s2)`` with ``v`` the max-pool over the tokens between the spans (zeros when they are
adjacent or overlap) and ``p`` the entity class scores (left out with
``entity_logits = false``); again a class head and an identification head.

The model runs in two steps, driven by the component: the forward pass scores the
spans and returns, with the entity scores, a ``score_pairs`` function; the component
chooses the pairs from those scores (or from the gold entities in training) and calls
``score_pairs`` once. The backward pass takes the gradients of both stages together.
"""

from typing import Callable, List, NamedTuple, Optional, Tuple

import numpy
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Dropout, Linear, Model
from thinc.types import Floats2d, Ints2d, Ragged

from .spans import SpanRepresentation, _scatter_rows, backprop_range_max, range_max, token_bounds

RelationInput = Tuple[List[Doc], Ragged]


class PairScores(NamedTuple):
    """The scored ordered pairs, (n, 2) rows of the batch's spans, their class scores
    and (n, 1) identification logits."""

    pairs: Ints2d
    relation_scores: Floats2d
    relation_identification: Floats2d


class SpanScores(NamedTuple):
    """The class scores and (n, 1) identification logits of the batch's spans, and
    `score_pairs(pairs)`, which scores ordered pairs of those spans (call it at most
    once; the pairs' gradients then flow back with the spans')."""

    entity_scores: Floats2d
    entity_identification: Floats2d
    score_pairs: Callable[[numpy.ndarray], PairScores]


class RelationGradients(NamedTuple):
    """Gradients of the loss w.r.t. the scores of SpanScores and PairScores."""

    entity_scores: Floats2d
    entity_identification: Floats2d
    relation_scores: Floats2d
    relation_identification: Floats2d


@registry.architectures("spacy_bioner.RelationExtractor.v1")
def build_relation_model(
    tok2vec: Model[List[Doc], List[Floats2d]],
    width_size: int = 25,
    max_width: int = 10,
    entity_logits: bool = True,
    dropout: float = 0.1,
    n_entity_classes: Optional[int] = None,
    n_relation_classes: Optional[int] = None,
) -> Model[RelationInput, SpanScores]:
    """SpERT.MT's entity and relation heads on any tok2vec (CNN or transformer listener).

    width_size, max_width: width embedding size (paper: 25) and the widest span with its
        own embedding row (the component's max_span_length).
    entity_logits: append the entity class scores p(s1), p(s2) to the pair input
        (Eq. 15; false is the paper's "w/o logits" ablation).
    dropout: dropout on the span and pair inputs of the heads (SpERT: 0.1).
    n_entity_classes, n_relation_classes: output sizes; set by the component's initialize.
    """
    spans = SpanRepresentation(["maxpool", "width"], width_size=width_size, max_width=max_width)
    heads = {
        "entity_classes": Linear(nO=n_entity_classes),
        "entity_identification": Linear(nO=1),
        "relation_classes": Linear(nO=n_relation_classes),
        "relation_identification": Linear(nO=1),
    }
    layers = [tok2vec, spans, Dropout(dropout), Dropout(dropout), *heads.values()]
    model = Model(
        "relation_extractor",
        _forward,
        init=_init,
        layers=layers,
        attrs={"entity_logits": entity_logits},
    )
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("span_vectors", spans)
    for name, layer in heads.items():
        model.set_ref(name, layer)
    return model


def _init(model: Model, X: Optional[RelationInput] = None, Y=None) -> None:
    tok2vec = model.get_ref("tok2vec")
    if X is not None:
        tok2vec.initialize(X=X[0])
    width = tok2vec.get_dim("nO")
    spans = model.get_ref("span_vectors")
    spans.set_dim("nI", width)
    spans.initialize()
    span_width = spans.get_dim("nO")
    entity_classes = model.get_ref("entity_classes")
    pair_width = 2 * span_width + width
    if model.attrs["entity_logits"]:
        pair_width += 2 * entity_classes.get_dim("nO")
    for name, nI in (
        ("entity_classes", span_width + width),
        ("entity_identification", span_width + width),
        ("relation_classes", pair_width),
        ("relation_identification", pair_width),
    ):
        model.get_ref(name).set_dim("nI", nI)
        model.get_ref(name).initialize()


def _forward(model: Model, inputs: RelationInput, is_train: bool) -> Tuple[SpanScores, Callable]:
    docs, spans = inputs
    ops = model.ops
    xp = ops.xp
    tok2vec, span_layer, span_dropout, pair_dropout = model.layers[:4]
    entity_classes, entity_identification, relation_classes, relation_identification = model.layers[4:]
    tokvecs, backprop_tok2vec = tok2vec(docs, is_train)
    doc_lengths = ops.asarray1i([len(doc) for doc in docs])
    X = ops.flatten(tokvecs) if len(docs) else ops.alloc2f(0, tok2vec.get_dim("nO"))
    n_tokens, width = X.shape
    # c(s) and the doc context vector (max-pool over the doc's tokens) of each span
    c, backprop_c = span_layer((Ragged(X, doc_lengths), spans), is_train)
    doc_ends = xp.cumsum(doc_lengths).astype("int32")
    ctx, ctx_which = range_max(ops, X, doc_ends - doc_lengths, doc_ends)
    span_docs = xp.repeat(xp.arange(len(docs), dtype="int32"), spans.lengths)
    x, backprop_x_dropout = span_dropout(xp.hstack([c, ctx[span_docs]]), is_train)
    entity_scores, backprop_entity_scores = entity_classes(x, is_train)
    entity_id, backprop_entity_id = entity_identification(x, is_train)
    # r(s1, s2) of the ordered pairs the component chooses; `scored` keeps what the
    # backward pass needs
    scored = {}

    def score_pairs(pair_rows: numpy.ndarray) -> PairScores:
        if scored:
            raise ValueError("score_pairs scores one set of pairs per forward pass")
        pairs = ops.asarray2i(numpy.asarray(pair_rows, dtype="int32").reshape((-1, 2)))
        head, tail = pairs[:, 0], pairs[:, 1]
        starts, ends = token_bounds(ops, doc_lengths, spans)
        between_start = xp.minimum(ends[head], ends[tail])
        between_end = xp.maximum(between_start, xp.maximum(starts[head], starts[tail]))
        v, v_which = range_max(ops, X, between_start, between_end)
        parts = [c[head], v, c[tail]]
        if model.attrs["entity_logits"]:
            parts += [entity_scores[head], entity_scores[tail]]
        r, backprop_r_dropout = pair_dropout(xp.hstack(parts) if len(parts[0]) else _empty_pairs(model), is_train)
        relation_scores, backprop_relation_scores = relation_classes(r, is_train)
        relation_id, backprop_relation_id = relation_identification(r, is_train)
        scored.update(
            head=head,
            tail=tail,
            v_which=v_which,
            backprop=(backprop_r_dropout, backprop_relation_scores, backprop_relation_id),
        )
        return PairScores(pairs, relation_scores, relation_id)

    def backprop_pairs(d_output: RelationGradients, dc: Floats2d, d_entity_scores: Floats2d) -> Floats2d:
        """Add the pair stage's gradients to dc and d_entity_scores; return dX's part."""
        if not scored:
            return ops.alloc2f(n_tokens, width)
        head, tail = scored["head"], scored["tail"]
        backprop_r_dropout, backprop_relation_scores, backprop_relation_id = scored["backprop"]
        c_width, n_entity = c.shape[1], entity_scores.shape[1]
        dr = backprop_r_dropout(
            backprop_relation_scores(d_output.relation_scores) + backprop_relation_id(d_output.relation_identification)
        )
        _scatter_rows(ops, dc, head, dr[:, :c_width])
        dX = backprop_range_max(ops, dr[:, c_width : c_width + width], scored["v_which"], n_tokens)
        column = c_width + width
        _scatter_rows(ops, dc, tail, dr[:, column : column + c_width])
        if model.attrs["entity_logits"]:
            column += c_width
            _scatter_rows(ops, d_entity_scores, head, dr[:, column : column + n_entity])
            _scatter_rows(ops, d_entity_scores, tail, dr[:, column + n_entity :])
        return dX

    def backprop(d_output: RelationGradients) -> RelationInput:
        c_width = c.shape[1]
        dc = ops.alloc2f(*c.shape)
        d_entity_scores = d_output.entity_scores.copy()
        dX = backprop_pairs(d_output, dc, d_entity_scores)
        dx = backprop_x_dropout(
            backprop_entity_scores(d_entity_scores) + backprop_entity_id(d_output.entity_identification)
        )
        dc += dx[:, :c_width]
        d_ctx = ops.alloc2f(len(docs), width)
        _scatter_rows(ops, d_ctx, span_docs, dx[:, c_width:])
        dX += backprop_range_max(ops, d_ctx, ctx_which, n_tokens)
        dX += backprop_c(dc)[0].dataXd
        backprop_tok2vec(ops.unflatten(dX, doc_lengths))
        return inputs

    return SpanScores(entity_scores, entity_id, score_pairs), backprop


def _empty_pairs(model: Model) -> Floats2d:
    return model.ops.alloc2f(0, model.get_ref("relation_classes").get_dim("nI"))
