"""Constrained Viterbi decoding (spacy_bioner.bio_decoding) against brute force."""

import itertools

import numpy
import pytest

from spacy_bioner.bio import iob_to_spans, spans_to_iob, tag_inventory
from spacy_bioner.bio_decoding import bio_constraints, decode

TAGS = tag_inventory(["A", "B"])
IOBES_TAGS = tag_inventory(["A", "B"], "iobes")
xp = numpy


def path_score(emissions, path, transitions, start, end):
    score = start[path[0]] + end[path[-1]] + sum(emissions[t, tag] for t, tag in enumerate(path))
    return score + sum(transitions[a, b] for a, b in zip(path, path[1:]))


def random_problem(seed, lengths=(4, 1, 3), tags=TAGS):
    rng = numpy.random.default_rng(seed)
    n = len(tags)
    emissions = [rng.normal(size=(length, n)).astype("f") for length in lengths]
    forbidden, forbidden_start, forbidden_end = bio_constraints(tags)
    transitions = rng.normal(size=(n, n)).astype("f") + forbidden
    start = rng.normal(size=(n,)).astype("f") + forbidden_start
    end = rng.normal(size=(n,)).astype("f") + forbidden_end
    return emissions, transitions, start, end


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("tags", [TAGS, IOBES_TAGS])
def test_viterbi_matches_brute_force(seed, tags):
    emissions, transitions, start, end = random_problem(seed, tags=tags)
    paths = decode(xp, emissions, transitions, start, end)
    for em, path in zip(emissions, paths):
        best = max(
            itertools.product(range(len(tags)), repeat=len(em)),
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


@pytest.mark.parametrize("seed", range(3))
def test_viterbi_output_is_valid_iobes(seed):
    """A valid IOBES sequence is the one that its own entities write back."""
    emissions, transitions, start, end = random_problem(seed, lengths=(12, 7, 1), tags=IOBES_TAGS)
    for path in decode(xp, emissions, transitions, start, end):
        tags = [IOBES_TAGS[i] for i in path]
        assert spans_to_iob(iob_to_spans(tags), len(tags), "iobes") == tags


def test_iobes_constraints_close_every_entity():
    transitions, start, end = bio_constraints(IOBES_TAGS)
    index = {tag: i for i, tag in enumerate(IOBES_TAGS)}

    def allowed(previous, tag):
        return transitions[index[previous], index[tag]] == 0

    assert allowed("B-A", "E-A") and allowed("B-A", "I-A") and allowed("I-A", "E-A")
    assert not allowed("B-A", "O") and not allowed("I-A", "B-B") and not allowed("B-A", "E-B")
    assert allowed("E-A", "S-B") and allowed("S-A", "O") and not allowed("S-A", "I-A")
    assert [tag for tag in IOBES_TAGS if start[index[tag]] == 0] == ["O", "B-A", "S-A", "B-B", "S-B"]
    assert [tag for tag in IOBES_TAGS if end[index[tag]] == 0] == ["O", "E-A", "S-A", "E-B", "S-B"]
    iob_transitions, _, iob_end = bio_constraints(TAGS)
    assert iob_transitions[TAGS.index("B-A"), TAGS.index("O")] == 0 and not iob_end.any()
