"""`bioner_llm_tagger`: VANER (Bian et al. 2024), sequence labelling with an instructed LLM.

For every entity type it knows, the component prepends an instruction ("If any Disease
entity is mentioned in the NCBI-disease input, extract it. ##input: ") to the sentence
and tags the sentence O/B/I for that type with a Llama-family decoder whose causal mask
is removed, LoRA adapters and a linear head (spacy_bioner.llm). All (sentence, type)
pairs of a batch run together; the entities of all types go to ``doc.spans[spans_key]``
with scores and a non-overlapping selection to ``doc.ents``.

Dataset names come from the multi-dataset reader (spacy_bioner.MultiCorpus.v1) where a
doc is marked, else from the `dataset` setting; `instruction_mode = "adapt"` leaves the
dataset name out (VANER_adapt). Training can mix in Dense Bioentity Recognition samples
(`dbr_mode` "retrieved" or "random", `dbr_ratio` samples per sentence and type).
"""

import random
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
import srsly
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import ensure_path
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer

from ..bio import iob_to_spans, split_tag, tag_inventory
from ..bio_decoding import bio_constraints, decode
from ..datasets import dataset_of, entity_types_of
from ..entity_writing import write_entities
from ..llm.dbr import DBR_MODES, dbr_sample, entity_index, knowledge_base, random_entries
from ..llm.instructions import (
    DEFAULT_TEMPLATE,
    IGNORE,
    OUTSIDE,
    Instance,
    InstructionEncoder,
    Window,
    gather_word_scores,
)
from ..llm.model import load_llm, pad_batch, save_llm
from ..losses import softmax, weighted_cross_entropy
from ..scoring import make_entity_scorer
from .base import EntityPipe
from .common import aligned_iob_tags, check_scheme, resolve_class_weights

DEFAULT_LLM_MODEL = """
[model]
@architectures = "spacy_bioner.LLMTagger.v1"
name = "HuggingFaceTB/SmolLM2-135M-Instruct"
gguf_file = null
dtype = "float32"
device = "auto"
attn_implementation = "sdpa"
bidirectional = true
load_in_4bit = false
lora_r = 16
lora_alpha = 32
lora_dropout = 0.1
lora_targets = "all-linear"
head_dropout = 0.1
max_length = 128
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_LLM_MODEL)["model"]
INSTRUCTION_MODES = ("dataset", "adapt")
# The tags of one instructed type, in the order of the model's outputs.
TAGS = [split_tag(tag)[0] for tag in tag_inventory(["X"])]


@Language.factory(
    "bioner_llm_tagger",
    assigns=["doc.ents", "doc.spans"],
    default_config={
        "model": DEFAULT_MODEL,
        "spans_key": None,
        "set_ents": True,
        "template": DEFAULT_TEMPLATE,
        "instruction_mode": "dataset",
        "dataset": None,
        "dbr_mode": "none",
        "dbr_kb": None,
        "dbr_ratio": 1.0,
        "dbr_positives": 10,
        "dbr_negatives": 5,
        "dbr_top_k": 3,
        "dbr_min_similarity": 0.5,
        "batch_size": 16,
        "pack_base_model": False,
        "seed": 0,
        "scheme": "none",
        "beta": 0.9,
        "weight_strength": 1.0,
        "class_weights": None,
        "scorer": None,
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_llm_tagger(
    nlp: Language,
    name: str,
    model: Model,
    spans_key: Optional[str],
    set_ents: bool,
    template: str,
    instruction_mode: str,
    dataset: Optional[str],
    dbr_mode: str,
    dbr_kb: Optional[str],
    dbr_ratio: float,
    dbr_positives: int,
    dbr_negatives: int,
    dbr_top_k: int,
    dbr_min_similarity: float,
    batch_size: int,
    pack_base_model: bool,
    seed: int,
    scheme: str,
    beta: float,
    weight_strength: float,
    class_weights: Optional[Dict[str, float]],
    scorer: Optional[Callable],
) -> "LLMTagger":
    """Instructed LLM tagger over any number of entity types (one pass per type).

    template: the instruction, with {entity_type} and {dataset} fields.
    instruction_mode: "dataset" names the dataset: the one a doc is marked with, else
        `dataset` (default: the first, alphabetically, of the training datasets), else
        none; "adapt" never names it (VANER_adapt).
    dbr_mode: "none", "retrieved" (names from `dbr_kb` near the sentence's phrases) or
        "random" (random names of `dbr_kb`); dbr_ratio: DBR samples per training sentence
        and type (fractions are drawn at random); dbr_positives / dbr_negatives: at most
        this many names of the instructed / other types; dbr_top_k, dbr_min_similarity:
        neighbours kept per phrase and their least cosine similarity.
    batch_size: sequences per forward pass (gradients are accumulated over a batch).
    pack_base_model: also save the base weights, so the pipeline loads without them.
    scheme, beta, weight_strength, class_weights: loss weights of O/B/I (spacy_bioner.weights);
        VANER uses plain cross-entropy ("none").
    scorer: null: strict P/R/F of doc.ents (keys ents_p/r/f/per_type); a registered
        scorer to override it, e.g. spacy_bioner.entity_scorer.v1 with a spans_key.
    """
    return LLMTagger(
        nlp.vocab,
        model,
        name,
        spans_key=spans_key,
        set_ents=set_ents,
        template=template,
        instruction_mode=instruction_mode,
        dataset=dataset,
        dbr_mode=dbr_mode,
        dbr_kb=dbr_kb,
        dbr_ratio=dbr_ratio,
        dbr_positives=dbr_positives,
        dbr_negatives=dbr_negatives,
        dbr_top_k=dbr_top_k,
        dbr_min_similarity=dbr_min_similarity,
        batch_size=batch_size,
        pack_base_model=pack_base_model,
        seed=seed,
        scheme=scheme,
        beta=beta,
        weight_strength=weight_strength,
        class_weights=class_weights,
        scorer=scorer,
    )


class LLMTagger(EntityPipe):
    """VANER: an instructed, bidirectional LLM with LoRA tagging one entity type per pass."""

    # The head predicts O/B/I of the instructed type, so types can be added after
    # training too (they are then only as good as the instruction).
    output_ref = None
    types_only = True

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "bioner_llm_tagger",
        *,
        spans_key: Optional[str] = None,
        set_ents: bool = True,
        template: str = DEFAULT_TEMPLATE,
        instruction_mode: str = "dataset",
        dataset: Optional[str] = None,
        dbr_mode: str = "none",
        dbr_kb: Optional[str] = None,
        dbr_ratio: float = 1.0,
        dbr_positives: int = 10,
        dbr_negatives: int = 5,
        dbr_top_k: int = 3,
        dbr_min_similarity: float = 0.5,
        batch_size: int = 16,
        pack_base_model: bool = False,
        seed: int = 0,
        scheme: str = "none",
        beta: float = 0.9,
        weight_strength: float = 1.0,
        class_weights: Optional[Dict[str, float]] = None,
        scorer: Optional[Callable] = None,
    ) -> None:
        check_scheme(name, scheme)
        if instruction_mode not in INSTRUCTION_MODES:
            raise ValueError(
                f"[{name}] unknown instruction_mode {instruction_mode!r}; valid: {', '.join(INSTRUCTION_MODES)}"
            )
        if dbr_mode not in DBR_MODES:
            raise ValueError(f"[{name}] unknown dbr_mode {dbr_mode!r}; valid: {', '.join(DBR_MODES)}")
        if dbr_mode != "none" and not dbr_kb:
            raise ValueError(f"[{name}] dbr_mode = {dbr_mode!r} needs dbr_kb, a TSV of entity names and types")
        for setting, value, least in (
            ("batch_size", batch_size, 1),
            ("dbr_top_k", dbr_top_k, 1),
            ("dbr_positives", dbr_positives, 0),
            ("dbr_negatives", dbr_negatives, 0),
        ):
            if not isinstance(value, int) or value < least:
                raise ValueError(f"[{name}] {setting} must be an integer >= {least}; got {value!r}")
        if dbr_ratio < 0:
            raise ValueError(f"[{name}] dbr_ratio must be >= 0; got {dbr_ratio!r}")
        self.vocab = vocab
        self.model = model
        self.name = name
        self.custom_scorer = scorer
        self.explicit_weights = dict(class_weights) if class_weights else None
        self.cfg: Dict[str, Any] = {
            "labels": [],
            "datasets": [],
            "spans_key": spans_key,
            "set_ents": set_ents,
            "template": template,
            "instruction_mode": instruction_mode,
            "dataset": dataset,
            "dbr_mode": dbr_mode,
            "dbr_kb": dbr_kb,
            "dbr_ratio": dbr_ratio,
            "dbr_positives": dbr_positives,
            "dbr_negatives": dbr_negatives,
            "dbr_top_k": dbr_top_k,
            "dbr_min_similarity": dbr_min_similarity,
            "batch_size": batch_size,
            "pack_base_model": pack_base_model,
            "seed": seed,
            "scheme": scheme,
            "beta": beta,
            "weight_strength": weight_strength,
            "class_weights": {},
            "tag_counts": {},
        }
        self._rng = random.Random(seed)
        self._encoder: Optional[InstructionEncoder] = None
        self._retrieved: Dict[Tuple[str, ...], list] = {}

    @property
    def scorer(self) -> Callable:
        """The configured scorer, else strict P/R/F of doc.ents (keys ents_*)."""
        return self.custom_scorer or make_entity_scorer()

    @property
    def encoder(self) -> InstructionEncoder:
        tokenizer = self.model.attrs["tokenizer"]
        if tokenizer is None:
            raise ValueError(
                f"[{self.name}] the model is not initialized: call nlp.initialize() or load a trained pipeline"
            )
        if self._encoder is None or self._encoder.tokenizer is not tokenizer:
            max_length = self.model.attrs["settings"]["max_length"]
            self._encoder = InstructionEncoder(tokenizer, self.cfg["template"], max_length)
        return self._encoder

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[List[str]] = None,
    ) -> None:
        """Add the entity types (given, or found in the data), note the dataset names,
        count the training tags, fix the class weights, load the backbone and prepare
        the DBR knowledge base. Types in the data that are not in `labels` are an error."""
        validate_get_examples(get_examples, f"{self.name}.initialize")
        if labels is not None:
            for label in labels:
                self.add_label(label)
        else:
            found = set()
            for eg in get_examples():
                found.update(span.label_ for span in eg.reference.ents)
                found.update(entity_types_of(eg.reference) or ())
            for label in sorted(found):
                self.add_label(label)
        if not self.labels:
            raise ValueError(
                f"[{self.name}] no entity types: the training data has no entities and no labels were given"
            )
        examples = list(get_examples())
        self.cfg["datasets"] = sorted({dataset_of(eg.reference) for eg in examples} - {None})
        if self.cfg["dataset"] is None and self.cfg["datasets"]:
            self.cfg["dataset"] = self.cfg["datasets"][0]
        counts = dict.fromkeys(TAGS, 0)
        for instance in self._gold_instances(examples):
            for label in instance.labels:
                if label != IGNORE:
                    counts[TAGS[label]] += 1
        self.cfg["tag_counts"] = counts
        self.cfg["class_weights"] = resolve_class_weights(
            self.name,
            TAGS,
            counts,
            self.explicit_weights,
            self.cfg["scheme"],
            self.cfg["beta"],
            self.cfg["weight_strength"],
        )
        self.model.initialize()
        self._rng = random.Random(self.cfg["seed"])
        self._retrieved = {}
        if self.cfg["dbr_mode"] == "retrieved":
            entity_index(self.cfg["dbr_kb"])
        elif self.cfg["dbr_mode"] == "random":
            knowledge_base(self.cfg["dbr_kb"])

    def _dataset(self, doc: Doc) -> Optional[str]:
        """The dataset name for the instruction, or None to leave it out."""
        if self.cfg["instruction_mode"] == "adapt":
            return None
        return dataset_of(doc) or self.cfg["dataset"]

    def _entity_types(self, doc: Doc, index: int) -> List[str]:
        """The types to tag in a doc: those its dataset annotates, else all known types."""
        declared = entity_types_of(doc)
        if declared is None:
            return list(self.labels)
        unknown = [label for label in declared if label not in self.labels]
        if unknown:
            raise ValueError(
                f"[{self.name}] doc {index} is marked with entity type {unknown[0]!r}, which the component "
                f"was not given (known types: {list(self.labels)}); add it to the labels."
            )
        return declared

    def _gold_instances(self, examples: Sequence[Example]) -> List[Instance]:
        """One labelled instance per example and entity type of its dataset."""
        instances = []
        for i, example in enumerate(examples):
            doc = example.predicted
            tags = aligned_iob_tags(self.name, example, i, self.labels)
            words, spaces = [t.text for t in doc], [bool(t.whitespace_) for t in doc]
            for entity_type in self._entity_types(example.reference, i):
                labels = [IGNORE if tag is None else _tag_id(tag, entity_type) for tag in tags]
                instances.append(Instance(words, spaces, entity_type, self._dataset(example.reference), labels, key=i))
        return instances

    def _dbr_instances(self, instances: Sequence[Instance]) -> List[Instance]:
        """DBR samples for the gold instances: `dbr_ratio` per instance on average."""
        mode = self.cfg["dbr_mode"]
        if mode == "none" or not instances:
            return []
        whole, fraction = divmod(self.cfg["dbr_ratio"], 1.0)
        n_pos, n_neg = self.cfg["dbr_positives"], self.cfg["dbr_negatives"]
        samples = []
        for instance in instances:
            for _ in range(int(whole) + (self._rng.random() < fraction)):
                if mode == "random":
                    entries = random_entries(
                        knowledge_base(self.cfg["dbr_kb"])[1], instance.entity_type, self._rng, n_pos, n_neg
                    )
                else:
                    entries = self._retrieve(instance.words)
                sample = dbr_sample(entries, instance.entity_type, self._rng, n_pos, n_neg)
                if sample is not None:
                    words, spaces, labels = sample
                    samples.append(Instance(words, spaces, instance.entity_type, None, labels))
        return samples

    def _retrieve(self, words: Sequence[str]) -> list:
        key = tuple(words)
        if key not in self._retrieved:
            index = entity_index(self.cfg["dbr_kb"])
            self._retrieved[key] = index.retrieve(words, self.cfg["dbr_top_k"], self.cfg["dbr_min_similarity"])
        return self._retrieved[key]

    def _chunks(self, windows: Sequence[Window]) -> List[List[int]]:
        """Window indices in batches of `batch_size`, sorted by length to save padding."""
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids))
        size = self.cfg["batch_size"]
        return [order[i : i + size] for i in range(0, len(order), size)]

    def _batch(self, windows: Sequence[Window]):
        tokenizer = self.model.attrs["tokenizer"]
        return pad_batch([w.input_ids for w in windows], tokenizer.pad_token_id or 0)

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """One optimizer step over the examples' instances (and DBR samples). The head's
        dropout is the model's `head_dropout`; `drop` is not used."""
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, f"{self.name}.update")
        gold = [instance for instance in self._gold_instances(examples) if instance.words]
        windows = self.encoder.encode(gold + self._dbr_instances(gold))
        weights = numpy.asarray([self.cfg["class_weights"][tag] for tag in TAGS], dtype="f")
        targets = [numpy.asarray(w.labels, dtype="i") for w in windows]
        total = sum(float(weights[t[t >= 0]].sum()) for t in targets)
        if total == 0.0:
            return losses
        for chunk in self._chunks(windows):
            logits, backprop = self.model.begin_update(self._batch([windows[i] for i in chunk]))
            chunk_targets = numpy.full(logits.shape[:2], IGNORE, dtype="i")
            for row, i in enumerate(chunk):
                chunk_targets[row, : len(targets[i])] = targets[i]
            flat_targets = chunk_targets.reshape(-1)
            share = float(weights[flat_targets[flat_targets >= 0]].sum()) / total
            if share == 0.0:
                continue
            loss, d_flat = weighted_cross_entropy(numpy, logits.reshape(-1, logits.shape[-1]), flat_targets, weights)
            backprop((d_flat * share).reshape(logits.shape))
            losses[self.name] += loss * share
        if sgd is not None:
            self.finish_update(sgd)
        return losses

    def get_loss(self, examples: Iterable[Example], scores: Any) -> Tuple[float, Any]:
        raise NotImplementedError(f"[{self.name}] the loss is computed inside update(), per batch of windows")

    def predict(self, docs: Iterable[Doc]) -> List[List[Tuple[str, numpy.ndarray, numpy.ndarray]]]:
        """Per doc, per entity type: the best valid O/B/I path and each tag's probability."""
        docs = list(docs)
        instances = [
            Instance([t.text for t in doc], [bool(t.whitespace_) for t in doc], entity_type, self._dataset(doc), key=i)
            for i, doc in enumerate(docs)
            if len(doc)
            for entity_type in self._entity_types(doc, i)
        ]
        results: List[List[Tuple[str, numpy.ndarray, numpy.ndarray]]] = [[] for _ in docs]
        if not instances:
            return results
        windows = self.encoder.encode(instances)
        window_scores: List[Any] = [None] * len(windows)
        for chunk in self._chunks(windows):
            logits = self.model.predict(self._batch([windows[i] for i in chunk]))
            for row, i in enumerate(chunk):
                window_scores[i] = logits[row]
        word_scores = gather_word_scores(windows, window_scores, [len(inst.words) for inst in instances])
        probs = [softmax(numpy, scores) for scores in word_scores]
        forbidden, forbidden_start, forbidden_end = bio_constraints(tag_inventory(["X"]))
        log_probs = [numpy.log(numpy.maximum(p, 1e-12)) for p in probs]
        paths = decode(numpy, log_probs, forbidden, forbidden_start, forbidden_end)
        for instance, path, p in zip(instances, paths, probs):
            results[instance.key].append((instance.entity_type, path, p[numpy.arange(len(path)), path]))
        return results

    def set_annotations(
        self, docs: Iterable[Doc], predictions: List[List[Tuple[str, numpy.ndarray, numpy.ndarray]]]
    ) -> None:
        """Entities of all types to doc.spans[spans_key] (and doc.ents, non-overlapping)."""
        for doc, per_type in zip(docs, predictions):
            spans, scores = [], []
            for entity_type, path, confidence in per_type:
                tags = tag_inventory([entity_type])
                for start, end, label in iob_to_spans([tags[i] for i in path]):
                    spans.append(Span(doc, start, end, label=label))
                    scores.append(float(confidence[start:end].mean()))
            write_entities(doc, self.spans_key, spans, scores, self.cfg["set_ents"])

    def to_disk(self, path, *, exclude: Iterable[str] = tuple()) -> None:
        """cfg as JSON, and the network as safetensors files and a tokenizer directory."""
        path = ensure_path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / "cfg", self.cfg)
        save_llm(self.model, path / "model", self.cfg["pack_base_model"])

    def from_disk(self, path, *, exclude: Iterable[str] = tuple()) -> "LLMTagger":
        path = ensure_path(path)
        self.cfg.update(srsly.read_json(path / "cfg"))
        for label in self.labels:
            self.vocab.strings.add(label)
        load_llm(self.model, path / "model")
        self._encoder = None
        return self

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        """The files of to_disk() in a msgpack map (no pickle)."""
        with tempfile.TemporaryDirectory() as tmp:
            self.to_disk(tmp, exclude=exclude)
            files = {str(p.relative_to(tmp)): p.read_bytes() for p in sorted(Path(tmp).rglob("*")) if p.is_file()}
        return srsly.msgpack_dumps(files)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "LLMTagger":
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in srsly.msgpack_loads(bytes_data).items():
                target = Path(tmp) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            return self.from_disk(tmp, exclude=exclude)


def _tag_id(tag: str, entity_type: str) -> int:
    """The O/B/I id of an IOB2 gold tag when `entity_type` is instructed (other types are O)."""
    prefix, label = split_tag(tag)
    return TAGS.index(prefix) if label == entity_type else OUTSIDE
