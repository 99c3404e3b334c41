"""Helpers the test modules import: a tiny CNN tok2vec, the training sentences and
tiny tagger pipelines (fixtures and hooks stay in conftest.py)."""

import random

import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example


def tiny_tok2vec(width: int = 32) -> dict:
    """A small CNN tok2vec config block, fast enough for unit tests."""
    return {
        "@architectures": "spacy.HashEmbedCNN.v2",
        "width": width,
        "depth": 1,
        "embed_size": 500,
        "window_size": 1,
        "maxout_pieces": 2,
        "subword_features": True,
        "pretrained_vectors": None,
    }


SENTENCES = [
    ("Aspirin induced Reye syndrome in children .", [(0, 1, "Chemical"), (2, 4, "Disease")]),
    ("Cisplatin causes acute kidney injury .", [(0, 1, "Chemical"), (2, 5, "Disease")]),
    ("No adverse events were seen .", []),
    ("Patients with breast cancer received tamoxifen daily .", [(2, 4, "Disease"), (5, 6, "Chemical")]),
    ("Haloperidol may trigger neuroleptic malignant syndrome .", [(0, 1, "Chemical"), (3, 6, "Disease")]),
]


def make_examples(nlp):
    """Examples of SENTENCES with their entities in the reference's doc.ents."""
    examples = []
    for text, spans in SENTENCES:
        reference = Doc(nlp.vocab, words=text.split())
        reference.ents = [Span(reference, s, e, label=label) for s, e, label in spans]
        examples.append(Example(nlp.make_doc(text), reference))
    return examples


def make_nlp(output="softmax", scheme="welt", hidden_width=0, **config):
    """A blank English pipeline with a bioner_tagger on tiny_tok2vec; `config` adds settings."""
    nlp = spacy.blank("en")
    model = {
        "@architectures": "spacy_bioner.Tagger.v1",
        "output": output,
        "hidden_width": hidden_width,
        "tok2vec": tiny_tok2vec(),
    }
    nlp.add_pipe("bioner_tagger", config={"model": model, "scheme": scheme, **config})
    return nlp


def train(nlp, examples, n_iter=40, seed=0):
    """Initialize and update `n_iter` times on the shuffled examples (seed the model first)."""
    random.seed(seed)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(n_iter):
        random.shuffle(examples)
        nlp.update(examples, sgd=optimizer, drop=0.0)
    return nlp
