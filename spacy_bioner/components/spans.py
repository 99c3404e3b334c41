"""`bioner_spans`: span classification (SpanPred, Verma, Bergler & Tahaei 2023, section 4.3), which can
predict nested and overlapping entities.

Every candidate span (by default every span of up to ``max_span_length`` tokens; any
spaCy suggester can be plugged in) is represented from its token vectors and classified
into one of the entity types or the negative class ``Neg_Span`` with a softmax and a
class-weighted cross-entropy (weights from :mod:`spacy_bioner.weights` over the span
label counts of the training data). During training at most ``negatives_per_doc``
negative candidates per doc can be sampled, so the cost of a doc stays linear in its
length. Predicted spans (overlaps kept) go to ``doc.spans[spans_key]`` with the
probability of their label in ``attrs["scores"]``; with ``set_ents`` a non-overlapping
selection (highest score first, then longest) also goes to ``doc.ents``.

Gold spans are read from the reference's ``doc.spans[spans_key]`` when it has that
group, else from its ``doc.ents``. Gold spans that are not among the candidates (e.g.
longer than ``max_span_length``) cannot be learned and are ignored, as in spaCy's spancat.
"""

from itertools import islice
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import minibatch
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate
from thinc.types import Floats1d, Floats2d, Ragged

from ..entity_writing import write_entities
from ..layers.spans import enumerate_spans, limit_width
from ..losses import softmax, weighted_cross_entropy
from ..scoring import make_entity_scorer
from .base import EntityPipe
from .common import (
    DEFAULT_CNN_TOK2VEC,
    check_scheme,
    resolve_class_weights,
    unknown_label_error,
    warn_long_entities,
    weight_vector,
)

NEGATIVE = "Neg_Span"
# The most candidate spans scored in one pass at prediction: a batch of normal-length
# documents is one pass, a 400,000-character document (about 2.5M candidates) several.
CANDIDATES_PER_PASS = 1 << 18

DEFAULT_SPANS_MODEL = (
    """
[model]
@architectures = "spacy_bioner.SpanClassifier.v1"
representation = ["boundary", "maxpool", "width"]
width_size = 25
max_width = 32
hidden_size = 128
"""
    + DEFAULT_CNN_TOK2VEC
)
DEFAULT_MODEL = Config().from_str(DEFAULT_SPANS_MODEL)["model"]


@Language.factory(
    "bioner_spans",
    assigns=["doc.spans", "doc.ents"],
    default_config={
        "model": DEFAULT_MODEL,
        "suggester": None,
        "max_span_length": 32,
        "negatives_per_doc": None,
        "threshold": None,
        "spans_key": None,
        "set_ents": False,
        "scheme": "welt",
        "beta": 0.9,
        "weight_strength": 1.0,
        "class_weights": None,
        "scorer": None,
    },
    default_score_weights={
        "spans_bioner_spans_f": 1.0,
        "spans_bioner_spans_p": 0.0,
        "spans_bioner_spans_r": 0.0,
        "spans_bioner_spans_per_type": None,
    },
)
def make_span_classifier(
    nlp: Language,
    name: str,
    model: Model[Tuple[List[Doc], Ragged], Floats2d],
    suggester: Optional[Callable[..., Ragged]],
    max_span_length: int,
    negatives_per_doc: Optional[int],
    threshold: Optional[float],
    spans_key: Optional[str],
    set_ents: bool,
    scheme: str,
    beta: float,
    weight_strength: float,
    class_weights: Optional[Dict[str, float]],
    scorer: Optional[Callable],
) -> "SpanClassifier":
    """Span classifier over any number of entity types; nested entities allowed.

    suggester: a spaCy suggester (e.g. spacy.ngram_suggester.v1) for the candidates;
        null: every span of 1..max_span_length tokens.
    max_span_length: longest candidate in tokens (Verma, Bergler & Tahaei 2023: 32); also caps a suggester.
    negatives_per_doc: train on at most this many random negative candidates per doc
        (SpERT.MT: 100-120); null: all of them (the paper).
    threshold: null keeps the spans whose most probable class is an entity type (the
        paper); a number keeps a span when its best entity type has at least this
        probability, so lower values raise recall.
    spans_key: span group for the predictions and the gold spans (default: the name).
    set_ents: also write a non-overlapping selection to doc.ents.
    scheme, beta, weight_strength: class weighting of the loss (spacy_bioner.weights),
        computed from the training span labels in initialize(); ignored when
        class_weights is set.
    class_weights: explicit weight per class (each entity type and "Neg_Span").
    scorer: null: strict P/R/F of the span group (keys spans_<key>_p/r/f/per_type).
    """
    return SpanClassifier(
        nlp.vocab,
        model,
        name,
        suggester=suggester,
        max_span_length=max_span_length,
        negatives_per_doc=negatives_per_doc,
        threshold=threshold,
        spans_key=spans_key,
        set_ents=set_ents,
        scheme=scheme,
        beta=beta,
        weight_strength=weight_strength,
        class_weights=class_weights,
        scorer=scorer,
    )


class SpanClassifier(EntityPipe):
    """Softmax over entity types plus a negative class for every candidate span."""

    reserved_labels = (NEGATIVE,)

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "bioner_spans",
        *,
        suggester: Optional[Callable[..., Ragged]] = None,
        max_span_length: int = 32,
        negatives_per_doc: Optional[int] = None,
        threshold: Optional[float] = None,
        spans_key: Optional[str] = None,
        set_ents: bool = False,
        scheme: str = "welt",
        beta: float = 0.9,
        weight_strength: float = 1.0,
        class_weights: Optional[Dict[str, float]] = None,
        scorer: Optional[Callable] = None,
    ) -> None:
        if not isinstance(max_span_length, int) or max_span_length < 1:
            raise ValueError(f"[{name}] max_span_length must be a positive integer; got {max_span_length!r}")
        if negatives_per_doc is not None and (not isinstance(negatives_per_doc, int) or negatives_per_doc < 1):
            raise ValueError(
                f"[{name}] negatives_per_doc must be a positive integer or null (all); got {negatives_per_doc!r}"
            )
        if threshold is not None and not 0.0 < threshold <= 1.0:
            raise ValueError(f"[{name}] threshold must be in (0, 1] or null (most probable class); got {threshold!r}")
        check_scheme(name, scheme)
        self.vocab = vocab
        self.model = model
        self.name = name
        self.suggester = suggester
        self.explicit_weights = dict(class_weights) if class_weights else None
        self.cfg: Dict[str, Any] = {
            "labels": [],
            "spans_key": spans_key,
            "max_span_length": max_span_length,
            "negatives_per_doc": negatives_per_doc,
            "threshold": threshold,
            "set_ents": set_ents,
            "scheme": scheme,
            "beta": beta,
            "weight_strength": weight_strength,
            "class_weights": {},
            "class_counts": {},
        }
        self.custom_scorer = scorer

    @property
    def classes(self) -> List[str]:
        """The classes the model predicts, in output order: the negative class first."""
        return [NEGATIVE, *self.cfg["labels"]]

    def output_sizes(self) -> Dict[str, int]:
        return {"output": len(self.classes)}

    @property
    def scorer(self) -> Callable:
        """The configured scorer, else strict P/R/F of this component's span group
        (resolved on use, so it follows a rename when the component is sourced)."""
        return self.custom_scorer or make_entity_scorer(self.spans_key)

    def suggest(self, docs: Sequence[Doc]) -> Ragged:
        """Candidate spans of the docs, at most max_span_length tokens long."""
        max_length = self.cfg["max_span_length"]
        if self.suggester is None:
            return enumerate_spans([len(doc) for doc in docs], max_length, self.model.ops)
        return limit_width(self.suggester(docs, ops=self.model.ops), max_length, self.model.ops)

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[List[str]] = None,
    ) -> None:
        """Add the entity types, count the training span labels, fix the class weights
        and initialize the model. Types in the data that are not in `labels` are an error."""
        validate_get_examples(get_examples, f"{self.name}.initialize")
        if labels is None:
            labels = sorted({span.label_ for eg in get_examples() for span in self._gold_spans(eg)})
        for label in labels:
            self.add_label(label)
        if not self.labels:
            raise ValueError(
                f"[{self.name}] no entity types: the training data has no entities and no labels were given"
            )
        counts = self._count_classes(get_examples())
        self.cfg["class_counts"] = counts
        self.cfg["class_weights"] = resolve_class_weights(
            self.name,
            self.classes,
            counts,
            self.explicit_weights,
            self.cfg["scheme"],
            self.cfg["beta"],
            self.cfg["weight_strength"],
        )
        self.model.get_ref("output").set_dim("nO", len(self.classes))
        docs = [eg.predicted for eg in islice(get_examples(), 10)]
        self.model.initialize(X=(docs, self.suggest(docs)))

    def _count_classes(self, examples: Iterable[Example]) -> Dict[str, int]:
        """Training instances per class, counting the negatives a doc is trained on
        (all, or at most negatives_per_doc)."""
        counts = numpy.zeros((len(self.classes),), dtype="int64")
        cap = self.cfg["negatives_per_doc"]
        max_length = self.cfg["max_span_length"]
        start = n_gold = n_long = 0
        for batch in minibatch(examples, 256):
            spans = self.suggest([eg.predicted for eg in batch])
            targets = self._targets(batch, spans, start)
            start += len(batch)
            counts += numpy.bincount(targets, minlength=len(self.classes))
            if cap is not None:
                negatives = _per_doc_sum(targets == 0, self.model.ops.to_numpy(spans.lengths))
                counts[0] -= int(numpy.maximum(negatives - cap, 0).sum())
            lengths = [len(span) for eg in batch for span in self._gold_spans(eg)]
            n_gold += len(lengths)
            n_long += sum(length > max_length for length in lengths)
        warn_long_entities(self.name, n_long, n_gold, max_length)
        return dict(zip(self.classes, counts.tolist()))

    def _gold_spans(self, example: Example) -> List[Span]:
        """Gold spans aligned to the predicted tokens: the reference's span group
        spans_key if it has one, else its entities."""
        reference = example.reference
        gold = reference.spans[self.spans_key] if self.spans_key in reference.spans else reference.ents
        return example.get_aligned_spans_y2x(gold, allow_overlap=True)

    def _targets(self, examples: Sequence[Example], spans: Ragged, first_index: int = 0) -> numpy.ndarray:
        """Gold class of each candidate (0 = negative), as a numpy int array.

        first_index: index of examples[0] in the training data, for error messages."""
        ops = self.model.ops
        data = ops.to_numpy(spans.dataXd).reshape((-1, 2)).astype("int64")
        lengths = ops.to_numpy(spans.lengths)
        stride = max((len(eg.predicted) for eg in examples), default=0) + 1
        doc_ids = numpy.repeat(numpy.arange(len(examples)), lengths)
        keys = (doc_ids * stride + data[:, 0]) * stride + data[:, 1]
        class_ids = {label: i for i, label in enumerate(self.classes)}
        gold_keys, gold_classes = [], []
        for i, example in enumerate(examples):
            for span in self._gold_spans(example):
                if span.label_ not in class_ids or span.label_ == NEGATIVE:
                    raise unknown_label_error(self.name, first_index + i, span.label_, self.labels)
                gold_keys.append((i * stride + span.start) * stride + span.end)
                gold_classes.append(class_ids[span.label_])
        targets = numpy.zeros((len(keys),), dtype="int32")
        if gold_keys and len(keys):
            order = numpy.argsort(keys, kind="stable")
            positions = numpy.minimum(numpy.searchsorted(keys, gold_keys, sorter=order), len(keys) - 1)
            found = keys[order[positions]] == numpy.asarray(gold_keys)
            targets[order[positions[found]]] = numpy.asarray(gold_classes)[found]
        return targets

    def _class_weights(self) -> Floats1d:
        return weight_vector(self.model.ops, self.cfg["class_weights"], self.classes)

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from a batch, on all positive candidates and (at most
        negatives_per_doc) negative ones per doc."""
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, f"{self.name}.update")
        docs = [eg.predicted for eg in examples]
        spans = self.suggest(docs)
        if not spans.dataXd.shape[0]:
            return losses
        targets = self._targets(examples, spans)
        if self.cfg["negatives_per_doc"] is not None:
            spans, targets = self._sample_negatives(spans, targets)
        set_dropout_rate(self.model, drop)
        scores, backprop = self.model.begin_update((docs, spans))
        xp = self.model.ops.xp
        loss, d_scores = weighted_cross_entropy(xp, scores, xp.asarray(targets), self._class_weights())
        backprop(d_scores)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def _sample_negatives(self, spans: Ragged, targets: numpy.ndarray) -> Tuple[Ragged, numpy.ndarray]:
        """Keep every positive candidate and a random sample of at most
        negatives_per_doc negative candidates of each doc (numpy's global RNG, which
        spaCy seeds)."""
        ops = self.model.ops
        lengths = ops.to_numpy(spans.lengths)
        doc_ids = numpy.repeat(numpy.arange(len(lengths)), lengths)
        negatives = numpy.flatnonzero(targets == 0)
        shuffled = negatives[numpy.lexsort((numpy.random.random(len(negatives)), doc_ids[negatives]))]
        first_of_doc = numpy.searchsorted(doc_ids[shuffled], doc_ids[shuffled])
        rank = numpy.arange(len(shuffled)) - first_of_doc
        keep = targets != 0
        keep[shuffled[rank < self.cfg["negatives_per_doc"]]] = True
        data = ops.to_numpy(spans.dataXd)[keep]
        kept = Ragged(ops.asarray2i(data), ops.asarray1i(_per_doc_sum(keep, lengths).astype("int32")))
        return kept, targets[keep]

    def get_loss(self, examples: Iterable[Example], spans_scores: Tuple[Ragged, Floats2d]) -> Tuple[float, Floats2d]:
        """Class-weighted cross-entropy of the scores of the given candidate spans."""
        examples = list(examples)
        validate_examples(examples, f"{self.name}.get_loss")
        spans, scores = spans_scores
        xp = self.model.ops.xp
        targets = xp.asarray(self._targets(examples, spans))
        return weighted_cross_entropy(xp, scores, targets, self._class_weights())

    def predict(self, docs: Iterable[Doc]) -> Tuple[Ragged, Floats2d]:
        """The candidate spans and their class probabilities. More than
        CANDIDATES_PER_PASS candidates (a long document) are scored in passes over token
        vectors computed once, so memory stays bounded whatever the length."""
        docs = list(docs)
        spans = self.suggest(docs)
        n_spans = spans.dataXd.shape[0]
        if not n_spans:
            return spans, self.model.ops.alloc2f(0, len(self.classes))
        if n_spans <= CANDIDATES_PER_PASS:
            return spans, softmax(self.model.ops.xp, self.model.predict((docs, spans)))
        # the architecture: with_getitem(0, tok2vec >> list2ragged) >> span layers
        embed, *span_layers = self.model.layers
        tokvecs, _ = embed.predict((docs, spans))
        scores = []
        for piece in _pieces(spans, CANDIDATES_PER_PASS, self.model.ops):
            X: Any = (tokvecs, piece)
            for layer in span_layers:
                X = layer.predict(X)
            scores.append(softmax(self.model.ops.xp, X))
        return spans, self.model.ops.xp.concatenate(scores)

    def set_annotations(self, docs: Iterable[Doc], spans_probs: Tuple[Ragged, Floats2d]) -> None:
        spans, probs = spans_probs
        ops = self.model.ops
        data = ops.to_numpy(spans.dataXd).reshape((-1, 2))
        lengths = ops.to_numpy(spans.lengths)
        classes, confidence, keep = decide(ops.to_numpy(probs), self.cfg["threshold"])
        ends = numpy.cumsum(lengths)
        for doc, start, end in zip(docs, ends - lengths, ends):
            chosen = start + numpy.flatnonzero(keep[start:end])
            entities = [
                Span(doc, int(data[i, 0]), int(data[i, 1]), label=self.classes[classes[i]]) for i in chosen.tolist()
            ]
            write_entities(doc, self.spans_key, entities, confidence[chosen].tolist(), self.cfg["set_ents"])


def _pieces(spans: Ragged, size: int, ops: Any) -> Iterable[Ragged]:
    """`spans` (a group per doc) in consecutive pieces of at most `size` rows, each with
    a group, maybe empty, per doc."""
    lengths = ops.to_numpy(spans.lengths)
    ends = numpy.cumsum(lengths)
    starts = ends - lengths
    for first in range(0, int(ends[-1]), size):
        last = min(first + size, int(ends[-1]))
        piece_lengths = numpy.clip(ends, first, last) - numpy.clip(starts, first, last)
        yield Ragged(spans.dataXd[first:last], ops.asarray1i(piece_lengths))


def decide(probs: numpy.ndarray, threshold: Optional[float]) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Best entity class per span (column index, never 0), its probability, and whether
    the span is kept: with no threshold when no class beats the entity class (the
    paper's argmax), else when the entity class has at least `threshold` probability."""
    if not len(probs):
        return numpy.zeros((0,), dtype="int64"), numpy.zeros((0,), dtype="f"), numpy.zeros((0,), dtype=bool)
    best = probs[:, 1:].argmax(axis=1) + 1
    confidence = probs[numpy.arange(len(probs)), best]
    keep = confidence > probs[:, 0] if threshold is None else confidence >= threshold
    return best, confidence, keep


def _per_doc_sum(values: numpy.ndarray, lengths: numpy.ndarray) -> numpy.ndarray:
    """Sum of `values` over each doc's consecutive group of `lengths` rows."""
    doc_ids = numpy.repeat(numpy.arange(len(lengths)), lengths)
    return numpy.bincount(doc_ids, weights=values, minlength=len(lengths)).astype("int64")
