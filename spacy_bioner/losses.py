"""Loss functions shared by the components: array in, (loss, gradient) out."""

from typing import Tuple

import numpy
from thinc.types import Floats1d, Floats2d, Ints1d


def softmax(xp, logits: Floats2d) -> Floats2d:
    shifted = xp.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def weighted_cross_entropy(xp, logits: Floats2d, targets: Ints1d, weights: Floats1d) -> Tuple[float, Floats2d]:
    """Class-weighted softmax cross-entropy over rows of `logits`.

    Each row counts with the weight of its gold class; a target of -1 (missing or
    misaligned) counts 0. The sum is divided by the total weight of the batch, as in
    PyTorch's ``cross_entropy(weight=...)``, so the scale of the weights does not change
    the effective learning rate. Returns the loss and its gradient w.r.t. the logits.
    """
    known = targets >= 0
    safe_targets = xp.where(known, targets, 0)
    row_weights = weights[safe_targets] * known
    total = float(row_weights.sum())
    if total == 0.0:
        return 0.0, xp.zeros_like(logits)
    probs = softmax(xp, logits)
    rows = xp.arange(len(targets))
    log_likelihood = xp.log(xp.maximum(probs[rows, safe_targets], 1e-12))
    loss = -float((row_weights * log_likelihood).sum()) / total
    d_logits = probs
    d_logits[rows, safe_targets] -= 1.0
    d_logits *= (row_weights / total)[:, None]
    return loss, d_logits


def sigmoid(xp, logits):
    return 1.0 / (1.0 + xp.exp(-xp.clip(logits, -30.0, 30.0)))


def binary_cross_entropy(
    xp, logits: Floats1d, targets: Floats1d, positive_weights=1.0, negative_weights=1.0, mask=None
) -> Tuple[float, Floats1d]:
    """Mean of ``-a q log p - b (1 - q) log(1 - p)`` over the rows where `mask` is true,
    with ``p = sigmoid(logits)``, ``a`` / ``b`` the positive / negative weights (scalars
    or one per row). Returns the loss and its gradient w.r.t. the logits (0 off the mask).
    """
    mask = xp.ones(logits.shape, dtype="f") if mask is None else mask.astype("f")
    n = float(mask.sum())
    if n == 0.0:
        return 0.0, xp.zeros_like(logits)
    q = targets.astype("f")
    a = positive_weights * q * mask
    b = negative_weights * (1.0 - q) * mask
    # -log p = softplus(-z), -log(1 - p) = softplus(z)
    loss = float((a * xp.logaddexp(0.0, -logits) + b * xp.logaddexp(0.0, logits)).sum()) / n
    p = sigmoid(xp, logits)
    return loss, ((b * p - a * (1.0 - p)) / n).astype(logits.dtype)


def max_iou(spans, entities) -> numpy.ndarray:
    """ENIoU (SpERT.MT Eq. 11-12): for each (start, end) span (end exclusive), the largest
    IoU with any of the `entities`, counting inclusive token indices; 0 without entities."""
    spans = numpy.asarray(spans, dtype="int64").reshape((-1, 2))
    entities = numpy.asarray(entities, dtype="int64").reshape((-1, 2))
    if not len(spans) or not len(entities):
        return numpy.zeros((len(spans),), dtype="f")
    i1, j1 = spans[:, :1], spans[:, 1:] - 1
    i2, j2 = entities[:, 0], entities[:, 1] - 1
    inter = numpy.minimum(j1, j2) - numpy.maximum(i1, i2) + 1
    union = numpy.maximum(j1, j2) - numpy.minimum(i1, i2) + 1
    return numpy.where(inter > 0, inter / union, 0.0).max(axis=1).astype("f")


def iou_scaled_bce(
    xp, logits: Floats1d, targets: Floats1d, eniou: Floats1d, delta: float = 0.25, mask=None
) -> Tuple[float, Floats1d]:
    """SpERT.MT Eq. 13, ``H = -q (1 - delta) log p - delta (1 - q)(1 + ENIoU) log(1 - p)``,
    averaged over the (masked) rows: negatives that overlap a gold entity cost more."""
    return binary_cross_entropy(xp, logits, targets, 1.0 - delta, delta * (1.0 + eniou), mask)


def pairwise_ranking_loss(
    xp,
    scores: Floats2d,
    targets: Ints1d,
    margin_positive: float = 2.5,
    margin_negative: float = 0.5,
    gamma: float = 2.0,
    weights=None,
) -> Tuple[float, Floats2d]:
    """Pairwise ranking loss (dos Santos et al. 2015; SpERT.MT Eq. 7-9), the weighted
    mean over the rows.

    Each row with a gold class y (``targets >= 0``) costs ``L+ = log(1 + exp(gamma (m+ -
    score_y)))`` plus ``L- = log(1 + exp(gamma (m- + score_c)))`` for the highest-scoring
    wrong class c; a negative row (target -1) costs only L- for its highest-scoring class.
    `weights` gives each row a weight (default 1; 0 or False leaves the row out, so a
    boolean mask works); the loss is ``sum(w_i L_i) / sum(w_i)``, so the scale of the
    weights does not change the learning rate. Returns the loss and its gradient w.r.t.
    the scores.
    """
    n_rows = scores.shape[0]
    weights = xp.ones((n_rows,), dtype="f") if weights is None else weights.astype("f")
    total = float(weights.sum())
    d_scores = xp.zeros_like(scores)
    if total == 0.0 or scores.shape[1] == 0:
        return 0.0, d_scores
    rows = xp.arange(n_rows)
    positive = targets >= 0
    gold = xp.where(positive, targets, 0)
    wrong = scores.copy()
    wrong[rows[positive], gold[positive]] = -xp.inf
    worst = wrong.argmax(axis=1)
    z_neg = gamma * (margin_negative + scores[rows, worst])
    z_pos = gamma * (margin_positive - scores[rows, gold])
    loss = float((weights * xp.logaddexp(0.0, z_neg) + weights * positive * xp.logaddexp(0.0, z_pos)).sum()) / total
    d_scores[rows, worst] += gamma * sigmoid(xp, z_neg) * weights / total
    d_scores[rows, gold] -= gamma * sigmoid(xp, z_pos) * weights * positive / total
    return loss, d_scores
