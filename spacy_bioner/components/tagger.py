"""`bioner_tagger`: BIO sequence tagging with class-weighted loss (WeLT) or a CRF.

Tags are IOB2 or, with ``tagging = "iobes"``, IOBES (an entity's last token and
one-token entities get tags of their own). Predictions are decoded with Viterbi
constrained to valid transitions (for the softmax output over the per-token
log-probabilities, for the CRF over emissions plus learned transitions), so an I- tag
never follows O or another type in the output.
Entities go to ``doc.spans[spans_key]`` with per-span scores (the mean probability of
the decoded tag over the span's tokens: softmax probabilities, or CRF marginals) in
``attrs["scores"]``, and, with ``set_ents``, to ``doc.ents``.
"""

from itertools import islice
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate
from thinc.types import Floats2d

from ..bio import TAGGINGS, split_tag, tag_inventory
from ..bio_decoding import FORBIDDEN, bio_constraints, pad_flat, viterbi
from ..entity_writing import write_entities
from ..layers.crf import crf_loss, tag_marginals
from ..losses import softmax, weighted_cross_entropy
from ..scoring import make_entity_scorer
from .base import EntityPipe
from .common import DEFAULT_CNN_TOK2VEC, aligned_iob_tags, check_scheme, resolve_class_weights, weight_vector

DEFAULT_TAGGER_MODEL = (
    """
[model]
@architectures = "spacy_bioner.Tagger.v1"
output = "crf"
"""
    + DEFAULT_CNN_TOK2VEC
)
DEFAULT_MODEL = Config().from_str(DEFAULT_TAGGER_MODEL)["model"]


@Language.factory(
    "bioner_tagger",
    assigns=["doc.ents", "doc.spans"],
    default_config={
        "model": DEFAULT_MODEL,
        "spans_key": None,
        "set_ents": True,
        "tagging": "iob",
        "scheme": "none",
        "beta": 0.9,
        "weight_strength": 1.0,
        "class_weights": None,
        "scorer": None,
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_tagger(
    nlp: Language,
    name: str,
    model: Model[List[Doc], List[Floats2d]],
    spans_key: Optional[str],
    set_ents: bool,
    tagging: str,
    scheme: str,
    beta: float,
    weight_strength: float,
    class_weights: Optional[Dict[str, float]],
    scorer: Optional[Callable],
) -> "BioTagger":
    """BIO tagger over any number of entity types.

    spans_key: span group for the predictions (default: the component's name).
    set_ents: also write the predictions to doc.ents.
    tagging: "iob" (IOB2: B-X, I-X) or "iobes" (also E-X for an entity's last token and
        S-X for a one-token entity).
    scheme, beta, weight_strength: class weighting of the loss (spacy_bioner.weights),
        computed from the training tags in initialize(); ignored when class_weights is set.
    class_weights: explicit weight per tag ("O", "B-Disease", ...), all tags required.
    scorer: null: strict P/R/F of doc.ents (keys ents_p/r/f/per_type); a registered
        scorer to override it, e.g. spacy_bioner.entity_scorer.v1 with a spans_key.
    """
    return BioTagger(
        nlp.vocab,
        model,
        name,
        spans_key=spans_key,
        set_ents=set_ents,
        tagging=tagging,
        scheme=scheme,
        beta=beta,
        weight_strength=weight_strength,
        class_weights=class_weights,
        scorer=scorer,
    )


class BioTagger(EntityPipe):
    """BIO tagger with class-weighted cross-entropy (softmax output) or a CRF output."""

    types_only = True

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "bioner_tagger",
        *,
        spans_key: Optional[str] = None,
        set_ents: bool = True,
        tagging: str = "iob",
        scheme: str = "none",
        beta: float = 0.9,
        weight_strength: float = 1.0,
        class_weights: Optional[Dict[str, float]] = None,
        scorer: Optional[Callable] = None,
    ) -> None:
        check_scheme(name, scheme)
        if tagging not in TAGGINGS:
            raise ValueError(f"[{name}] unknown tagging {tagging!r}; valid: {', '.join(TAGGINGS)}")
        if model.attrs.get("output") == "crf" and (scheme != "none" or class_weights):
            raise ValueError(
                f"[{name}] class weights do not apply to the CRF output (its loss is a sequence "
                f'likelihood): set scheme = "none" and no class_weights, or use output = "softmax".'
            )
        self.vocab = vocab
        self.model = model
        self.name = name
        self.custom_scorer = scorer
        self.explicit_weights = dict(class_weights) if class_weights else None
        self.cfg: Dict[str, Any] = {
            "labels": [],
            "spans_key": spans_key,
            "set_ents": set_ents,
            "tagging": tagging,
            "scheme": scheme,
            "beta": beta,
            "weight_strength": weight_strength,
            "class_weights": {},
            "tag_counts": {},
        }
        self._weights_cache: Optional[Tuple[Tuple[str, ...], Any]] = None

    @property
    def scorer(self) -> Callable:
        """The configured scorer, else strict P/R/F of doc.ents (keys ents_*)."""
        return self.custom_scorer or make_entity_scorer()

    @property
    def tags(self) -> List[str]:
        """The tags the model predicts (IOB2 or IOBES), in output order."""
        return tag_inventory(self.cfg["labels"], self.tagging)

    @property
    def tagging(self) -> str:
        """The tag scheme, "iob" or "iobes"; a pipeline saved before the setting existed is IOB2."""
        return self.cfg.get("tagging", "iob")

    @property
    def is_crf(self) -> bool:
        return self.model.has_ref("crf")

    def output_sizes(self) -> Dict[str, int]:
        return {"output": len(self.tags)}

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[List[str]] = None,
    ) -> None:
        """Add the entity types, count the training tags, fix the class weights and
        initialize the model. Types in the data that are not in `labels` are an error."""
        validate_get_examples(get_examples, f"{self.name}.initialize")
        if labels is not None:
            for label in labels:
                self.add_label(label)
        else:
            found = {span.label_ for eg in get_examples() for span in eg.reference.ents}
            for label in sorted(found):
                self.add_label(label)
        if not self.labels:
            raise ValueError(
                f"[{self.name}] no entity types: the training data has no entities and no labels were given"
            )
        counts = dict.fromkeys(self.tags, 0)
        for i, example in enumerate(get_examples()):
            for tag in self._aligned_tags(example, i):
                if tag is not None:
                    counts[tag] += 1
        self.cfg["tag_counts"] = counts
        self.cfg["class_weights"] = resolve_class_weights(
            self.name,
            self.tags,
            counts,
            self.explicit_weights,
            self.cfg["scheme"],
            self.cfg["beta"],
            self.cfg["weight_strength"],
        )
        self._weights_cache = None
        n_tags = len(self.tags)
        self.model.get_ref("output").set_dim("nO", n_tags)
        if self.is_crf:
            self.model.get_ref("crf").set_dim("nO", n_tags)
        doc_sample = [eg.predicted for eg in islice(get_examples(), 10)]
        self.model.initialize(X=doc_sample)

    def _aligned_tags(self, example: Example, index: int) -> List[Optional[str]]:
        """Gold tag of each predicted token; None where unknown or misaligned."""
        return aligned_iob_tags(self.name, example, index, self.labels, self.tagging)

    def _gold_ids(self, examples: Iterable[Example]) -> List[numpy.ndarray]:
        """Gold tag ids per example (-1 where unknown), as host arrays."""
        index = {tag: i for i, tag in enumerate(self.tags)}
        return [
            numpy.asarray([-1 if tag is None else index[tag] for tag in self._aligned_tags(eg, i)], dtype="i")
            for i, eg in enumerate(examples)
        ]

    def _weight_array(self):
        key = tuple(self.tags)
        if self._weights_cache is None or self._weights_cache[0] != key:
            self._weights_cache = (key, weight_vector(self.model.ops, self.cfg["class_weights"], self.tags))
        return self._weights_cache[1]

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, f"{self.name}.update")
        if not any(len(eg.predicted) for eg in examples):
            return losses
        set_dropout_rate(self.model, drop)
        scores, backprop = self.model.begin_update([eg.predicted for eg in examples])
        loss, d_scores = self.get_loss(examples, scores)
        backprop(d_scores)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def get_loss(self, examples: Iterable[Example], scores: List[Floats2d]) -> Tuple[float, List[Floats2d]]:
        """Weighted cross-entropy (softmax output) or CRF negative log-likelihood. For the
        CRF this also increments the gradients of the transition scores."""
        examples = list(examples)
        validate_examples(examples, f"{self.name}.get_loss")
        gold = self._gold_ids(examples)
        xp = self.model.ops.xp
        if self.is_crf:
            d_scores = [xp.zeros_like(s) for s in scores]
            nonempty = [i for i, s in enumerate(scores) if len(s)]
            n_tokens = sum(len(s) for s in scores)
            loss, d_nonempty = crf_loss(
                self.model.get_ref("crf"),
                [scores[i] for i in nonempty],
                [gold[i] for i in nonempty],
                *bio_constraints(self.tags),
                scale=1.0 / n_tokens,
            )
            for i, d in zip(nonempty, d_nonempty):
                d_scores[i] = d
            return loss, d_scores
        lengths = [len(s) for s in scores]
        targets = xp.asarray(numpy.concatenate(gold))
        loss, d_flat = weighted_cross_entropy(xp, xp.concatenate(scores), targets, self._weight_array())
        d_scores, start = [], 0
        for length in lengths:
            d_scores.append(d_flat[start : start + length])
            start += length
        return loss, d_scores

    def predict(self, docs: Iterable[Doc]) -> Tuple[List[numpy.ndarray], List[numpy.ndarray]]:
        """Best valid tag sequence per doc, and the probability of each chosen tag (CRF:
        its marginal, only inside predicted entities, 0 elsewhere; softmax: everywhere).

        The scores of the batch come to the host in one transfer and are decoded there:
        on a GPU, Viterbi and forward-backward are many tiny steps, cheaper on the CPU
        than as kernel launches. Host (numpy) arrays are returned.
        """
        docs = list(docs)
        lengths = numpy.asarray([len(doc) for doc in docs], dtype="i")
        if not lengths.any():
            return [numpy.zeros((0,), dtype="i") for _ in docs], [numpy.zeros((0,), dtype="f") for _ in docs]
        ops = self.model.ops
        scores = ops.to_numpy(ops.flatten(self.model.predict(docs)))
        self._rule_out_by_token(docs, scores)
        nonempty = lengths[lengths > 0]
        emissions = pad_flat(numpy, scores, nonempty)
        forbidden, forbidden_start, forbidden_end = bio_constraints(self.tags)
        if self.is_crf:
            crf = self.model.get_ref("crf")
            transitions = ops.to_numpy(crf.get_param("transitions")) + forbidden
            start = ops.to_numpy(crf.get_param("start")) + forbidden_start
            end = ops.to_numpy(crf.get_param("end")) + forbidden_end
            paths = viterbi(numpy, emissions, nonempty, transitions, start, end)
            confidences = self._entity_marginals(emissions, nonempty, paths, transitions, start, end)
        else:
            probs = softmax(numpy, emissions)
            log_probs = numpy.log(numpy.maximum(probs, 1e-12))
            paths = viterbi(numpy, log_probs, nonempty, forbidden, forbidden_start, forbidden_end)
            confidences = numpy.take_along_axis(probs, paths[:, :, None], axis=2)[:, :, 0]
        rows = iter(range(len(nonempty)))
        out_paths, out_confidences = [], []
        for length in lengths.tolist():
            row = next(rows) if length else 0
            out_paths.append(paths[row, :length])
            out_confidences.append(confidences[row, :length])
        return out_paths, out_confidences

    def _rule_out_by_token(self, docs: List[Doc], scores: numpy.ndarray) -> None:
        """Forbid, in place, the tags that spaCy's `ner` rules out token by token: any
        entity tag on whitespace, so an entity never starts, ends or consists of it, and
        an entity going on (I- or E-) across a sentence start that the doc marks (set by
        a parser, a senter or the corpus reader), so an entity never spans two sentences."""
        token_attrs = numpy.concatenate([doc.to_array(["IS_SPACE", "SENT_START"]) for doc in docs if len(doc)])
        scores[token_attrs[:, 0].astype(bool), 1:] += FORBIDDEN
        # A doc's first token is a sentence start too, ruled out by the start constraint
        # at decoding; marked here it would change the softmax probabilities it reports.
        doc_starts = numpy.cumsum([0] + [len(doc) for doc in docs if len(doc)])[:-1]
        sent_starts = numpy.setdiff1d(numpy.flatnonzero(token_attrs[:, 1] == 1), doc_starts)
        continues = numpy.flatnonzero([split_tag(tag)[0] in ("I", "E") for tag in self.tags])
        scores[sent_starts[:, None], continues[None, :]] += FORBIDDEN

    @staticmethod
    def _entity_marginals(emissions, lengths, paths, transitions, start, end) -> numpy.ndarray:
        """The CRF marginal of each chosen tag, computed (forward-backward) only for the
        sequences with a predicted entity: the span scores need no other."""
        confidences = numpy.zeros(paths.shape, dtype="f")
        inside = numpy.arange(paths.shape[1])[None, :] < lengths[:, None]
        tagged = numpy.flatnonzero(((paths > 0) & inside).any(axis=1))
        if len(tagged):
            marginals = tag_marginals(numpy, emissions[tagged], lengths[tagged], transitions, start, end)
            chosen = numpy.take_along_axis(marginals, paths[tagged, :, None], axis=2)[:, :, 0]
            confidences[tagged] = chosen
        return confidences

    def set_annotations(
        self, docs: Iterable[Doc], predictions: Tuple[List[numpy.ndarray], List[numpy.ndarray]]
    ) -> None:
        """Entities to doc.spans[spans_key] (and doc.ents), each scored by the mean
        probability of its tags. Paths are valid, so an entity is a B (or S) tag and the
        I (and E) tags after it: found for the whole batch at once, not token by token."""
        paths, confidences = predictions
        prefixes, labels = zip(*(split_tag(tag) for tag in self.tags))
        is_begin = numpy.asarray([prefix in ("B", "S") for prefix in prefixes])
        is_inside = numpy.asarray([prefix in ("I", "E") for prefix in prefixes])
        lengths = numpy.asarray([len(path) for path in paths], dtype="int64")
        doc_ends = numpy.cumsum(lengths)
        doc_starts = doc_ends - lengths
        path = numpy.concatenate([numpy.zeros((0,), dtype="i"), *paths])
        # an entity ends at the first token after its start that is not an I or E tag, or at its doc's end
        breaks = numpy.union1d(numpy.flatnonzero(~is_inside[path]), doc_ends)
        starts = numpy.flatnonzero(is_begin[path])
        ends = breaks[numpy.searchsorted(breaks, starts, side="right")]
        totals = numpy.concatenate([[0.0], numpy.cumsum(numpy.concatenate([[], *confidences]), dtype="f8")])
        scores = ((totals[ends] - totals[starts]) / (ends - starts)).tolist()
        entity_labels = [labels[tag] for tag in path[starts].tolist()]
        doc_of = numpy.searchsorted(doc_ends, starts, side="right")
        starts, ends = (starts - doc_starts[doc_of]).tolist(), (ends - doc_starts[doc_of]).tolist()
        bounds = numpy.searchsorted(doc_of, numpy.arange(len(lengths) + 1)).tolist()
        for i, doc in enumerate(docs):
            entities = range(bounds[i], bounds[i + 1])
            spans = [Span(doc, starts[j], ends[j], label=entity_labels[j]) for j in entities]
            write_entities(doc, self.spans_key, spans, [scores[j] for j in entities], self.cfg["set_ents"])
