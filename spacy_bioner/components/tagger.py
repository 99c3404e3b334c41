"""`bioner_tagger`: BIO sequence tagging with class-weighted loss (WeLT) or a CRF.

Predictions are decoded with Viterbi constrained to valid IOB2 transitions (for the
softmax output over the per-token log-probabilities, for the CRF over emissions plus
learned transitions), so an I- tag never follows O or another type in the output.
Entities go to ``doc.spans[spans_key]`` with per-span scores (the mean probability of
the decoded tag over the span's tokens: softmax probabilities, or CRF marginals) in
``attrs["scores"]``, and, with ``set_ents``, to ``doc.ents``.
"""
from itertools import islice
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate
from thinc.types import Floats2d, Ints1d

from ..annotations import write_entities
from ..bio import iob_to_spans, tag_inventory
from ..layers.crf import FORBIDDEN, bio_constraints, crf_loss, decode, forward_backward, pad
from ..losses import softmax, weighted_cross_entropy
from ..scoring import make_entity_scorer
from .base import EntityPipe
from .common import DEFAULT_CNN_TOK2VEC, aligned_iob_tags, check_scheme, resolve_class_weights, weight_vector

DEFAULT_TAGGER_MODEL = """
[model]
@architectures = "spacy_bioner.Tagger.v1"
output = "softmax"
""" + DEFAULT_CNN_TOK2VEC
DEFAULT_MODEL = Config().from_str(DEFAULT_TAGGER_MODEL)["model"]

@Language.factory(
    "bioner_tagger",
    assigns=["doc.ents", "doc.spans"],
    default_config={
        "model": DEFAULT_MODEL,
        "spans_key": None,
        "set_ents": True,
        "scheme": "welt",
        "beta": 0.9,
        "weight_strength": 1.0,
        "class_weights": None,
        "scorer": {"@scorers": "spacy_bioner.entity_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_tagger(
    nlp: Language,
    name: str,
    model: Model[List[Doc], List[Floats2d]],
    spans_key: Optional[str],
    set_ents: bool,
    scheme: str,
    beta: float,
    weight_strength: float,
    class_weights: Optional[Dict[str, float]],
    scorer: Optional[Callable],
) -> "BioTagger":
    """BIO tagger over any number of entity types.

    spans_key: span group for the predictions (default: the component's name).
    set_ents: also write the predictions to doc.ents.
    scheme, beta, weight_strength: class weighting of the loss (spacy_bioner.weights),
        computed from the training tags in initialize(); ignored when class_weights is set.
    class_weights: explicit weight per tag ("O", "B-Disease", ...), all tags required.
    """
    return BioTagger(
        nlp.vocab,
        model,
        name,
        spans_key=spans_key,
        set_ents=set_ents,
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
        scheme: str = "welt",
        beta: float = 0.9,
        weight_strength: float = 1.0,
        class_weights: Optional[Dict[str, float]] = None,
        scorer: Optional[Callable] = make_entity_scorer(),
    ) -> None:
        check_scheme(name, scheme)
        if model.attrs.get("output") == "crf" and (scheme != "none" or class_weights):
            raise ValueError(
                f"[{name}] class weights do not apply to the CRF output (its loss is a sequence "
                f"likelihood): set scheme = \"none\" and no class_weights, or use output = \"softmax\"."
            )
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.explicit_weights = dict(class_weights) if class_weights else None
        self.cfg: Dict[str, Any] = {
            "labels": [],
            "spans_key": spans_key,
            "set_ents": set_ents,
            "scheme": scheme,
            "beta": beta,
            "weight_strength": weight_strength,
            "class_weights": {},
            "tag_counts": {},
        }
        self._weights_cache: Optional[Tuple[Tuple[str, ...], Any]] = None

    @property
    def tags(self) -> List[str]:
        """The IOB2 tags the model predicts, in output order."""
        return tag_inventory(self.cfg["labels"])

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
            raise ValueError(f"[{self.name}] no entity types: the training data has no entities and no labels were given")
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
        """IOB2 gold tag of each predicted token; None where unknown or misaligned."""
        return aligned_iob_tags(self.name, example, index, self.labels)

    def _gold_ids(self, examples: Iterable[Example]) -> List[Ints1d]:
        index = {tag: i for i, tag in enumerate(self.tags)}
        xp = self.model.ops.xp
        return [
            xp.asarray([-1 if tag is None else index[tag] for tag in self._aligned_tags(eg, i)], dtype="i")
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
            forbidden, forbidden_start = (xp.asarray(a) for a in bio_constraints(self.tags))
            n_tokens = sum(len(s) for s in scores)
            loss, d_nonempty = crf_loss(
                self.model.get_ref("crf"),
                [scores[i] for i in nonempty],
                [gold[i] for i in nonempty],
                forbidden,
                forbidden_start,
                scale=1.0 / n_tokens,
            )
            for i, d in zip(nonempty, d_nonempty):
                d_scores[i] = d
            return loss, d_scores
        lengths = [len(s) for s in scores]
        loss, d_flat = weighted_cross_entropy(xp, xp.concatenate(scores), xp.concatenate(gold), self._weight_array())
        d_scores, start = [], 0
        for length in lengths:
            d_scores.append(d_flat[start : start + length])
            start += length
        return loss, d_scores

    def predict(self, docs: Iterable[Doc]) -> Tuple[List[Ints1d], List[Floats2d]]:
        """Best valid tag sequence per doc, and the probability of each chosen tag."""
        docs = list(docs)
        xp = self.model.ops.xp
        if not any(len(doc) for doc in docs):
            return [xp.zeros((0,), dtype="i") for _ in docs], [xp.zeros((0,), dtype="f") for _ in docs]
        scores = [s + self._space_mask(doc) for s, doc in zip(self.model.predict(docs), docs)]
        forbidden, forbidden_start = (xp.asarray(a) for a in bio_constraints(self.tags))
        if self.is_crf:
            crf = self.model.get_ref("crf")
            transitions = crf.get_param("transitions") + forbidden
            start = crf.get_param("start") + forbidden_start
            end = crf.get_param("end")
            paths = decode(xp, scores, transitions, start, end)
            probs = self._crf_marginals(scores, transitions, start, end)
        else:
            probs = [softmax(xp, s) for s in scores]
            log_probs = [xp.log(xp.maximum(p, 1e-12)) for p in probs]
            paths = decode(xp, log_probs, forbidden, forbidden_start, xp.zeros((len(self.tags),), dtype="f"))
        confidences = [p[xp.arange(len(path)), path] for p, path in zip(probs, paths)]
        return paths, confidences

    def _space_mask(self, doc: Doc) -> Floats2d:
        """Additive scores that rule out entity tags on whitespace tokens (as spaCy's
        `ner` does), so an entity never starts, ends or consists of whitespace."""
        xp = self.model.ops.xp
        mask = xp.zeros((len(doc), len(self.tags)), dtype="f")
        spaces = xp.asarray([token.is_space for token in doc], dtype="bool")
        mask[spaces, 1:] = FORBIDDEN
        return mask

    def _crf_marginals(self, scores: List[Floats2d], transitions, start, end) -> List[Floats2d]:
        xp = self.model.ops.xp
        marginals = [xp.zeros_like(s) for s in scores]
        nonempty = [i for i, s in enumerate(scores) if len(s)]
        padded, lengths = pad(xp, [scores[i] for i in nonempty])
        _, batch_marginals, _ = forward_backward(xp, padded, lengths, transitions, start, end)
        for row, i in enumerate(nonempty):
            marginals[i] = batch_marginals[row, : len(scores[i])]
        return marginals

    def set_annotations(self, docs: Iterable[Doc], predictions: Tuple[List[Ints1d], List[Floats2d]]) -> None:
        tags = self.tags
        for doc, path, confidence in zip(docs, *predictions):
            path = self.model.ops.to_numpy(path).tolist()
            confidence = self.model.ops.to_numpy(confidence)
            spans = [Span(doc, s, e, label=label) for s, e, label in iob_to_spans([tags[i] for i in path])]
            scores = [float(confidence[span.start : span.end].mean()) for span in spans]
            write_entities(doc, self.spans_key, spans, scores, self.cfg["set_ents"])
