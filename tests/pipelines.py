"""Tiny trained pipelines of every component, built once per test session, for the
package-wide reliability tests (safe loading, round trips, odd input).

`PIPELINES` names them; the `pipelines` fixture (conftest.py) gives a `Pipelines`
object that trains a pipeline on first use, saves it and loads it back:

- tagger_softmax, tagger_crf: `bioner_tagger` with either output; tagger_crf is followed
  by `bioner_abbreviations` on its span group, as in configs/tagger.cfg;
- spans: `bioner_spans` on nested entities;
- relations: `bioner_relations`;
- llm: `bioner_llm_tagger` on the tiny random Llama of tests/llm_helpers.py, with the
  base weights packed into the pipeline directory;
- ensemble: an `entity_ruler` whose `doc.ents` `bioner_ents_to_spans` copies to the
  span group "ruler", two taggers (softmax, CRF) that write only span groups, and three
  `bioner_ensemble` components over the three members: union, meta (with a tiny trained
  KEEP/DROP filter) and majority (which writes doc.ents).
"""

import random
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example

from spacy_bioner.relations import relation_rows

from .util import make_examples, make_nlp, tiny_tok2vec, train

PIPELINES = ("tagger_softmax", "tagger_crf", "spans", "relations", "llm", "ensemble")

# Texts every pipeline is compared on: training-like sentences and edge cases.
TEXTS = [
    "Aspirin induced Reye syndrome in children .",
    "Cisplatin causes acute kidney injury .",
    "Mutations in the BRCA1 gene cause breast cancer .",
    "Rash was noted after penicillin and fever after ibuprofen .",
    "No adverse events were seen .",
    "",
    "   ",
    "cisplatin",
    "Haloperidol may trigger neuroleptic malignant syndrome.\n\nTamoxifen\tdaily .",
    "Cisplatin causes acute kidney injury ( AKI ) . AKI resolved ; ( AKI ) ( ) ( (",
]

NESTED = [
    ("Mutations in the BRCA1 gene cause breast cancer .", [(3, 5, "Gene"), (3, 4, "Gene"), (6, 8, "Disease")]),
    ("Cisplatin induced kidney injury was severe .", [(0, 1, "Drug"), (0, 4, "Disease"), (2, 4, "Disease")]),
    ("No adverse events were seen .", []),
]

# (text, entities (start, end, type), relations (head entity, tail entity, type))
RELATIONS = [
    ("Aspirin induced Reye syndrome in children .", [(0, 1, "Drug"), (2, 4, "Effect")], [(1, 0, "ADE")]),
    ("Cisplatin causes acute kidney injury .", [(0, 1, "Drug"), (2, 5, "Effect")], [(1, 0, "ADE")]),
    ("No adverse events were seen .", [], []),
    (
        "Rash was noted after penicillin and fever after ibuprofen .",
        [(0, 1, "Effect"), (4, 5, "Drug"), (6, 7, "Effect"), (8, 9, "Drug")],
        [(0, 1, "ADE"), (2, 3, "ADE")],
    ),
]


def spans_nlp(model: Optional[Dict[str, Any]] = None, **config) -> Language:
    """A blank pipeline with a tiny bioner_spans; `model` settings override the defaults."""
    nlp = spacy.blank("en")
    model = {
        "@architectures": "spacy_bioner.SpanClassifier.v1",
        "tok2vec": tiny_tok2vec(),
        "hidden_size": 0,
        **(model or {}),
    }
    nlp.add_pipe("bioner_spans", config={"model": model, **config})
    return nlp


def spans_examples(nlp: Language, data=NESTED, key: str = "bioner_spans") -> List[Example]:
    """Examples whose references hold the (possibly overlapping) spans in doc.spans[key]."""
    examples = []
    for text, spans in data:
        reference = Doc(nlp.vocab, words=text.split())
        reference.spans[key] = [Span(reference, s, e, label=label) for s, e, label in spans]
        examples.append(Example(nlp.make_doc(text), reference))
    return examples


def relations_nlp(model: Optional[Dict[str, Any]] = None, **config) -> Language:
    """A blank pipeline with a tiny bioner_relations; `model` settings override the defaults."""
    nlp = spacy.blank("en")
    model = {
        "@architectures": "spacy_bioner.RelationExtractor.v1",
        "tok2vec": tiny_tok2vec(),
        "dropout": 0.0,
        **(model or {}),
    }
    nlp.add_pipe("bioner_relations", config={"model": model, **config})
    return nlp


def relations_examples(nlp: Language, sentences=RELATIONS) -> List[Example]:
    """Examples whose references hold the entities in doc.ents and the relations."""
    examples = []
    for text, entities, relations in sentences:
        reference = Doc(nlp.vocab, words=text.split())
        spans = [Span(reference, s, e, label=label) for s, e, label in entities]
        reference.ents = spans
        reference._.relations = [(spans[h], spans[t], label) for h, t, label in relations]
        examples.append(Example(nlp.make_doc(text), reference))
    return examples


def llm_nlp(base: Path, **settings) -> Language:
    from .llm_helpers import llm_config

    nlp = spacy.blank("en")
    nlp.add_pipe("bioner_llm_tagger", config=llm_config(base, **settings))
    return nlp


def require_llm() -> None:
    """Skip the calling test when the LLM extra is not installed."""
    for module in ("torch", "transformers", "peft", "safetensors"):
        pytest.importorskip(module)


def fit(nlp: Language, examples: List[Example], n_iter: int, seed: int = 0, sgd: Any = None) -> Language:
    """Seed everything, initialize and update `n_iter` times on the examples."""
    spacy.util.fix_random_seed(seed)
    random.seed(seed)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(n_iter):
        random.shuffle(examples)
        nlp.update(examples, sgd=sgd or optimizer, drop=0.0)
    return nlp


def meta_filter(n_iter: int = 15) -> Language:
    """A tiny KEEP/DROP text classifier that keeps the training sentences' gold entities."""
    from spacy_bioner.meta import DROP, KEEP, marked_text

    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en")
    model = {
        "@architectures": "spacy.TextCatReduce.v1",
        "exclusive_classes": True,
        "use_reduce_first": False,
        "use_reduce_last": False,
        "use_reduce_max": True,
        "use_reduce_mean": True,
        "tok2vec": tiny_tok2vec(),
    }
    nlp.add_pipe("textcat", config={"model": model})
    examples = []
    for eg in make_examples(nlp):
        doc = eg.reference
        samples = [(e.start, e.end, e.label_, True) for e in doc.ents] + [
            (0, 2, "Disease", False),
            (1, 2, "Chemical", False),
        ]
        for start, end, label, keep in samples:
            text = marked_text(doc, start, end, label)
            examples.append(Example.from_dict(nlp.make_doc(text), {"cats": {KEEP: float(keep), DROP: float(not keep)}}))
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(n_iter):
        nlp.update(examples, sgd=optimizer)
    return nlp


def build(name: str, tiny_llm: Callable[[], Path]) -> Language:
    """The trained pipeline `name` (one of PIPELINES); `tiny_llm` gives the LLM's base."""
    if name in ("tagger_softmax", "tagger_crf"):
        spacy.util.fix_random_seed(0)
        output = name.split("_")[1]
        nlp = make_nlp(output, "none" if output == "crf" else "welt")
        train(nlp, make_examples(nlp), n_iter=30)
        if output == "crf":
            nlp.add_pipe("bioner_abbreviations", config={"spans_key": "bioner_tagger"})
        return nlp
    if name == "spans":
        nlp = spans_nlp()
        return fit(nlp, spans_examples(nlp), n_iter=40)
    if name == "relations":
        nlp = relations_nlp()
        return fit(nlp, relations_examples(nlp), n_iter=60)
    if name == "llm":
        from thinc.api import Adam

        nlp = llm_nlp(tiny_llm(), dataset="BC5CDR", pack_base_model=True)
        return fit(nlp, make_examples(nlp), n_iter=15, sgd=Adam(0.01))
    if name == "ensemble":
        return ensemble_nlp()
    raise ValueError(f"unknown test pipeline {name!r}")


def ensemble_nlp() -> Language:
    members = {}
    for output in ("softmax", "crf"):
        spacy.util.fix_random_seed(0)
        member = make_nlp(output, "none" if output == "crf" else "welt", set_ents=False)
        members[output] = train(member, make_examples(member), n_iter=30)
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns(
        [
            {"label": "Chemical", "pattern": [{"LOWER": "cisplatin"}]},
            {"label": "Disease", "pattern": [{"LOWER": "kidney"}, {"LOWER": "injury"}]},
        ]
    )
    nlp.add_pipe("bioner_ents_to_spans", config={"spans_key": "ruler"})
    for output, member in members.items():
        nlp.add_pipe("bioner_tagger", name=f"tagger_{output}", source=member)
    sources = ["tagger_softmax", "tagger_crf", "ruler"]
    nlp.add_pipe(
        "bioner_ensemble", name="ensemble_union", config={"sources": sources, "mode": "union", "set_ents": False}
    )
    nlp.add_pipe(
        "bioner_ensemble", name="ensemble_meta", config={"sources": sources, "mode": "meta", "set_ents": False}
    )
    nlp.add_pipe("bioner_ensemble", name="ensemble_majority", config={"sources": sources, "mode": "majority"})
    nlp.get_pipe("ensemble_meta").set_filter(meta_filter())
    return nlp


class Pipelines:
    """Trains each pipeline of PIPELINES on first use, saves it under `root`, and
    loads it back with spacy.load (both kept for the rest of the session)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._trained: Dict[str, Language] = {}
        self._loaded: Dict[str, Language] = {}

    def tiny_llm(self) -> Path:
        """The tiny random Llama of tests/llm_helpers.py, saved once (skips the calling
        test without the LLM extra)."""
        require_llm()
        from .llm_helpers import build_tiny_llm

        base = self.root / "tiny_llama"
        if not base.exists():
            build_tiny_llm(base)
        return base

    def trained(self, name: str) -> Language:
        if name == "llm":
            require_llm()
        if name not in self._trained:
            self._trained[name] = build(name, self.tiny_llm)
            self._trained[name].to_disk(self.root / name)
        return self._trained[name]

    def path(self, name: str) -> Path:
        self.trained(name)
        return self.root / name

    def loaded(self, name: str) -> Language:
        if name not in self._loaded:
            self._loaded[name] = spacy.load(self.path(name))
        return self._loaded[name]


def snapshot(doc: Doc) -> Dict[str, Any]:
    """Everything the components predict on a doc, as plain data: doc.ents, every span
    group with its attrs (scores, votes), and the relations."""
    return {
        "text": doc.text,
        "ents": [(e.start, e.end, e.label_) for e in doc.ents],
        "spans": {
            key: ([(s.start, s.end, s.label_) for s in group], {k: list(v) for k, v in group.attrs.items()})
            for key, group in sorted(doc.spans.items())
        },
        "relations": [tuple(row) for row in relation_rows(doc)],
    }


def snapshots(docs) -> List[Dict[str, Any]]:
    return [snapshot(doc) for doc in docs]


def approx_floats(value: Any, **tolerance: float) -> Any:
    """`value` (plain data, e.g. snapshots) with every float wrapped in pytest.approx
    (`tolerance`: rel, abs), so == compares labels and offsets exactly and scores up to
    float noise."""
    if isinstance(value, float):
        return pytest.approx(value, **tolerance)
    if isinstance(value, (list, tuple)):
        return type(value)(approx_floats(v, **tolerance) for v in value)
    if isinstance(value, dict):
        return {k: approx_floats(v, **tolerance) for k, v in value.items()}
    return value


def check_doc(doc: Doc) -> None:
    """The output contract on any doc: every span group of a predicting component has
    one finite score per span, spans lie inside the doc, and relations connect spans of
    the doc."""
    import math

    for key, group in doc.spans.items():
        scores = group.attrs.get("scores")
        if scores is not None:
            assert len(scores) == len(group), key
            assert all(math.isfinite(score) for score in scores), key
        assert all(0 <= span.start < span.end <= len(doc) for span in group), key
    for hs, he, _, ts, te, _, _, score in relation_rows(doc):
        assert 0 <= hs < he <= len(doc) and 0 <= ts < te <= len(doc) and math.isfinite(score)


def entity_groups(name: str) -> Tuple[str, ...]:
    """The span groups the pipeline `name` writes."""
    return {
        "tagger_softmax": ("bioner_tagger",),
        "tagger_crf": ("bioner_tagger",),
        "spans": ("bioner_spans",),
        "relations": ("bioner_relations",),
        "llm": ("bioner_llm_tagger",),
        "ensemble": ("ruler", "tagger_softmax", "tagger_crf", "ensemble_union", "ensemble_meta", "ensemble_majority"),
    }[name]
