"""Linear-chain CRF over IOB2 or IOBES tags: a Thinc layer holding the transition
scores, and the batched forward-backward algorithm and loss it needs (array code, CPU
or GPU).

The layer is the identity on the emission scores during the forward pass; it owns the
``transitions`` (n_tags x n_tags), ``start`` and ``end`` parameters. The loss
(:func:`crf_loss`) increments their gradients, so ``finish_update`` trains them like
any other parameter. Transitions that are invalid in the tag scheme (``O -> I-X``,
``B-X -> I-Y``, start -> ``I-X``, ...) are forbidden in training and decoding alike
(the masks and the Viterbi decoder are in :mod:`spacy_bioner.bio_decoding`), so decoded
sequences are always valid and no repair rule is ever applied to predictions.

The algorithms take the array module (`xp`, numpy or cupy) and loop over time steps
only, never over documents or tokens: on a GPU each step is a few kernel launches for
the whole batch, and a caller that wants to decode on the host transfers the padded
emissions once and passes numpy.
"""

from typing import List, Optional, Tuple

import numpy
from thinc.api import Model
from thinc.types import Floats2d, Ints1d

from ..bio_decoding import FORBIDDEN, pad


def CRFTransitions(n_tags: Optional[int] = None) -> Model[List[Floats2d], List[Floats2d]]:
    """Identity layer that owns the CRF transition, start and end scores."""
    return Model(
        "crf_transitions",
        _identity_forward,
        init=_init_transitions,
        dims={"nO": n_tags},
        params={"transitions": None, "start": None, "end": None},
    )


def _identity_forward(model: Model, X: List[Floats2d], is_train: bool):
    return X, lambda dY: dY


def _init_transitions(model: Model, X=None, Y=None) -> None:
    n_tags = model.get_dim("nO")
    model.set_param("transitions", model.ops.alloc2f(n_tags, n_tags))
    model.set_param("start", model.ops.alloc1f(n_tags))
    model.set_param("end", model.ops.alloc1f(n_tags))


def _logsumexp(xp, x, axis: int):
    top = x.max(axis=axis, keepdims=True)
    return (top + xp.log(xp.exp(x - top).sum(axis=axis, keepdims=True))).squeeze(axis)


def forward_backward(xp, emissions, lengths, transitions, start, end):
    """Log partition function, tag marginals and expected transition counts.

    emissions: (batch, time, n_tags), already masked; lengths: (batch,), all >= 1.
    Returns log_z (batch,), marginals (batch, time, n_tags) (zero past each length)
    and pair_counts (batch, n_tags, n_tags) summed over time.
    """
    batch, time, n_tags = emissions.shape
    alphas = xp.zeros_like(emissions)
    alpha = start[None, :] + emissions[:, 0]
    alphas[:, 0] = alpha
    for t in range(1, time):
        step = _logsumexp(xp, alpha[:, :, None] + transitions[None], axis=1) + emissions[:, t]
        alpha = xp.where((t < lengths)[:, None], step, alpha)
        alphas[:, t] = alpha
    log_z = _logsumexp(xp, alpha + end[None, :], axis=1)
    betas = xp.zeros_like(emissions)
    beta = xp.broadcast_to(end[None, :], (batch, n_tags)).copy()
    betas[:, time - 1] = beta
    for t in range(time - 2, -1, -1):
        step = _logsumexp(xp, transitions[None] + (emissions[:, t + 1] + beta)[:, None, :], axis=2)
        beta = xp.where((t + 1 < lengths)[:, None], step, end[None, :])
        betas[:, t] = beta
    valid = (xp.arange(time)[None, :] < lengths[:, None])[:, :, None]
    marginals = xp.exp(alphas + betas - log_z[:, None, None]) * valid
    pair_scores = (
        alphas[:, :-1, :, None]
        + transitions[None, None]
        + (emissions[:, 1:] + betas[:, 1:])[:, :, None, :]
        - log_z[:, None, None, None]
    )
    pair_counts = (xp.exp(pair_scores) * valid[:, 1:, :, None]).sum(axis=1)
    return log_z, marginals, pair_counts


def tag_marginals(xp, emissions, lengths, transitions, start, end):
    """The marginals of forward_backward alone, for inference.

    Computed in probability space with each step rescaled to sum to 1 (the scaled
    forward-backward of HMMs): one small matrix product per step instead of a
    log-sum-exp, and no transition counts, which only training needs. Each position's
    scores are shifted by their maximum first, and the sums run in float64, so nothing
    overflows or underflows for scores within a few hundred of each other.
    """
    batch, time, n_tags = emissions.shape
    valid = xp.arange(time)[None, :] < xp.asarray(lengths)[:, None]
    potentials = xp.exp((emissions - emissions.max(axis=2, keepdims=True)).astype("float64"))
    moves = xp.exp(transitions.astype("float64"))
    alphas = xp.zeros_like(potentials)
    alpha = _normalised(xp.exp((start - start.max()).astype("float64"))[None, :] * potentials[:, 0])
    alphas[:, 0] = alpha
    for t in range(1, time):
        alpha = xp.where(valid[:, t, None], _normalised((alpha @ moves) * potentials[:, t]), alpha)
        alphas[:, t] = alpha
    last = xp.broadcast_to(_normalised(xp.exp((end - end.max()).astype("float64"))[None, :]), (batch, n_tags))
    betas = xp.zeros_like(potentials)
    beta = last
    betas[:, time - 1] = beta
    for t in range(time - 2, -1, -1):
        beta = xp.where(valid[:, t + 1, None], _normalised((potentials[:, t + 1] * beta) @ moves.T), last)
        betas[:, t] = beta
    return (_normalised(alphas * betas) * valid[:, :, None]).astype("float32")


def _normalised(x):
    """Rows (last axis) rescaled to sum to 1."""
    return x / x.sum(axis=-1, keepdims=True)


def crf_loss(
    crf: Model,
    emissions: List[Floats2d],
    gold: List[Ints1d],
    forbidden_transitions,
    forbidden_start,
    forbidden_end,
    scale: float = 1.0,
) -> Tuple[float, List[Floats2d]]:
    """Negative log-likelihood of the gold tags, summed over the batch and times `scale`.

    A gold tag of -1 (missing or misaligned token) allows every tag at that position:
    the likelihood is marginalised over the paths that agree with the known tags.
    Increments the gradients of the CRF parameters and returns the loss and the
    gradient of the emissions. Host (numpy) inputs are moved to the CRF's device.
    """
    ops = crf.ops
    xp = ops.xp
    transitions = crf.get_param("transitions") + ops.asarray(forbidden_transitions)
    start = crf.get_param("start") + ops.asarray(forbidden_start)
    end = crf.get_param("end") + ops.asarray(forbidden_end)
    padded, lengths = pad(xp, emissions)
    # Allowed tags per position, built on the host and moved in one transfer: the gold
    # tag, every tag where it is unknown (-1), none past the end (-2).
    gold_tags = numpy.full(padded.shape[:2], -2, dtype="i")
    for i, tags in enumerate(gold):
        gold_tags[i, : len(tags)] = ops.to_numpy(tags)
    allowed = (gold_tags[:, :, None] == numpy.arange(padded.shape[2])) | (gold_tags == -1)[:, :, None]
    known = xp.asarray(allowed.astype("f"))
    log_z, marginals, pairs = forward_backward(xp, padded, lengths, transitions, start, end)
    gold_mask = (1.0 - known) * FORBIDDEN
    gold_z, gold_marginals, gold_pairs = forward_backward(xp, padded + gold_mask, lengths, transitions, start, end)
    d_padded = (marginals - gold_marginals) * scale
    last = lengths - 1
    rows = xp.arange(len(emissions))
    crf.inc_grad("transitions", (pairs - gold_pairs).sum(axis=0) * scale)
    crf.inc_grad("start", d_padded[:, 0].sum(axis=0))
    crf.inc_grad("end", d_padded[rows, last].sum(axis=0))
    loss = float((log_z - gold_z).sum()) * scale
    return loss, [d_padded[i, : len(seq)] for i, seq in enumerate(emissions)]
