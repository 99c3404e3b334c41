"""Determinism: the same seed gives the same trained weights and the same predictions
on CPU, for every trainable component (tiny models, a few updates each). The
ensemble and the ents adapter have no weights of their own (the meta filter is a
spaCy textcat)."""

import numpy
import pytest
from thinc.api import CupyOps, get_current_ops

from .pipelines import (
    TEXTS,
    approx_floats,
    fit,
    llm_nlp,
    relations_examples,
    relations_nlp,
    snapshots,
    spans_examples,
    spans_nlp,
)
from .util import make_examples, make_nlp, train

# The GPU tier compares to this relative tolerance instead of bit for bit: cuBLAS and
# cupy reductions (atomics, split-K sums) add in an order that varies between runs, so
# two identical trainings differ in the last bits (about 1e-7 relative after a few
# updates). On the CPU the sums run in a fixed order and the results stay exact.
GPU_RTOL, GPU_ATOL = 1e-5, 1e-7

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def thinc_weights(nlp):
    """Every parameter of every component's Thinc model, in walk order."""
    return [
        (name, node.name, param, node.ops.to_numpy(node.get_param(param)))
        for name, pipe in nlp.pipeline
        for node in pipe.model.walk()
        for param in node.param_names
        if node.has_param(param)
    ]


def torch_weights(nlp):
    module = nlp.get_pipe("bioner_llm_tagger").model.shims[0]._model
    return [(key, value.detach().cpu().numpy()) for key, value in module.state_dict().items()]


def train_twice(build, weights):
    runs = [build() for _ in range(2)]
    (first_weights, second_weights) = (weights(nlp) for nlp in runs)
    assert len(first_weights) == len(second_weights) > 0
    exact = not isinstance(get_current_ops(), CupyOps)
    for a, b in zip(first_weights, second_weights):
        assert a[:-1] == b[:-1]
        if exact:
            numpy.testing.assert_array_equal(a[-1], b[-1], err_msg=str(a[:-1]))
        else:
            numpy.testing.assert_allclose(a[-1], b[-1], rtol=GPU_RTOL, atol=GPU_ATOL, err_msg=str(a[:-1]))
    first, second = (snapshots(nlp.pipe(TEXTS)) for nlp in runs)
    assert second == (first if exact else approx_floats(first, rel=GPU_RTOL, abs=GPU_ATOL))


@pytest.mark.parametrize("output", ["softmax", "crf"])
def test_tagger(output):
    def build():
        import spacy

        spacy.util.fix_random_seed(1)
        nlp = make_nlp(output, "none" if output == "crf" else "welt")
        return train(nlp, make_examples(nlp), n_iter=5, seed=1)

    train_twice(build, thinc_weights)


def test_span_classifier_with_negative_sampling():
    def build():
        nlp = spans_nlp(negatives_per_doc=5)
        return fit(nlp, spans_examples(nlp), n_iter=5, seed=1)

    train_twice(build, thinc_weights)


def test_relation_extractor():
    def build():
        nlp = relations_nlp(negative_entities=5, negative_relations=3)
        return fit(nlp, relations_examples(nlp), n_iter=5, seed=1)

    train_twice(build, thinc_weights)


def test_llm_tagger(pipelines):
    from thinc.api import Adam

    base = pipelines.tiny_llm()

    def build():
        nlp = llm_nlp(base, dataset="BC5CDR", model={"lora_dropout": 0.1, "head_dropout": 0.1})
        return fit(nlp, make_examples(nlp), n_iter=2, seed=1, sgd=Adam(0.01))

    train_twice(build, torch_weights)
