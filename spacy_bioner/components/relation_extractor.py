"""`bioner_relations`: joint entity and relation extraction (SpERT.MT, Lu & Xue 2024).

Every span of up to ``max_span_length`` tokens is scored for each entity type; ordered
pairs of entities are scored for each relation type (model:
:mod:`spacy_bioner.layers.relation_model`). Both stages train with the paper's
multi-task loss: a binary identification head (the entity one with the IoU-scaled
cross-entropy of Eq. 13) plus a pairwise ranking loss on the class scores (Eq. 6-9),
``identification_weight * identification + ranking_weight * ranking`` per stage, summed over the stages (Eq. 17).
At most ``negative_entities`` negative spans and ``negative_relations`` negative pairs
per doc are trained on. Prediction names the best class by its score and keeps the
span or pair by ``decision``: its score reaches ``threshold`` (``"score"``, Eq. 18, the
paper; pairs use ``relation_threshold`` when it is set) or its identification probability
reaches 0.5 (``"identification"``). With ``allow_overlap = false`` each doc keeps
only a non-overlapping selection of its predicted entities (those in a predicted
relation first, then the most confident) and the relations between them, for corpora
without overlapping entities (docs/relations.md). The
relation stage pairs at most ``max_entities`` entities per doc, and few enough that
their ordered pairs fit in ``max_pairs``: the most confident ones (as SpERT bounds its
pairs), so an untrained or collapsed entity stage cannot make the pair stage explode.

Relation candidates in training are the ordered pairs of the gold entities plus, with
``train_on_predicted`` (the default; not in the paper or SpERT, which pair gold entities
only), the entities the entity stage currently predicts, so the relation stage also
learns from the spurious entities it will see at inference (on CoNLL04 dev with MiniLM,
+8 NER and +11 RE strict F1 at 2,500 steps; docs/relations.md); at inference, the
predicted entities. With ``use_ents_from`` (a span group key or "ents")
the relation stage pairs the entities another component wrote instead (in training,
gold entities plus those, when the upstream component annotates during training).

Gold entities come from the reference's ``doc.spans[spans_key]`` when it has that group,
else its ``doc.ents``; gold relations from its ``doc._.relations`` and must connect gold
entities. Predicted entities go to ``doc.spans[spans_key]`` (and, with ``set_ents``, a
non-overlapping selection to ``doc.ents``); relations to ``doc._.relations``.

Class weights (not in the paper; ``scheme = "none"``, the default, leaves the losses as
published). Each stage has the classes ``Neg_Span`` (resp. ``Neg_Relation``: a sampled
negative span or pair) and its types. Every trained row of a stage's classification loss
(the ranking loss, or the softmax cross-entropy without multitask) counts with the
weight of its gold class, and the loss is divided by the summed weights of the rows
instead of their number: ``sum_i w(y_i) L_i / sum_i w(y_i)``. The weights change the
balance between the classes, never the scale of the loss; with all weights equal this
is the plain mean. The identification losses are not weighted (delta and the IoU
scaling already balance positives against negatives there). The weights come from
``class_weights`` for a stage it names, else from ``scheme`` (:mod:`spacy_bioner.weights`)
over the stage's training counts, taken in ``initialize()``: per type, the gold entities
of at most ``max_span_length`` tokens and the gold relations; for the negative classes,
per doc the negatives it is trained on, ``min(negative_entities, other candidate spans)``
and ``min(negative_relations, other ordered pairs of gold entities)`` (the pairs of
predicted entities that ``train_on_predicted`` adds are not known before training).
"""

from itertools import islice
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate

from ..entity_writing import write_entities
from ..layers.relation_model import PairScores, RelationGradients, SpanScores
from ..layers.spans import count_spans
from ..losses import (
    binary_cross_entropy,
    iou_scaled_bce,
    pairwise_ranking_loss,
    sigmoid,
    softmax,
    weighted_cross_entropy,
)
from ..relation_sampling import (
    Gold,
    SpanBatch,
    all_pairs,
    entity_targets,
    kept_entities,
    non_overlapping,
    sample_pairs,
    span_batch,
)
from ..relations import relation_rows, set_relations
from ..scoring import make_relation_scorer
from .base import EntityPipe
from .common import (
    DEFAULT_CNN_TOK2VEC,
    check_scheme,
    resolve_class_weights,
    unknown_label_error,
    warn_long_entities,
    weight_vector,
)

DEFAULT_RELATIONS_MODEL = (
    """
[model]
@architectures = "spacy_bioner.RelationExtractor.v1"
width_size = 25
max_width = 10
entity_logits = true
dropout = 0.1
"""
    + DEFAULT_CNN_TOK2VEC
)
DEFAULT_MODEL = Config().from_str(DEFAULT_RELATIONS_MODEL)["model"]
NEGATIVE_ENTITY = "Neg_Span"
NEGATIVE_RELATION = "Neg_Relation"
STAGES = ("entities", "relations")
DECISIONS = ("score", "identification")
# The component's settings and their defaults (the factory's config); the component
# keeps them in its cfg, beside its labels and the class counts and weights.
SETTINGS: Dict[str, Any] = {
    "max_span_length": 10,
    "negative_entities": 120,
    "negative_relations": 120,
    "max_entities": 100,
    "max_pairs": 1000,
    "threshold": 0.85,
    "relation_threshold": None,
    "decision": "score",
    "multitask": True,
    "iou_scaling": True,
    "delta": 0.25,
    "margin_positive": 2.5,
    "margin_negative": 0.5,
    "gamma": 2.0,
    "identification_weight": 1.0,
    "ranking_weight": 1.0,
    "scheme": "none",
    "beta": 0.9,
    "weight_strength": 1.0,
    "train_on_predicted": True,
    "allow_overlap": True,
    "use_ents_from": None,
    "spans_key": None,
    "set_ents": False,
}
POSITIVE_INTEGERS = ("max_span_length", "negative_entities", "negative_relations", "max_entities", "max_pairs")
# spacy-bioner 0.1 called Eq. 10's weights alpha and beta and the ENS beta ens_beta; the
# factory still reads those names, so pipelines saved by 0.1 load (see v01_settings)
V01_NAMES = {"alpha": "identification_weight", "beta": "ranking_weight", "ens_beta": "beta"}


@Language.factory(
    "bioner_relations",
    assigns=["doc.spans", "doc.ents", "doc._.relations"],
    default_config={
        "model": DEFAULT_MODEL,
        **SETTINGS,
        "class_weights": None,
        "scorer": None,
        "alpha": None,
        "ens_beta": None,
    },
    default_score_weights={
        "rel_strict_micro_f": 0.5,
        "spans_bioner_relations_f": 0.5,
        "rel_micro_f": 0.0,
        "rel_macro_f": 0.0,
        "rel_strict_macro_f": 0.0,
        "spans_bioner_relations_p": 0.0,
        "spans_bioner_relations_r": 0.0,
        "spans_bioner_relations_macro_f": 0.0,
        "spans_bioner_relations_per_type": None,
        "rel_per_type": None,
        "rel_strict_per_type": None,
    },
)
def make_relation_extractor(
    nlp: Language,
    name: str,
    model: Model,
    max_span_length: int,
    negative_entities: int,
    negative_relations: int,
    max_entities: int,
    max_pairs: int,
    threshold: float,
    relation_threshold: Optional[float],
    decision: str,
    multitask: bool,
    iou_scaling: bool,
    delta: float,
    margin_positive: float,
    margin_negative: float,
    gamma: float,
    identification_weight: float,
    ranking_weight: float,
    scheme: str,
    beta: float,
    weight_strength: float,
    class_weights: Optional[Dict[str, Dict[str, float]]],
    train_on_predicted: bool,
    allow_overlap: bool,
    use_ents_from: Optional[str],
    spans_key: Optional[str],
    set_ents: bool,
    scorer: Optional[Callable],
    alpha: Optional[float] = None,
    ens_beta: Optional[float] = None,
) -> "RelationExtractor":
    """Joint entity and relation extraction with SpERT.MT's multi-task losses.

    max_span_length: longest entity candidate in tokens (paper: 10; also the model's
        max_width).
    negative_entities, negative_relations: negative spans / pairs sampled per doc in
        training (paper: 120 each).
    max_entities, max_pairs: pair at most this many predicted entities per doc, and
        at most max_pairs ordered pairs: the most confident entities (not in the paper;
        an untrained or collapsed model may accept every span, and 100 entities make
        9,900 pairs; SpERT bounds its pairs the same way).
    threshold: theta of Eq. 18 (paper: 0.85), used by decision = "score".
    relation_threshold: theta for the relation stage alone (null: `threshold`, as in the
        paper). Relation scores reach a fixed theta later in training than entity
        scores, so a short budget may want a lower one; choose it on dev
        (benchmarks/relations_threshold.py --relation-thresholds).
    decision: how a span or pair is kept (multitask only; the best class score always
        names its type). "score": its best class score reaches threshold (Eq. 18, the
        paper). "identification": its identification head's probability reaches 0.5.
    multitask: false is the SpERT ablation: one softmax with a "none" class and
        cross-entropy, argmax prediction (threshold, decision, the identification
        heads, delta and the margins are then unused).
    iou_scaling: the IoU-scaled identification loss of Eq. 13 for entities (paper);
        false: plain binary cross-entropy (Eq. 4).
    delta: balance of Eq. 13 (paper: 0.25).
    margin_positive, margin_negative, gamma: m+, m-, gamma of the ranking loss (paper:
        2.5, 0.5, 2).
    identification_weight, ranking_weight: weights of the identification and ranking
        losses (alpha and beta of Eq. 10; paper: 1, 1).
    scheme, beta, weight_strength: class weights of the classification losses
        (spacy_bioner.weights: none, welt, ins, isns, ens; "none" is the paper), from
        each stage's training counts in initialize(); beta is the ENS beta, as in the
        other components. See the module docstring.
    class_weights: explicit weights, {"entities": {"Neg_Span": w, TYPE: w, ...},
        "relations": {"Neg_Relation": w, TYPE: w, ...}}, every class of a stage named;
        a stage given here does not use the scheme.
    train_on_predicted: also train the relation stage on pairs of the entities the
        entity stage predicts for the batch (default true; false: gold entities only,
        as the paper and SpERT).
    allow_overlap: predicted entities may overlap (default true: nested entities);
        false: each doc keeps a non-overlapping selection of them, those in a predicted
        relation first, the most confident first among equals, and the relations between
        them (not in the paper; SpERT's `no_overlapping` drops every overlapping entity
        instead). Training is unchanged.
    use_ents_from: pair the entities of this span group (or "ents") of the doc, written
        by an earlier component, instead of this component's own entity predictions.
    spans_key: span group of the predicted and gold entities (default: the name).
    set_ents: also write a non-overlapping selection of the entities to doc.ents.
    scorer: null: spacy_bioner.relation_scorer.v1 on spans_key.
    alpha, ens_beta: the 0.1 names (null in new configs); a config that has them, as
        every pipeline saved by 0.1 does, is read with 0.1's meanings: alpha and beta
        the loss weights, ens_beta the ENS beta.
    """
    settings = v01_settings({key: value for key, value in locals().items() if key in SETTINGS or key in V01_NAMES})
    return RelationExtractor(nlp.vocab, model, name, class_weights=class_weights, scorer=scorer, **settings)


def v01_settings(settings: Dict[str, Any]) -> Dict[str, Any]:
    """`settings` (factory settings or a loaded cfg) under today's names. Those that
    have alpha or ens_beta were written by spacy-bioner 0.1, where alpha and beta were
    the loss weights and ens_beta the ENS beta; the others are today's already."""
    alpha, ens_beta = settings.get("alpha"), settings.get("ens_beta")
    if alpha is None and ens_beta is None:
        return {key: value for key, value in settings.items() if key not in ("alpha", "ens_beta")}
    if alpha is None or ens_beta is None:
        raise ValueError(
            "bioner_relations: alpha and ens_beta are spacy-bioner 0.1's names, read only from a complete 0.1 "
            "config; write identification_weight (was alpha), ranking_weight (was beta) and beta (was ens_beta)"
        )
    renamed = {key: value for key, value in settings.items() if key not in V01_NAMES}
    for old, new in V01_NAMES.items():
        if settings.get(old) is not None:
            renamed[new] = settings[old]
    return renamed


def saved_settings(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """A loaded cfg under today's names, with the settings added since it was saved at
    their defaults (each new setting's default keeps the earlier behaviour)."""
    return {**SETTINGS, **v01_settings(cfg)}


class RelationExtractor(EntityPipe):
    """Entities to doc.spans[spans_key], relations between them to doc._.relations."""

    output_ref = "entity_classes"
    reserved_labels = (NEGATIVE_ENTITY, NEGATIVE_RELATION)

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "bioner_relations",
        *,
        class_weights: Optional[Dict[str, Dict[str, float]]] = None,
        scorer: Optional[Callable] = None,
        **settings: Any,
    ) -> None:
        """`settings`: any of SETTINGS (see the factory); the others keep their defaults."""
        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            raise TypeError(f"[{name}] unknown settings {unknown}; known: {sorted(SETTINGS)}")
        cfg = {**SETTINGS, **settings}
        for setting in POSITIVE_INTEGERS:
            if not isinstance(cfg[setting], int) or cfg[setting] < 1:
                raise ValueError(f"[{name}] {setting} must be a positive integer; got {cfg[setting]!r}")
        if cfg["max_pairs"] < 2:
            raise ValueError(f"[{name}] max_pairs must be at least 2 (one pair each way); got {cfg['max_pairs']!r}")
        if not 0.0 <= cfg["delta"] <= 1.0:
            raise ValueError(f"[{name}] delta must be in [0, 1]; got {cfg['delta']!r}")
        if cfg["decision"] not in DECISIONS:
            raise ValueError(f"[{name}] unknown setting decision = {cfg['decision']!r}; valid: {', '.join(DECISIONS)}")
        check_scheme(name, cfg["scheme"])
        if class_weights is not None and not set(class_weights) <= set(STAGES):
            raise ValueError(
                f"[{name}] class_weights must map 'entities' and/or 'relations' to a weight per class; "
                f"got {sorted(class_weights)}"
            )
        self.explicit_weights = {stage: dict(weights) for stage, weights in (class_weights or {}).items()}
        self.vocab = vocab
        self.model = model
        self.name = name
        self.cfg: Dict[str, Any] = {
            "labels": [],
            "relation_labels": [],
            **cfg,
            "class_weights": {},
            "class_counts": {},
        }
        self.custom_scorer = scorer

    def from_disk(self, path, *, exclude: Iterable[str] = tuple()) -> "RelationExtractor":
        super().from_disk(path, exclude=exclude)
        self.cfg = saved_settings(self.cfg)
        return self

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "RelationExtractor":
        super().from_bytes(bytes_data, exclude=exclude)
        self.cfg = saved_settings(self.cfg)
        return self

    @property
    def relation_labels(self) -> Tuple[str, ...]:
        return tuple(self.cfg["relation_labels"])

    def output_sizes(self) -> Dict[str, int]:
        """Class scores per stage: one per type, plus "none" without multitask."""
        extra = 0 if self.cfg["multitask"] else 1
        return {"entity_classes": len(self.labels) + extra, "relation_classes": len(self.relation_labels) + extra}

    @property
    def label_data(self) -> Dict[str, List[str]]:
        return {"entities": list(self.labels), "relations": list(self.relation_labels)}

    @property
    def scorer(self) -> Callable:
        return self.custom_scorer or make_relation_scorer(self.spans_key)

    @property
    def stage_classes(self) -> Dict[str, List[str]]:
        """The classes of each stage's loss: the negative class, then the types (also
        the output order without multitask)."""
        return {
            "entities": [NEGATIVE_ENTITY, *self.labels],
            "relations": [NEGATIVE_RELATION, *self.relation_labels],
        }

    def add_relation_label(self, label: str) -> int:
        """Add a relation type; 0 if it was there already."""
        return self._add_to("relation_labels", label, "relation_classes")

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Dict[str, List[str]]] = None,
    ) -> None:
        """Take the entity and relation types from `labels` ({"entities": [...],
        "relations": [...]}, as `spacy init labels` writes) or else from the data, count
        the classes, fix the class weights and initialize the model. Types in the data
        missing from `labels` are an error."""
        validate_get_examples(get_examples, f"{self.name}.initialize")
        if labels is None:
            entity_labels, relation_labels = set(), set()
            for example in get_examples():
                entity_labels.update(span.label_ for span in self._gold_group(example.reference))
                relation_labels.update(row[6] for row in relation_rows(example.reference))
            labels = {"entities": sorted(entity_labels), "relations": sorted(relation_labels)}
        for label in labels.get("entities", []):
            self.add_label(label)
        for label in labels.get("relations", []):
            self.add_relation_label(label)
        if not self.labels:
            raise ValueError(
                f"[{self.name}] no entity types: the training data has no entities and no labels were given"
            )
        counts = self._count_classes(get_examples())
        self.cfg["class_counts"] = counts
        self.cfg["class_weights"] = {
            stage: resolve_class_weights(
                self.name,
                classes,
                counts[stage],
                self.explicit_weights.get(stage),
                self.cfg["scheme"],
                self.cfg["beta"],
                self.cfg["weight_strength"],
                setting=f"class_weights.{stage}",
            )
            for stage, classes in self.stage_classes.items()
        }
        for ref, size in self.output_sizes().items():
            self.model.get_ref(ref).set_dim("nO", size)
        docs = [eg.predicted for eg in islice(get_examples(), 10)]
        self.model.initialize(X=(docs, self._batch(docs, [[] for _ in docs]).spans))

    def _count_classes(self, examples: Iterable[Example]) -> Dict[str, Dict[str, int]]:
        """Training instances per class of each stage (see the module docstring)."""
        max_length = self.cfg["max_span_length"]
        entities = numpy.zeros((len(self.labels) + 1,), dtype="int64")
        relations = numpy.zeros((len(self.relation_labels) + 1,), dtype="int64")
        n_gold = n_long = 0
        for index, example in enumerate(examples):
            gold = self._gold(example, index)
            fits = gold.entities[:, 1] - gold.entities[:, 0] <= max_length
            n_gold += len(fits)
            n_long += int((~fits).sum())
            entities[1:] += numpy.bincount(gold.entity_classes[fits], minlength=len(self.labels))
            positives = len(numpy.unique(gold.entities[fits], axis=0))
            n_candidates = int(count_spans([len(example.predicted)], max_length)[0])
            entities[0] += min(n_candidates - positives, self.cfg["negative_entities"])
            relation_ids = numpy.asarray(list(gold.relations.values()), dtype="int64")
            relations[1:] += numpy.bincount(relation_ids, minlength=len(self.relation_labels))
            n_spans = len(numpy.unique(gold.entities, axis=0))
            relations[0] += min(n_spans * (n_spans - 1) - len(gold.relations), self.cfg["negative_relations"])
        warn_long_entities(self.name, n_long, n_gold, max_length)
        classes = self.stage_classes
        return {
            "entities": dict(zip(classes["entities"], entities.tolist())),
            "relations": dict(zip(classes["relations"], relations.tolist())),
        }

    def _gold_group(self, reference: Doc) -> Sequence[Span]:
        return reference.spans[self.spans_key] if self.spans_key in reference.spans else reference.ents

    def _gold(self, example: Example, index: int) -> Gold:
        """The gold entities and relations of the `index`-th example, aligned to its
        predicted tokens; clear errors for unknown types and for relations whose
        arguments are not gold entities."""
        reference = example.reference
        group = self._gold_group(reference)
        where = f"doc.spans[{self.spans_key!r}]" if self.spans_key in reference.spans else "doc.ents"
        entity_ids = {label: i for i, label in enumerate(self.labels)}
        relation_ids = {label: i for i, label in enumerate(self.relation_labels)}
        for span in group:
            if span.label_ not in entity_ids:
                raise unknown_label_error(self.name, index, span.label_, self.labels)
        known = {(span.start, span.end, span.label_) for span in group}
        aligned = {
            (span.start_char, span.end_char, span.label_): span
            for span in example.get_aligned_spans_y2x(group, allow_overlap=True)
        }
        relations = {}
        for hs, he, hl, ts, te, tl, label, _ in relation_rows(reference):
            for role, argument in (("head", (hs, he, hl)), ("tail", (ts, te, tl))):
                if argument not in known:
                    raise ValueError(
                        f"[{self.name}] example {index}: the {role} of relation {label!r} "
                        f"({reference[argument[0] : argument[1]].text!r}, {argument[2]}, tokens "
                        f"{argument[0]}-{argument[1]}) is not a gold entity in the reference's {where}"
                    )
            if label not in relation_ids:
                raise ValueError(
                    f"[{self.name}] example {index} has relation type {label!r}, which the component was not "
                    f"given (known types: {list(self.relation_labels)}); add it to the labels."
                )
            head = aligned.get((reference[hs:he].start_char, reference[hs:he].end_char, hl))
            tail = aligned.get((reference[ts:te].start_char, reference[ts:te].end_char, tl))
            if head is not None and tail is not None:
                relations[(head.start, head.end, tail.start, tail.end)] = relation_ids[label]
        spans = list(aligned.values())
        entities = numpy.asarray([(span.start, span.end) for span in spans], dtype="int64").reshape((-1, 2))
        classes = numpy.asarray([entity_ids[span.label_] for span in spans], dtype="int64")
        return Gold(entities, classes, relations)

    def _upstream_entities(self, doc: Doc, required: bool) -> List[Span]:
        """The entities of use_ents_from on `doc` (none if it is not set)."""
        key = self.cfg["use_ents_from"]
        if key is None:
            return []
        if key == "ents":
            return list(doc.ents)
        if key not in doc.spans:
            if required:
                raise ValueError(
                    f"[{self.name}] use_ents_from = {key!r}, but the doc has no span group {key!r}: "
                    "add the component that writes it before this one"
                )
            return []
        return list(doc.spans[key])

    def _batch(self, docs: Sequence[Doc], extras: Sequence[Sequence[Tuple[int, int, str]]]) -> SpanBatch:
        return span_batch([len(doc) for doc in docs], extras, self.cfg["max_span_length"], self.model.ops)

    def _rng(self) -> numpy.random.Generator:
        """A generator for one update's sampling, drawn from numpy's global RNG (which
        spaCy seeds), so training is reproducible."""
        return numpy.random.default_rng(numpy.random.randint(2**31))

    def _decide(
        self, scores, identification, stage: str = "entities"
    ) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
        """The type (label index), confidence and keep decision of each row of a stage's
        class `scores` (numpy); see the factory's `decision` and thresholds."""
        threshold = self.cfg["threshold"]
        if stage == "relations" and self.cfg["relation_threshold"] is not None:
            threshold = self.cfg["relation_threshold"]
        return decide(scores, identification, self.cfg["multitask"], self.cfg["decision"], threshold)

    def _entity_rows(self, batch: SpanBatch, scored: SpanScores) -> List[numpy.ndarray]:
        """Per doc, the batch rows of the candidates predicted as entities, bounded by
        max_entities and max_pairs."""
        to_numpy = self.model.ops.to_numpy
        _, confidence, keep = self._decide(to_numpy(scored.entity_scores), to_numpy(scored.entity_identification))
        return kept_entities(batch, confidence, keep, self.cfg["max_entities"], self.cfg["max_pairs"])

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from a batch: entity losses on every gold span and sampled negative
        spans, relation losses on every gold pair and sampled negative pairs."""
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, f"{self.name}.update")
        docs = [eg.predicted for eg in examples]
        golds = [self._gold(eg, i) for i, eg in enumerate(examples)]
        labels = self.labels
        extras = [
            [(int(s), int(e), labels[c]) for (s, e), c in zip(gold.entities, gold.entity_classes)]
            + [(span.start, span.end, span.label_) for span in self._upstream_entities(doc, required=False)]
            for doc, gold in zip(docs, golds)
        ]
        batch = self._batch(docs, extras)
        if not len(batch.data):
            return losses
        rng = self._rng()
        cfg = self.cfg
        entity_targets_, entity_mask, eniou = entity_targets(
            batch, golds, cfg["max_span_length"], cfg["negative_entities"], rng
        )
        set_dropout_rate(self.model, drop)
        scored, backprop = self.model.begin_update((docs, batch.spans))
        rows = list(batch.arguments)
        if cfg["train_on_predicted"] and cfg["use_ents_from"] is None:
            rows = [numpy.concatenate([a, p]) for a, p in zip(rows, self._entity_rows(batch, scored))]
        pairs, relation_targets = sample_pairs(batch.data, golds, rows, cfg["negative_relations"], rng)
        pair_scores = scored.score_pairs(pairs)
        loss_e, d_entity, d_entity_id = self._stage_loss(
            "entities", scored.entity_scores, scored.entity_identification, entity_targets_, entity_mask, eniou
        )
        loss_r, d_relation, d_relation_id = self._stage_loss(
            "relations",
            pair_scores.relation_scores,
            pair_scores.relation_identification,
            relation_targets,
            numpy.ones(relation_targets.shape, dtype=bool),
        )
        backprop(RelationGradients(d_entity, d_entity_id, d_relation, d_relation_id))
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss_e + loss_r
        return losses

    def _stage_loss(self, stage: str, scores, identification, targets, mask, eniou=None) -> Tuple[float, Any, Any]:
        """Loss of one stage ("entities" or "relations") on the rows where `mask` is
        true, and its gradients w.r.t. the class scores and the identification logits:
        identification_weight * BCE (IoU-scaled with `eniou`) + ranking_weight *
        ranking, or softmax cross-entropy without multitask; the classification loss
        class-weighted by the rows' gold classes (target -1: the negative class)."""
        xp = self.model.ops.xp
        targets, mask = xp.asarray(targets), xp.asarray(mask)
        weights = weight_vector(self.model.ops, self.cfg["class_weights"].get(stage, {}), self.stage_classes[stage])
        d_identification = xp.zeros_like(identification)
        if not self.cfg["multitask"]:
            loss, d_scores = weighted_cross_entropy(xp, scores, xp.where(mask, targets + 1, -1), weights)
            return loss, d_scores, d_identification
        cfg = self.cfg
        row_weights = weights[targets + 1] * mask
        rank, d_scores = pairwise_ranking_loss(
            xp, scores, targets, cfg["margin_positive"], cfg["margin_negative"], cfg["gamma"], row_weights
        )
        logits, positive = identification[:, 0], (targets >= 0).astype("f")
        if eniou is not None and cfg["iou_scaling"]:
            bce, d_logits = iou_scaled_bce(xp, logits, positive, xp.asarray(eniou), cfg["delta"], mask)
        else:
            bce, d_logits = binary_cross_entropy(xp, logits, positive, mask=mask)
        alpha, beta = cfg["identification_weight"], cfg["ranking_weight"]
        d_identification[:, 0] = d_logits * alpha
        return alpha * bce + beta * rank, d_scores * beta, d_identification

    def predict(self, docs: Iterable[Doc]) -> Tuple[SpanBatch, SpanScores, PairScores]:
        """The spans of the docs, their entity scores, and the scores of the pairs of
        predicted (or upstream) entities."""
        docs = list(docs)
        extras = [
            [(span.start, span.end, span.label_) for span in self._upstream_entities(doc, required=True)]
            for doc in docs
        ]
        batch = self._batch(docs, extras)
        scored = self.model.predict((docs, batch.spans))
        rows = batch.arguments if self.cfg["use_ents_from"] else self._entity_rows(batch, scored)
        return batch, scored, scored.score_pairs(all_pairs(batch.data, rows))

    def set_annotations(self, docs: Iterable[Doc], outputs: Tuple[SpanBatch, SpanScores, PairScores]) -> None:
        batch, scored, pair_scores = outputs
        to_numpy = self.model.ops.to_numpy
        entity_classes, entity_scores, keep = self._decide(
            to_numpy(scored.entity_scores), to_numpy(scored.entity_identification)
        )
        relation_classes, relation_scores, keep_relation = self._decide(
            to_numpy(pair_scores.relation_scores), to_numpy(pair_scores.relation_identification), "relations"
        )
        pairs = to_numpy(pair_scores.pairs).reshape((-1, 2))
        if not self.cfg["allow_overlap"]:
            keep, keep_relation = without_overlap(batch, entity_scores, keep, pairs, keep_relation)
        pair_docs = numpy.searchsorted(batch.offsets, pairs[:, 0], side="right") - 1
        for d, doc in enumerate(docs):
            start = int(batch.offsets[d])
            chosen = start + numpy.flatnonzero(keep[start : start + batch.n_candidates[d]])
            entities = [self._span(doc, batch, row, entity_classes) for row in chosen.tolist()]
            write_entities(doc, self.spans_key, entities, entity_scores[chosen].tolist(), self.cfg["set_ents"])
            relations = [
                (
                    self._span(doc, batch, int(pairs[i, 0]), entity_classes),
                    self._span(doc, batch, int(pairs[i, 1]), entity_classes),
                    self.relation_labels[relation_classes[i]],
                    float(relation_scores[i]),
                )
                for i in numpy.flatnonzero(keep_relation & (pair_docs == d)).tolist()
            ]
            set_relations(doc, relations)

    def _span(self, doc: Doc, batch: SpanBatch, row: int, entity_classes: numpy.ndarray) -> Span:
        """The Span of a batch row, labelled with its predicted type (a candidate) or
        the type it came with (an extra span)."""
        start, end = batch.data[row].tolist()
        doc_index = int(numpy.searchsorted(batch.offsets, row, side="right") - 1)
        extra = row - batch.offsets[doc_index] - batch.n_candidates[doc_index]
        label = batch.extra_labels[doc_index][extra] if extra >= 0 else self.labels[entity_classes[row]]
        return Span(doc, start, end, label=label)


def without_overlap(
    batch: SpanBatch, confidence: numpy.ndarray, keep: numpy.ndarray, pairs: numpy.ndarray, keep_relation: numpy.ndarray
) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """The entities and relations kept when entities may not overlap: per doc, a
    non-overlapping selection of the kept candidate entities, those in a kept relation
    first and the most confident first among equals; then the relations none of whose
    arguments was dropped (an extra span, e.g. from use_ents_from, is never dropped).
    Preferring related entities keeps a correct relation whose argument overlaps a more
    confident span that takes part in no relation."""
    related = numpy.zeros(len(keep), dtype="f")
    related[pairs[keep_relation].ravel()] = 1.0
    selected = non_overlapping(batch, numpy.stack([related, confidence], axis=1), keep)
    dropped = keep & ~selected
    return selected, keep_relation & ~dropped[pairs[:, 0]] & ~dropped[pairs[:, 1]]


def decide(
    scores: numpy.ndarray, identification: numpy.ndarray, multitask: bool, decision: str, threshold: float
) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Per row of class `scores`: the best class (label index), its confidence, and
    whether the row is kept.

    With multitask, the best class score names the type; the row is kept when that
    score reaches `threshold` (decision "score", Eq. 18; the confidence is the score)
    or when the identification probability sigmoid(logit) reaches 0.5 (decision
    "identification"; the confidence is that probability). Without multitask: a
    softmax over "none" + the classes (column 0 is "none"); kept when a class beats
    none, the confidence is its probability."""
    if not len(scores) or scores.shape[1] == 0:
        empty = numpy.zeros((len(scores),))
        return empty.astype("int64"), empty.astype("f"), empty.astype(bool)
    rows = numpy.arange(len(scores))
    if multitask:
        best = scores.argmax(axis=1)
        if decision == "identification":
            probability = sigmoid(numpy, identification[:, 0])
            return best, probability, probability >= 0.5
        confidence = scores[rows, best]
        return best, confidence, confidence >= threshold
    probs = softmax(numpy, scores)
    best = probs[:, 1:].argmax(axis=1)
    confidence = probs[rows, best + 1]
    return best, confidence, confidence > probs[:, 0]
