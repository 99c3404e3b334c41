"""Round trips of every component (the pipelines of tests/pipelines.py): to_disk /
spacy.load, to_bytes / from_bytes, pickle, DocBin and nlp.pipe(n_process=2) give the
same predictions as the trained pipeline in memory: doc.ents, every span group with its
scores (and the ensemble's votes), and the relations.

Covered elsewhere and not repeated here: DocBin, Doc.to_bytes, pickle and
n_process=2 of relations (test_relation_extractor.py).
"""

import multiprocessing
import pickle

import pytest
import srsly
from spacy.tokens import DocBin
from spacy.util import load_model_from_config

from .pipelines import PIPELINES, TEXTS, snapshots

pytestmark = pytest.mark.usefixtures("one_torch_thread")
BATCH_SIZE = 3


def as_json(cfg):
    """cfg as it reads back from JSON (floats rounded as srsly writes them)."""
    return srsly.json_loads(srsly.json_dumps(cfg))


def predict(nlp, **kwargs):
    return snapshots(nlp.pipe(TEXTS, batch_size=BATCH_SIZE, **kwargs))


@pytest.fixture(scope="module")
def expected(pipelines):
    """The predictions of each trained pipeline, before any round trip."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = predict(pipelines.trained(name))
        return cache[name]

    return get


@pytest.mark.parametrize("name", PIPELINES)
def test_disk_bytes_and_pickle_round_trips_predict_the_same(pipelines, expected, name):
    nlp = pipelines.trained(name)
    assert any(spans for snapshot in expected(name) for spans, _ in snapshot["spans"].values())
    loaded = pipelines.loaded(name)
    assert predict(loaded) == expected(name)
    for component, pipe in loaded.pipeline:
        assert as_json(getattr(pipe, "cfg", None)) == as_json(getattr(nlp.get_pipe(component), "cfg", None)), component
    from_bytes = load_model_from_config(nlp.config, auto_fill=True).from_bytes(nlp.to_bytes())
    assert predict(from_bytes) == expected(name)
    assert predict(pickle.loads(pickle.dumps(loaded))) == expected(name)


@pytest.mark.parametrize("name", [name for name in PIPELINES if name != "relations"])
def test_docbin_keeps_span_groups_scores_and_relations(pipelines, expected, name):
    docs = list(pipelines.trained(name).pipe(TEXTS, batch_size=BATCH_SIZE))
    stored = DocBin(docs=docs, store_user_data=True).to_bytes()
    restored = DocBin().from_bytes(stored).get_docs(pipelines.trained(name).vocab)
    assert snapshots(restored) == expected(name)


@pytest.mark.forks
@pytest.mark.parametrize("name", [name for name in PIPELINES if name != "relations"])
def test_two_processes_predict_the_same(pipelines, expected, name):
    assert predict(pipelines.loaded(name), n_process=2) == expected(name)


@pytest.mark.forks
def test_spawned_processes_predict_the_same(pipelines, expected, monkeypatch):
    """Where processes are spawned (macOS, Windows; Python 3.14 forks a server), each
    worker unpickles the components in a fresh interpreter, which finds the factories
    through the entry points. One pipeline (both tagger outputs, the ents adapter and
    the three ensemble modes) keeps this affordable; the pickle round trip above covers
    what spawning needs of the other components."""
    import spacy.language

    monkeypatch.setattr(spacy.language, "mp", multiprocessing.get_context("spawn"))
    assert predict(pipelines.loaded("ensemble"), n_process=2) == expected("ensemble")
