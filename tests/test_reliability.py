"""Reliability across the package: safe loading, odd input, determinism."""
import os
import pickle
import shutil

import numpy
import pytest
import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spacy_bioner.bio import iob_to_spans, spans_to_iob
from spacy_bioner.corpora import CorpusFormatError, read_iob, write_iob

from .conftest import make_examples, make_nlp, train


class _Payload:
    """Unpickling this runs code: it creates the file named by `marker`."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("target", ["bioner_tagger/model", "bioner_tagger/cfg", "vocab/strings.json"])
def test_a_planted_pickle_is_refused_and_never_executed(tagger_model_dir, tmp_path, target):
    pipeline = tmp_path / "pipeline"
    shutil.copytree(tagger_model_dir, pipeline)
    marker = tmp_path / "pwned"
    (pipeline / target).write_bytes(pickle.dumps(_Payload(marker)))
    (pipeline / "bioner_tagger" / "weights.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(Exception):
        spacy.load(pipeline)
    assert not marker.exists()


def test_extra_pickle_files_in_a_pipeline_are_ignored(tagger_model_dir, tmp_path):
    pipeline = tmp_path / "pipeline"
    shutil.copytree(tagger_model_dir, pipeline)
    marker = tmp_path / "pwned"
    for name in ["bioner_tagger/model.pkl", "model.pickle", "bioner_tagger/extra.bin"]:
        (pipeline / name).write_bytes(pickle.dumps(_Payload(marker)))
    nlp = spacy.load(pipeline)
    assert nlp("Aspirin induced Reye syndrome .").ents
    assert not marker.exists()


TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=300)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT)
def test_tagger_never_crashes_on_random_unicode(tagger_model_dir, text):
    nlp = _cached_load(tagger_model_dir)
    doc = nlp(text)
    group = doc.spans["bioner_tagger"]
    assert len(group.attrs["scores"]) == len(group)
    assert all(0.0 <= score <= 1.0 for score in group.attrs["scores"])
    assert [(e.start, e.end) for e in doc.ents] == [(s.start, s.end) for s in group]


_LOADED = {}


def _cached_load(path):
    if path not in _LOADED:
        _LOADED[path] = spacy.load(path)
    return _LOADED[path]


@pytest.mark.parametrize("text", ["", " ", "\n\t\r", "\x00\x01\x7f", "a", "word " * 20_000, "\u200b\u202e\ufeff"])
def test_tagger_handles_edge_case_documents(tagger_model_dir, text):
    nlp = _cached_load(tagger_model_dir)
    doc = nlp(text)
    assert len(doc.spans["bioner_tagger"]) == len(doc.ents)


TOKEN = st.text(st.characters(blacklist_categories=["Cs", "Zs", "Zl", "Zp", "Cc"]), min_size=1, max_size=8)
TAG = st.sampled_from(["O", "B-Gene", "I-Gene", "B-Dis", "I-Dis", "E-Gene", "S-Dis"])


@settings(max_examples=80, deadline=None)
@given(sentences=st.lists(st.lists(st.tuples(TOKEN, TAG), min_size=1, max_size=12), min_size=1, max_size=5))
def test_tsv_reader_reads_any_tag_soup_and_round_trips(tmp_path_factory, sentences):
    path = tmp_path_factory.mktemp("tsv") / "data.tsv"
    path.write_text("\n\n".join("\n".join(f"{t}\t{g}" for t, g in s) for s in sentences) + "\n", encoding="utf8")
    nlp = spacy.blank("en")
    docs, _ = read_iob(path, nlp.vocab)
    assert [len(doc) for doc in docs] == [len(s) for s in sentences]
    for doc, sentence in zip(docs, sentences):
        assert [(e.start, e.end, e.label_) for e in doc.ents] == iob_to_spans([g for _, g in sentence])
    out = path.with_suffix(".out.tsv")
    write_iob(docs, out)
    again, repairs = read_iob(out, nlp.vocab)
    assert repairs == 0
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in again] == [[(e.start, e.end, e.label_) for e in d.ents] for d in docs]


@settings(max_examples=80, deadline=None)
@given(text=st.text(max_size=200))
def test_tsv_reader_fails_only_with_a_located_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("tsv") / "data.tsv"
    path.write_text(text, encoding="utf8", newline="")
    try:
        read_iob(path, spacy.blank("en").vocab)
    except CorpusFormatError as err:
        assert str(path) in str(err) and err.line >= 1


@settings(max_examples=100, deadline=None)
@given(length=st.integers(0, 30), data=st.data())
def test_spans_to_tags_and_back_is_identity(length, data):
    spans, position = [], 0
    while position < length and data.draw(st.booleans()):
        start = data.draw(st.integers(position, length - 1))
        end = data.draw(st.integers(start + 1, length))
        spans.append((start, end, data.draw(st.sampled_from(["A", "B"]))))
        position = end
    for scheme in ("iob", "iobes"):
        assert iob_to_spans(spans_to_iob(spans, length, scheme)) == spans


def _train_once(output):
    spacy.util.fix_random_seed(1)
    nlp = make_nlp(output, "none" if output == "crf" else "welt")
    train(nlp, make_examples(nlp), n_iter=5, seed=1)
    return nlp


@pytest.mark.parametrize("output", ["softmax", "crf"])
def test_same_seed_gives_same_weights_and_predictions(output):
    first, second = _train_once(output), _train_once(output)
    for a, b in zip(first.get_pipe("bioner_tagger").model.walk(), second.get_pipe("bioner_tagger").model.walk()):
        for name in a.param_names:
            numpy.testing.assert_array_equal(a.get_param(name), b.get_param(name))
    text = "Cisplatin causes acute kidney injury ."
    assert first(text).spans["bioner_tagger"].attrs["scores"] == second(text).spans["bioner_tagger"].attrs["scores"]
