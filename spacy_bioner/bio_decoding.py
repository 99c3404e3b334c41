"""Constrained decoding of IOB2 and IOBES tag sequences: the masks that forbid the
transitions a scheme rules out (``O -> I-X``, ``B-X -> I-Y``, start -> ``I-X``; in
IOBES also ``B-X -> O``, ``I-X -> B-Y`` and ending on ``B-X`` or ``I-X``), padding of
ragged score arrays into one batch, and batched Viterbi over them.

Used by every tagger of the package: the CRF output (with its learned transitions,
:mod:`spacy_bioner.layers.crf`), the softmax output and the LLM tagger (log
probabilities with the masks alone), so decoded sequences are always valid.

The functions take the array module (`xp`, numpy or cupy) and loop over time steps
only, never over documents or tokens: on a GPU each step is a few kernel launches for
the whole batch, and a caller that wants to decode on the host transfers the padded
scores once and passes numpy.
"""

from functools import lru_cache
from typing import List, Sequence, Tuple

import numpy
from thinc.types import Floats1d, Floats2d, Ints1d

from .bio import split_tag

# Large enough to rule a path out, small enough to keep logsumexp finite.
FORBIDDEN = -1.0e4


def bio_constraints(tags: Sequence[str]) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Additive masks (0 or FORBIDDEN) for transitions, the first tag and the last tag:
    host arrays, built once per tag set and read-only (move them with `ops.asarray`).
    A tag set with E- tags is IOBES, where an open entity (B- or I-) must go on."""
    return _bio_constraints(tuple(tags))


@lru_cache(maxsize=None)
def _bio_constraints(tags: Tuple[str, ...]) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    parsed = [split_tag(tag) for tag in tags]
    iobes = any(prefix == "E" for prefix, _ in parsed)
    transitions = numpy.zeros((len(tags), len(tags)), dtype="f")
    start = numpy.zeros((len(tags),), dtype="f")
    end = numpy.zeros((len(tags),), dtype="f")
    for i, (prefix, label) in enumerate(parsed):
        is_open = prefix in ("B", "I")
        if prefix in ("I", "E"):
            start[i] = FORBIDDEN
        if iobes and is_open:
            end[i] = FORBIDDEN
        for j, (next_prefix, next_label) in enumerate(parsed):
            continues = next_prefix in ("I", "E")
            if continues and not (is_open and label == next_label):
                transitions[i, j] = FORBIDDEN
            elif iobes and is_open and not (continues and label == next_label):
                transitions[i, j] = FORBIDDEN
    for mask in (transitions, start, end):
        mask.setflags(write=False)
    return transitions, start, end


def pad(xp, sequences: Sequence[Floats2d]) -> Tuple[numpy.ndarray, Ints1d]:
    """Stack (length, n_tags) arrays into a zero-padded (batch, max_length, n_tags) array."""
    lengths = numpy.asarray([len(seq) for seq in sequences], dtype="i")
    return pad_flat(xp, xp.concatenate([xp.asarray(seq) for seq in sequences]), lengths), xp.asarray(lengths)


def pad_flat(xp, flat, lengths: numpy.ndarray):
    """The rows of `flat` (the sequences of `lengths`, concatenated) as a zero-padded
    (batch, max_length, ...) array, in one scatter rather than one copy per sequence."""
    padded = xp.zeros((len(lengths), int(lengths.max()), *flat.shape[1:]), dtype=flat.dtype)
    padded[xp.asarray(numpy.arange(padded.shape[1])[None, :] < lengths[:, None])] = flat
    return padded


def viterbi(xp, emissions, lengths, transitions, start, end):
    """Best tag sequence of each padded (batch, time, n_tags) emission array, as one
    (batch, time) array (values past a sequence's length are meaningless)."""
    batch, time, n_tags = emissions.shape
    score = start[None, :] + emissions[:, 0]
    backpointers = xp.zeros((batch, time, n_tags), dtype="i")
    for t in range(1, time):
        candidates = score[:, :, None] + transitions[None]
        best_prev = candidates.argmax(axis=1)
        step = candidates.max(axis=1) + emissions[:, t]
        active = (t < lengths)[:, None]
        score = xp.where(active, step, score)
        backpointers[:, t] = xp.where(active, best_prev, xp.arange(n_tags)[None, :])
    # Backtrack the whole batch at once: past its length a sequence's backpointers are
    # the identity, so its best last tag is carried back to its last position.
    paths = xp.zeros((batch, time), dtype="i")
    paths[:, time - 1] = (score + end[None, :]).argmax(axis=1)
    rows = xp.arange(batch)
    for t in range(time - 1, 0, -1):
        paths[:, t - 1] = backpointers[rows, t, paths[:, t]]
    return paths


def decode(xp, emissions: List[Floats2d], transitions: Floats2d, start: Floats1d, end: Floats1d) -> List[Ints1d]:
    """Viterbi paths for a list of (length, n_tags) arrays; empty docs give empty paths."""
    nonempty = [i for i, seq in enumerate(emissions) if len(seq)]
    paths: List[Ints1d] = [xp.zeros((0,), dtype="i") for _ in emissions]
    if nonempty:
        padded, lengths = pad(xp, [emissions[i] for i in nonempty])
        best = viterbi(xp, padded, lengths, transitions, start, end)
        for row, i in enumerate(nonempty):
            paths[i] = best[row, : len(emissions[i])]
    return paths
