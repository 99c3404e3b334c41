"""Pipelines saved by release 0.1.0 still load and predict what they predicted then.

tests/fixtures/pipeline_v0_1/ holds tiny trained pipelines of every component, saved by
0.1.0, and expected.json what each predicted there (tests/fixtures/make_pipeline_v0_1.py
wrote both, once). A saved pipeline stores only registered names (factories,
architectures) and the components' own files, so renaming modules must keep them
loading; a weight or setting read back wrongly changes the predictions or their scores.
"""

import json
from pathlib import Path

import pytest
import spacy
from thinc.api import Model

from .fixtures.make_pipeline_v0_1 import snapshot
from .pipelines import approx_floats

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "pipeline_v0_1"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text(encoding="utf8"))
THINC_PIPELINES = ("tagger_crf", "spans", "relations", "ensemble")

# Scores may differ by float noise between machines and devices (BLAS, GPU tier).
TOLERANCE = {"rel": 1e-4, "abs": 1e-5}


def predict(name: str):
    nlp = spacy.load(FIXTURE / name)
    return nlp, [snapshot(doc) for doc in nlp.pipe(EXPECTED["texts"])]


def test_the_fixture_is_from_release_0_1_0():
    assert EXPECTED["release"] == "0.1.0"
    assert sorted(EXPECTED["pipelines"]) == sorted(THINC_PIPELINES + ("llm",))


@pytest.mark.parametrize("name", THINC_PIPELINES)
def test_a_pipeline_saved_by_0_1_predicts_the_same(name):
    _, predicted = predict(name)
    assert predicted == approx_floats(EXPECTED["pipelines"][name], **TOLERANCE)


def test_an_llm_tagger_saved_by_0_1_predicts_the_same(one_torch_thread):
    for module in ("torch", "transformers", "peft", "safetensors"):
        pytest.importorskip(module)
    _, predicted = predict("llm")
    assert predicted == approx_floats(EXPECTED["pipelines"]["llm"], **TOLERANCE)


@pytest.mark.parametrize("name", THINC_PIPELINES)
def test_the_comparison_notices_weights_read_wrongly(name):
    """The check above can fail: with every weight halved, the same pipeline no longer
    matches what was recorded."""
    nlp, _ = predict(name)
    for _, component in nlp.pipeline:
        model = getattr(component, "model", None)
        if isinstance(model, Model):
            for node in model.walk():
                for param in node.param_names:
                    if node.has_param(param):
                        node.set_param(param, node.get_param(param) * 0.5)
    predicted = [snapshot(doc) for doc in nlp.pipe(EXPECTED["texts"])]
    assert predicted != approx_floats(EXPECTED["pipelines"][name], **TOLERANCE)
