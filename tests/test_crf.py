import itertools

import numpy
import pytest

from spacy_bioner.bio import tag_inventory
from spacy_bioner.bio_decoding import bio_constraints, pad
from spacy_bioner.layers.crf import CRFTransitions, crf_loss, forward_backward, tag_marginals

from .test_bio_decoding import TAGS, path_score, random_problem

xp = numpy


def test_partition_function_and_marginals_match_brute_force():
    emissions, transitions, start, end = random_problem(7)
    padded, lengths = pad(xp, emissions)
    log_z, marginals, pair_counts = forward_backward(xp, padded, lengths, transitions, start, end)
    for i, em in enumerate(emissions):
        paths = list(itertools.product(range(len(TAGS)), repeat=len(em)))
        scores = numpy.array([path_score(em, p, transitions, start, end) for p in paths], dtype="f8")
        assert log_z[i] == pytest.approx(numpy.log(numpy.exp(scores).sum()), rel=1e-4)
        probs = numpy.exp(scores - numpy.log(numpy.exp(scores).sum()))
        expected = numpy.zeros((len(em), len(TAGS)))
        expected_pairs = numpy.zeros((len(TAGS), len(TAGS)))
        for p, prob in zip(paths, probs):
            for t, tag in enumerate(p):
                expected[t, tag] += prob
            for a, b in zip(p, p[1:]):
                expected_pairs[a, b] += prob
        numpy.testing.assert_allclose(marginals[i, : len(em)], expected, atol=1e-5)
        numpy.testing.assert_allclose(pair_counts[i], expected_pairs, atol=1e-5)


def test_crf_loss_gradient_matches_finite_differences():
    emissions, _, _, _ = random_problem(3, lengths=(5, 3))
    gold = [numpy.array([1, 2, 0, -1, 3], dtype="i"), numpy.array([0, 3, 4], dtype="i")]
    masks = bio_constraints(TAGS)
    crf = CRFTransitions(len(TAGS))
    crf.initialize()
    crf.set_param("transitions", crf.ops.asarray2f(numpy.random.default_rng(0).normal(size=(5, 5)).astype("f")))
    loss, d_emissions = crf_loss(crf, emissions, gold, *masks)
    d_transitions = crf.get_grad("transitions").copy()
    eps = 1e-2
    bumped = [e.copy() for e in emissions]
    bumped[0][1, 3] += eps
    loss_up, _ = crf_loss(crf, bumped, gold, *masks)
    assert (loss_up - loss) / eps == pytest.approx(float(d_emissions[0][1, 3]), abs=2e-2)
    params = crf.get_param("transitions").copy()
    params[2, 1] += eps
    crf.set_param("transitions", params)
    loss_up, _ = crf_loss(crf, emissions, gold, *masks)
    assert (loss_up - loss) / eps == pytest.approx(float(d_transitions[2, 1]), abs=2e-2)


def test_missing_gold_tags_are_marginalised_not_forced():
    emissions, _, _, _ = random_problem(1, lengths=(3,))
    masks = bio_constraints(TAGS)
    crf = CRFTransitions(len(TAGS))
    crf.initialize()
    loss_all_missing, _ = crf_loss(crf, emissions, [numpy.full(3, -1, dtype="i")], *masks)
    assert loss_all_missing == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize("scale", [1.0, 40.0])
@pytest.mark.parametrize("tagging", ["iob", "iobes"])
def test_inference_marginals_equal_the_log_space_ones(scale, tagging):
    """tag_marginals (probability space, rescaled per step) gives forward_backward's
    marginals (in float64, the exact reference), for ragged lengths, forbidden moves and
    scores far apart."""
    rng = numpy.random.default_rng(0)
    tags = tag_inventory(["Chemical", "Disease"], tagging)
    forbidden, forbidden_start, forbidden_end = bio_constraints(tags)
    transitions = rng.normal(size=(len(tags), len(tags))).astype("f") + forbidden
    start = rng.normal(size=len(tags)).astype("f") + forbidden_start
    end = rng.normal(size=len(tags)).astype("f") + forbidden_end
    sequences = [(rng.normal(size=(n, len(tags))) * scale).astype("f") for n in (1, 7, 3, 12)]
    padded, lengths = pad(numpy, sequences)
    exact = [a.astype("float64") for a in (padded, transitions, start, end)]
    _, expected, _ = forward_backward(numpy, exact[0], lengths, *exact[1:])
    assert numpy.allclose(tag_marginals(numpy, padded, lengths, transitions, start, end), expected, atol=1e-6)
