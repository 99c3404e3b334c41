"""Clear errors: invalid settings fail when the pipeline is built, initialized or
loaded, with a message naming the setting; an entity type in the training data that a
component was not given is reported, at initialize and at any later update.

Covered elsewhere and not repeated here: the tagger's scheme, output, hidden_width and
class_weights (test_tagger.py), the span classifier's sizes, representation,
threshold, scheme and class_weights (test_spans.py), the ensemble's sources,
mode and min_votes (test_ensemble.py), relation types and arguments
(test_relation_extractor.py), DBR settings (test_dbr.py) and missing LLM weights
(test_llm_tagger.py).
"""

import json
import shutil
import warnings

import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example

from .pipelines import llm_nlp, relations_examples, relations_nlp, require_llm, spans_examples, spans_nlp
from .util import make_examples, make_nlp

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build(factory, config):
    """A blank pipeline with `factory` (tiny model settings, `config` merged in)."""
    if factory == "bioner_tagger":
        return make_nlp(**config)
    if factory == "bioner_spans":
        return spans_nlp(**config)
    if factory == "bioner_relations":
        return relations_nlp(**config)
    if factory == "bioner_llm_tagger":
        return llm_nlp("unused-model-name", **config)
    nlp = spacy.blank("en")
    nlp.add_pipe(factory, config=config)
    return nlp


BUILD_ERRORS = [
    ("bioner_llm_tagger", {"scheme": "focal"}, "scheme = 'focal'"),
    ("bioner_llm_tagger", {"batch_size": 0}, "batch_size must be an integer >= 1; got 0"),
    ("bioner_llm_tagger", {"batch_size": -4}, "batch_size must be an integer >= 1; got -4"),
    ("bioner_llm_tagger", {"dbr_ratio": -1.0}, "dbr_ratio must be >= 0"),
    ("bioner_llm_tagger", {"dbr_top_k": 0}, "dbr_top_k must be an integer >= 1"),
    ("bioner_llm_tagger", {"instruction_mode": "free"}, "unknown instruction_mode 'free'"),
    ("bioner_llm_tagger", {"model": {"max_length": 0}}, "max_length must be a positive integer; got 0"),
    ("bioner_llm_tagger", {"model": {"lora_r": -8}}, "lora_r must be a positive integer; got -8"),
    ("bioner_llm_tagger", {"model": {"head_dropout": 1.5}}, "head_dropout must be in \\[0, 1\\)"),
    ("bioner_relations", {"max_span_length": 0}, "max_span_length must be a positive integer; got 0"),
    ("bioner_relations", {"negative_entities": -1}, "negative_entities must be a positive integer; got -1"),
    ("bioner_relations", {"max_entities": 0}, "max_entities must be a positive integer; got 0"),
    ("bioner_relations", {"delta": 2.0}, "delta must be in \\[0, 1\\]"),
    ("bioner_relations", {"model": {"width_size": 0}}, "width_size and max_width must be positive"),
    ("bioner_spans", {"model": {"hidden_size": -1}}, "hidden_size must be >= 0"),
    (
        "bioner_spans",
        {"model": {"representation": ["width"], "max_width": -3}},
        "width_size and max_width must be positive",
    ),
    ("bioner_ensemble", {"sources": ["a"], "threshold": 1.5}, "threshold = 1.5 must be in \\[0, 1\\]"),
    ("bioner_ensemble", {"sources": ["a", "b"], "min_votes": 0}, "min_votes = 0"),
]


@pytest.mark.parametrize("factory,config,message", BUILD_ERRORS, ids=[f"{f}:{m[:20]}" for f, _, m in BUILD_ERRORS])
def test_invalid_settings_fail_when_the_pipeline_is_built(factory, config, message):
    with pytest.raises(ValueError, match=message):
        build(factory, dict(config))


@pytest.mark.parametrize(
    "factory,config,message",
    [
        ("bioner_tagger", {"scheme": "ens", "beta": 1.5}, "beta must be in \\[0, 1\\); got 1.5"),
        ("bioner_tagger", {"weight_strength": -1.0}, "[Ww]eight strength must be >= 0; got -1"),
        ("bioner_spans", {"scheme": "ens", "beta": -0.1}, "beta must be in \\[0, 1\\); got -0.1"),
    ],
)
def test_invalid_weighting_fails_at_initialize(factory, config, message):
    nlp = build(factory, dict(config))
    examples = spans_examples(nlp) if factory == "bioner_spans" else make_examples(nlp)
    with pytest.raises(ValueError, match=message):
        nlp.initialize(lambda: examples)


def test_missing_model_path_fails_at_initialize_naming_it(tmp_path):
    require_llm()
    nlp = llm_nlp(tmp_path / "no-such-model")
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "no-such-model")):
        nlp.initialize(lambda: make_examples(nlp))


@pytest.mark.parametrize(
    "name,component",
    [
        ("tagger_softmax", "bioner_tagger"),
        ("tagger_crf", "bioner_tagger"),
        ("spans", "bioner_spans"),
        ("relations", "bioner_relations"),
    ],
)
@pytest.mark.parametrize("damage", ["a label dropped", "cfg missing"])
def test_labels_that_do_not_fit_the_saved_model_fail_at_load(pipelines, tmp_path, name, component, damage):
    pipeline = shutil.copytree(pipelines.path(name), tmp_path / name)
    cfg_file = pipeline / component / "cfg"
    cfg = json.loads(cfg_file.read_text(encoding="utf8"))
    if damage == "cfg missing":
        cfg_file.unlink()
    else:
        cfg["labels"] = cfg["labels"][:-1]
        cfg_file.write_text(json.dumps(cfg), encoding="utf8")
    with pytest.raises(ValueError, match=f"\\[{component}\\] the saved model has .* outputs .* labels in its cfg"):
        spacy.load(pipeline)


# Unknown entity types in the training data -------------------------------------------


def unknown_type_example(nlp, key=None):
    """An example whose gold entity has the type 'Protein', which no component was given."""
    reference = Doc(nlp.vocab, words="BRCA1 protein levels rose .".split())
    spans = [Span(reference, 0, 2, label="Protein")]
    if key:
        reference.spans[key] = spans
    reference.ents = spans
    return Example(nlp.make_doc(reference.text), reference)


@pytest.mark.parametrize("factory", ["bioner_tagger", "bioner_spans", "bioner_relations", "bioner_llm_tagger"])
def test_an_unknown_entity_type_in_a_later_batch_is_reported(pipelines, factory):
    """Initialized on data without 'Protein', a batch with a Protein entity is an error
    naming the type (not a silently dropped entity)."""
    if factory == "bioner_llm_tagger":
        nlp = llm_nlp(pipelines.tiny_llm())
        examples = make_examples(nlp)
    elif factory == "bioner_relations":
        nlp = relations_nlp()
        examples = relations_examples(nlp)
    elif factory == "bioner_spans":
        nlp = spans_nlp()
        examples = spans_examples(nlp)
    else:
        nlp = make_nlp()
        examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    assert "Protein" not in nlp.get_pipe(factory).labels
    with pytest.raises(ValueError, match="entity type 'Protein'"):
        nlp.update([unknown_type_example(nlp, key=factory if factory == "bioner_spans" else None)])


@pytest.mark.parametrize("build_nlp,build_examples", [(spans_nlp, spans_examples), (relations_nlp, relations_examples)])
def test_gold_entities_longer_than_max_span_length_are_reported(build_nlp, build_examples):
    nlp = build_nlp(max_span_length=1)
    examples = build_examples(nlp)
    gold = [span for eg in examples for span in eg.reference.spans.get("bioner_spans") or eg.reference.ents]
    n_long = sum(len(span) > 1 for span in gold)
    assert n_long > 0
    with pytest.warns(UserWarning, match=f"{n_long} of {len(gold)} gold entities .* max_span_length = 1 tokens"):
        nlp.initialize(lambda: examples)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        fits = build_nlp(max_span_length=max(len(span) for span in gold))
        fits.initialize(lambda: build_examples(fits))
