"""Loss functions shared by the components: array in, (loss, gradient) out."""
from typing import Tuple

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
