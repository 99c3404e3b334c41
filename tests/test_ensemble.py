import subprocess
import sys

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span, SpanGroup
from spacy.training import Example
from typer.testing import CliRunner

from spacy_bioner.cli import app
from spacy_bioner.loggers import dev_predictions_logger
from spacy_bioner.meta import DROP, KEEP, filter_samples, marked_text
from spacy_bioner.voting import majority_threshold, select_by_votes, tally

from .util import make_examples, make_nlp, tiny_tok2vec, train

WORDS = "Bob has HIV and breast cancer today".split()


def _doc(nlp, groups):
    doc = Doc(nlp.vocab, words=WORDS)
    for key, spans in groups.items():
        doc.spans[key] = [Span(doc, s, e, label=label) for s, e, label, _ in spans]
        doc.spans[key].attrs["scores"] = [score for *_, score in spans]
    return doc


def _ensemble(nlp, **config):
    return nlp.add_pipe("bioner_ensemble", config=config)


@pytest.fixture
def members():
    return {
        "a": [(2, 3, "Disease", 0.9), (4, 6, "Disease", 0.8)],
        "b": [(2, 3, "Disease", 0.7), (5, 6, "Disease", 0.6)],
        "c": [(2, 3, "Chemical", 0.5), (4, 6, "Disease", 0.4)],
        "empty": [],
    }


def _predictions(doc, key="bioner_ensemble"):
    group = doc.spans[key]
    return [(s.start, s.end, s.label_, v) for s, v in zip(group, group.attrs["votes"])]


def test_tally_counts_votes_and_averages_member_scores(members):
    votes = {v.prediction: v for v in tally([{p[:3]: p[3] for p in members[k]} for k in "abc"])}
    assert votes[(2, 3, "Disease")].votes == 2 and votes[(2, 3, "Disease")].score == pytest.approx(0.8)
    assert votes[(2, 3, "Chemical")].members == (False, False, True)
    assert votes[(4, 6, "Disease")].member_scores == (0.8, 0.0, 0.4)
    assert majority_threshold(2) == 2 and majority_threshold(3) == 2 and majority_threshold(4) == 3
    assert select_by_votes(list(votes.values()), 3) == []


def test_union_keeps_everything_and_ents_prefer_votes_then_score(members):
    nlp = spacy.blank("en")
    ensemble = _ensemble(nlp, sources=["a", "b", "c", "empty"], mode="union")
    doc = ensemble(_doc(nlp, members))
    assert _predictions(doc) == [
        (2, 3, "Chemical", 1),
        (2, 3, "Disease", 2),
        (4, 6, "Disease", 2),
        (5, 6, "Disease", 1),
    ]
    # doc.ents: (2,3,Disease) beats (2,3,Chemical) on votes; (4,6) beats (5,6) on votes.
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(2, 3, "Disease"), (4, 6, "Disease")]


def test_majority_needs_more_than_half_the_members(members):
    nlp = spacy.blank("en")
    ensemble = _ensemble(nlp, sources=["a", "b", "c"], mode="majority")
    assert _predictions(ensemble(_doc(nlp, members))) == [(2, 3, "Disease", 2), (4, 6, "Disease", 2)]
    nlp2 = spacy.blank("en")
    strict = _ensemble(nlp2, sources=["a", "b", "c", "empty"], mode="majority")
    assert _predictions(strict(_doc(nlp2, members))) == []  # 4 members: 3 votes needed
    nlp3 = spacy.blank("en")
    override = _ensemble(nlp3, sources=["a", "b", "c", "empty"], mode="majority", min_votes=2)
    assert len(_predictions(override(_doc(nlp3, members)))) == 2


def test_tie_on_votes_is_broken_by_score_then_length():
    nlp = spacy.blank("en")
    members = {
        "a": [(4, 6, "Disease", 0.5)],
        "b": [(5, 6, "Disease", 0.5)],
        "c": [(2, 3, "Disease", 0.9)],
        "d": [(2, 4, "Disease", 0.3)],
    }
    doc = _ensemble(nlp, sources=list(members), mode="union")(_doc(nlp, members))
    assert [(e.start, e.end) for e in doc.ents] == [(2, 3), (4, 6)]


def test_missing_source_key_is_named(members):
    nlp = spacy.blank("en")
    ensemble = _ensemble(nlp, sources=["a", "nope"], mode="union")
    with pytest.raises(ValueError, match="'nope'"):
        ensemble(_doc(nlp, members))


@pytest.mark.parametrize(
    "config,message",
    [
        ({"sources": []}, "sources is empty"),
        ({"sources": ["a"], "mode": "vote"}, "mode = 'vote'"),
        ({"sources": ["a", "b"], "min_votes": 3}, "min_votes = 3"),
        ({"sources": ["a", "a"]}, "twice"),
    ],
)
def test_invalid_config_is_named(config, message):
    with pytest.raises(Exception, match=message):
        _ensemble(spacy.blank("en"), **config)


def test_marked_text_follows_the_papers_example():
    nlp = spacy.blank("en")
    doc = nlp("Bob has HIV and flu")
    assert marked_text(doc, 2, 3, "Disease") == "disease Bob has [e] HIV [/e] and flu"
    assert marked_text(doc, 0, 1, "Person", "votes_1") == "votes_1 person [e] Bob [/e] has HIV and flu"


def test_filter_samples_label_correct_predictions(members):
    nlp = spacy.blank("en")
    gold = Doc(nlp.vocab, words=WORDS)
    gold.ents = [Span(gold, 2, 3, label="Disease"), Span(gold, 4, 6, label="Disease")]
    samples = dict(filter_samples([_doc(nlp, members)], [gold], ["a", "b", "c"], extra_features=True))
    assert samples["votes_2 m0_0.9 m1_0.7 m2_none disease Bob has [e] HIV [/e] and breast cancer today"] is True
    assert samples["votes_1 m0_none m1_none m2_0.5 chemical Bob has [e] HIV [/e] and breast cancer today"] is False
    assert sum(samples.values()) == 2 and len(samples) == 4


def _filter_pipeline(texts_and_labels, n_iter=80):
    """A tiny KEEP/DROP text classifier trained on (text, keep) pairs."""
    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en")
    model = {
        "@architectures": "spacy.TextCatReduce.v1",
        "exclusive_classes": True,
        "use_reduce_first": True,
        "use_reduce_last": False,
        "use_reduce_max": True,
        "use_reduce_mean": True,
        "tok2vec": tiny_tok2vec(64),
    }
    nlp.add_pipe("textcat", config={"model": model})
    examples = []
    for text, keep in texts_and_labels:
        doc = nlp.make_doc(text)
        examples.append(Example.from_dict(doc, {"cats": {KEEP: float(keep), DROP: float(not keep)}}))
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(n_iter):
        nlp.update(examples, sgd=optimizer)
    return nlp


@pytest.fixture(scope="module")
def meta_filter():
    nlp = spacy.blank("en")
    doc = nlp.make_doc(" ".join(WORDS))
    # The filter learns: Disease on "HIV" or "breast cancer" is right, Chemical is wrong.
    data = [
        (marked_text(doc, 2, 3, "Disease"), True),
        (marked_text(doc, 4, 6, "Disease"), True),
        (marked_text(doc, 2, 3, "Chemical"), False),
        (marked_text(doc, 5, 6, "Disease"), False),
    ]
    return _filter_pipeline(data)


def test_meta_filter_overfits_and_filters_the_union(members, meta_filter, tmp_path):
    nlp = spacy.blank("en")
    ensemble = _ensemble(nlp, sources=["a", "b", "c"], mode="meta")
    with pytest.raises(ValueError, match="needs a trained filter"):
        ensemble(_doc(nlp, members))
    ensemble.set_filter(meta_filter)
    doc = ensemble(_doc(nlp, members))
    assert [(s, e, label) for s, e, label, _ in _predictions(doc)] == [(2, 3, "Disease"), (4, 6, "Disease")]
    assert all(p >= 0.5 for p in doc.spans["bioner_ensemble"].attrs["scores"])
    # The filter is packed with the pipeline: disk and bytes round trips keep it.
    nlp.to_disk(tmp_path / "ensemble")
    loaded = spacy.load(tmp_path / "ensemble")
    again = loaded.get_pipe("bioner_ensemble")(_doc(loaded, members))
    assert _predictions(again) == _predictions(doc)
    assert again.spans["bioner_ensemble"].attrs["scores"] == pytest.approx(doc.spans["bioner_ensemble"].attrs["scores"])
    from_bytes = spacy.blank("en")
    from_bytes.add_pipe("bioner_ensemble", config={"sources": ["x"]}).from_bytes(
        nlp.get_pipe("bioner_ensemble").to_bytes()
    )
    assert _predictions(from_bytes.get_pipe("bioner_ensemble")(_doc(from_bytes, members))) == _predictions(doc)


class _RecordingFilter:
    """A stand-in filter that keeps everything and records the texts it was given."""

    def __init__(self):
        self.texts = []

    def pipe(self, texts):
        for text in texts:
            self.texts.append(text)
            doc = spacy.blank("en").make_doc(text)
            doc.cats = {KEEP: 1.0, DROP: 0.0}
            yield doc


@pytest.mark.parametrize("extra_features", [False, True])
def test_filter_reads_at_inference_what_it_was_trained_on(members, extra_features):
    nlp = spacy.blank("en")
    gold = Doc(nlp.vocab, words=WORDS)
    trained_on = {text for text, _ in filter_samples([_doc(nlp, members)], [gold], ["a", "b", "c"], extra_features)}
    ensemble = _ensemble(nlp, sources=["a", "b", "c"], mode="meta", extra_features=extra_features)
    recorder = _RecordingFilter()
    ensemble.filter = recorder
    ensemble(_doc(nlp, members))
    assert set(recorder.texts) == trained_on and len(recorder.texts) == 4
    assert all(text.startswith("votes_") for text in recorder.texts) == extra_features


def test_ensemble_of_two_separately_trained_pipelines(tmp_path):
    spacy.util.fix_random_seed(0)
    softmax = make_nlp("softmax", "welt", set_ents=False)
    train(softmax, make_examples(softmax))
    crf = make_nlp("crf", "none", set_ents=False)
    train(crf, make_examples(crf))
    nlp = spacy.blank("en")
    nlp.add_pipe("bioner_tagger", name="tagger_softmax", source=softmax)
    nlp.add_pipe("bioner_tagger", name="tagger_crf", source=crf)
    nlp.add_pipe("bioner_ensemble", config={"sources": ["tagger_softmax", "tagger_crf"], "mode": "majority"})
    text = "Cisplatin causes acute kidney injury ."
    doc = nlp(text)
    assert "tagger_softmax" in doc.spans and "tagger_crf" in doc.spans
    expected = {(s.start, s.end, s.label_) for s in doc.spans["tagger_softmax"]} & {
        (s.start, s.end, s.label_) for s in doc.spans["tagger_crf"]
    }
    assert {(e.start, e.end, e.label_) for e in doc.ents} == expected
    assert expected == {(0, 1, "Chemical"), (2, 5, "Disease")}
    nlp.to_disk(tmp_path / "ensemble")
    code = f"import spacy; nlp = spacy.load({str(tmp_path / 'ensemble')!r}); print([(e.text, e.label_) for e in nlp({text!r}).ents])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "('acute kidney injury', 'Disease')" in result.stdout


def test_ents_to_spans_lets_spacy_ner_vote():
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "Disease", "pattern": "HIV"}])
    nlp.add_pipe("bioner_ents_to_spans", config={"spans_key": "ner"})
    nlp.add_pipe("bioner_ensemble", config={"sources": ["ner"], "mode": "union"})
    assert [(e.text, e.label_) for e in nlp("Bob has HIV").ents] == [("HIV", "Disease")]


def _member_config(name: str, settings: str, model_settings: str) -> str:
    """The config block of one ensemble member: a bioner_tagger on its own tiny CNN."""
    return f"""
[components.{name}]
factory = "bioner_tagger"
set_ents = false
{settings}
[components.{name}.model]
@architectures = "spacy_bioner.Tagger.v1"
{model_settings}
[components.{name}.model.tok2vec]
@architectures = "spacy.HashEmbedCNN.v2"
width = 32
depth = 1
embed_size = 500
window_size = 1
maxout_pieces = 2
subword_features = true
pretrained_vectors = null
[components.{name}.scorer]
@scorers = "spacy_bioner.entity_scorer.v1"
spans_key = "{name}"
"""


MEMBERS_CONFIG = (
    """
[paths]
train = null
dev = null

[nlp]
lang = "en"
pipeline = ["tagger_a", "tagger_b"]

[components]
"""
    + _member_config("tagger_a", "", "")
    + _member_config("tagger_b", 'scheme = "none"', 'output = "crf"')
    + """
[corpora]
[corpora.train]
@readers = "spacy.Corpus.v1"
path = ${paths.train}
[corpora.dev]
@readers = "spacy.Corpus.v1"
path = ${paths.dev}

[training]
seed = 0
gpu_allocator = null
max_steps = 12
eval_frequency = 4
[training.score_weights]
spans_tagger_a_f = 0.5
spans_tagger_b_f = 0.5
[training.logger]
@loggers = "spacy_bioner.DevPredictionsLogger.v1"
dev_path = ${paths.dev}
output_dir = "OUTPUT/dev_predictions"
"""
)


def test_meta_data_from_a_tiny_training_run(tmp_path):
    nlp = spacy.blank("en")
    docs = [eg.reference for eg in make_examples(nlp)]
    DocBin(docs=docs).to_disk(tmp_path / "train.spacy")
    DocBin(docs=docs[:3]).to_disk(tmp_path / "dev.spacy")
    (tmp_path / "members.cfg").write_text(MEMBERS_CONFIG.replace("OUTPUT", str(tmp_path)))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "spacy",
            "train",
            str(tmp_path / "members.cfg"),
            "--output",
            str(tmp_path / "members"),
            "--paths.train",
            str(tmp_path / "train.spacy"),
            "--paths.dev",
            str(tmp_path / "dev.spacy"),
        ],
        check=True,
        capture_output=True,
    )
    steps = sorted((tmp_path / "dev_predictions").glob("step_*.spacy"))
    assert [step.name for step in steps] == [f"step_{n:07d}.spacy" for n in (0, 4, 8, 12)]
    predicted = list(DocBin().from_disk(steps[-1]).get_docs(nlp.vocab))
    assert len(predicted) == 3 and "tagger_a" in predicted[0].spans and "tagger_b" in predicted[0].spans
    (tmp_path / "dev_predictions" / "step_best.spacy").write_bytes(b"")  # not an evaluation: ignored
    meta_data_args = [
        "meta-data",
        str(tmp_path / "dev_predictions"),
        str(tmp_path / "dev.spacy"),
        str(tmp_path / "train.spacy"),
        str(tmp_path / "meta"),
        "--sources",
        "tagger_a,tagger_b",
    ]
    result = CliRunner().invoke(app, meta_data_args)
    assert result.exit_code == 0, result.output
    train_docs = list(DocBin().from_disk(tmp_path / "meta" / "train.spacy").get_docs(nlp.vocab))
    dev_docs = list(DocBin().from_disk(tmp_path / "meta" / "dev.spacy").get_docs(nlp.vocab))
    n_gold = sum(len(doc.ents) for doc in docs)
    assert len(dev_docs) == round(0.15 * (len(train_docs) + len(dev_docs)))
    marked = [doc.text for doc in train_docs + dev_docs]
    assert all("[e]" in text and "[/e]" in text for text in marked)
    assert sum(doc.cats[KEEP] for doc in train_docs + dev_docs) >= n_gold
    assert "gold training entities" in result.output and f"{n_gold} gold" in result.output
    # The default leaves out step 0 (the untrained pipeline); --min-step 0 keeps it.
    assert "3 evaluations (from step 1)" in result.output
    with_step_0 = CliRunner().invoke(app, meta_data_args + ["--min-step", "0"])
    assert with_step_0.exit_code == 0 and "4 evaluations (from step 0)" in with_step_0.output
    too_late = CliRunner().invoke(app, meta_data_args + ["--min-step", "13"])
    assert too_late.exit_code != 0 and "--min-step" in too_late.output and "step_0000012.spacy" in too_late.output


def test_dev_predictions_keep_span_scores_but_not_user_data(tmp_path):
    nlp = spacy.blank("en")

    @Language.component("test_scored_member")
    def scored_member(doc):
        doc.spans["member"] = SpanGroup(doc, spans=[doc[0:1]], attrs={"scores": [0.75]})
        doc.user_data[("._.", "trf_data", None, None)] = "x" * 10_000  # stands in for a transformer's output
        return doc

    nlp.add_pipe("test_scored_member")
    DocBin(docs=[nlp.make_doc("Aspirin helps."), nlp.make_doc("Flu.")]).to_disk(tmp_path / "dev.spacy")
    setup = dev_predictions_logger(
        str(tmp_path / "dev.spacy"),
        str(tmp_path / "out"),
        logger=lambda nlp, stdout, stderr: (lambda info: None, lambda: None),
    )
    log_step, _ = setup(nlp, sys.stdout, sys.stderr)
    log_step({"step": 7, "score": 0.5})
    log_step({"step": 8, "score": None})
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["step_0000007.spacy"]
    docs = list(DocBin().from_disk(tmp_path / "out" / "step_0000007.spacy").get_docs(nlp.vocab))
    assert [doc.text for doc in docs] == ["Aspirin helps.", "Flu."]
    assert [span.text for span in docs[0].spans["member"]] == ["Aspirin"]
    assert list(docs[0].spans["member"].attrs["scores"]) == [0.75]
    assert docs[0].user_data == {}
