"""Constrained Viterbi decoding (spacy_bioner.bio_decoding) against brute force."""

import itertools

import numpy
import pytest

from spacy_bioner.bio import tag_inventory
from spacy_bioner.bio_decoding import bio_constraints, decode

TAGS = tag_inventory(["A", "B"])
xp = numpy


def path_score(emissions, path, transitions, start, end):
    score = start[path[0]] + end[path[-1]] + sum(emissions[t, tag] for t, tag in enumerate(path))
    return score + sum(transitions[a, b] for a, b in zip(path, path[1:]))


def random_problem(seed, lengths=(4, 1, 3)):
    rng = numpy.random.default_rng(seed)
    n = len(TAGS)
    emissions = [rng.normal(size=(length, n)).astype("f") for length in lengths]
    forbidden, forbidden_start = bio_constraints(TAGS)
    transitions = rng.normal(size=(n, n)).astype("f") + forbidden
    start = rng.normal(size=(n,)).astype("f") + forbidden_start
    end = rng.normal(size=(n,)).astype("f")
    return emissions, transitions, start, end


@pytest.mark.parametrize("seed", range(5))
def test_viterbi_matches_brute_force(seed):
    emissions, transitions, start, end = random_problem(seed)
    paths = decode(xp, emissions, transitions, start, end)
    for em, path in zip(emissions, paths):
        best = max(
            itertools.product(range(len(TAGS)), repeat=len(em)),
            key=lambda p: path_score(em, p, transitions, start, end),
        )
        assert list(path) == list(best)


@pytest.mark.parametrize("seed", range(3))
def test_viterbi_output_is_valid_bio(seed):
    emissions, transitions, start, end = random_problem(seed, lengths=(12, 7))
    for path in decode(xp, emissions, transitions, start, end):
        tags = [TAGS[i] for i in path]
        for previous, tag in zip(["O"] + tags, tags):
            if tag.startswith("I-"):
                assert previous in (f"B-{tag[2:]}", tag), tags
