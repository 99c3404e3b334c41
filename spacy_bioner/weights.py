"""Class weights for imbalanced label distributions (WeLT paper, Eq. 1-2 and Appendix B).

Pure functions with no spaCy import: every trainable component of the package turns the
label counts of its training data into loss weights here, so the schemes can be swapped
in config and compared on equal terms.

Normalisation. ``welt`` is a softmax and sums to 1 by definition (the paper's values).
``ins``, ``isns`` and ``ens`` are rescaled so that the *average weight of a training
instance* is 1 (``sum(n_x * w_x) == sum(n_x)``): the weighted loss then has the same
scale as the unweighted one at the class frequencies of the training data. ``none``
gives 1 everywhere. The package's losses divide by the summed weights of the batch (as
PyTorch's weighted ``cross_entropy`` does), so the learning rate means the same under
every scheme whatever the scale.

Unseen classes. A class with count 0 is counted as if it had been seen once, so every
weight is finite. Such a class never occurs as a training target, so its weight only
matters for display.
"""

import math
from typing import Dict, List, Mapping

SCHEMES = ("none", "welt", "ins", "isns", "ens")


def class_weights(
    counts: Mapping[str, int], scheme: str = "welt", beta: float = 0.9, strength: float = 1.0
) -> Dict[str, float]:
    """Weights for each class from its number of training instances.

    counts: number of training instances per class (e.g. per BIO tag).
    scheme: one of SCHEMES.
    beta: the ENS hyper-parameter, in [0, 1).
    strength: exponent applied to the weights before normalisation; 1 is the
        scheme as published, 0 turns weighting off, values in between soften the
        shift from precision to recall that weighting causes.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"Unknown class weighting scheme {scheme!r}; valid schemes: {', '.join(SCHEMES)}")
    if not counts:
        raise ValueError("Cannot compute class weights without any classes.")
    negative = [label for label, n in counts.items() if n < 0]
    if negative:
        raise ValueError(f"Class counts must not be negative; got negative counts for {negative}")
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"ENS beta must be in [0, 1); got {beta}")
    if not math.isfinite(strength):
        raise ValueError(f"Weight strength must be a finite number; got {strength}")
    if strength < 0:
        raise ValueError(f"Weight strength must be >= 0; got {strength}")
    if scheme == "none":
        return {label: 1.0 for label in counts}
    if scheme == "welt":
        return _welt(counts, strength)
    seen = {label: max(n, 1) for label, n in counts.items()}
    if scheme == "ins":
        raw = {label: 1.0 / n for label, n in seen.items()}
    elif scheme == "isns":
        raw = {label: 1.0 / math.sqrt(n) for label, n in seen.items()}
    else:
        raw = {label: _effective_number_weight(n, beta) for label, n in seen.items()}
    raw = {label: w**strength for label, w in raw.items()}
    return _mean_one(raw, counts)


def _welt(counts: Mapping[str, int], strength: float) -> Dict[str, float]:
    """w_x = 1 - n_x / N, then a softmax over the classes (WeLT Eq. 1-2)."""
    total = sum(counts.values())
    if total == 0:
        return {label: 1.0 / len(counts) for label in counts}
    logits = {label: strength * (1.0 - n / total) for label, n in counts.items()}
    top = max(logits.values())
    exps = {label: math.exp(v - top) for label, v in logits.items()}
    norm = sum(exps.values())
    return {label: e / norm for label, e in exps.items()}


def _effective_number_weight(n: int, beta: float) -> float:
    """Inverse effective number of samples (Cui et al. 2019): (1 - beta) / (1 - beta^n)."""
    return (1.0 - beta) / (1.0 - beta**n)


def _mean_one(raw: Mapping[str, float], counts: Mapping[str, int]) -> Dict[str, float]:
    """Rescale so that the count-weighted mean weight is 1."""
    total = sum(counts.values())
    if total == 0:
        return {label: 1.0 for label in raw}
    mass = sum(raw[label] * n for label, n in counts.items())
    if not mass:
        raise ValueError("Every seen class's weight underflows to 0 at this strength; use a smaller strength")
    return {label: w * total / mass for label, w in raw.items()}


def weights_table(
    counts: Mapping[str, int], marked: str = "welt", beta: float = 0.9, strength: float = 1.0
) -> List[str]:
    """The lines of a table of each class's count and its weight under every scheme
    (`marked` flagged with *), aligned in columns. Raises ValueError where
    class_weights does."""
    table = {name: class_weights(counts, name, beta, strength) for name in SCHEMES}
    headers = ["tag", "count"] + [f"{name}{'*' if name == marked else ''}" for name in SCHEMES]
    rows = [[tag, str(n)] + [f"{table[name][tag]:.4f}" for name in SCHEMES] for tag, n in counts.items()]
    widths = [max(len(row[i]) for row in rows + [headers]) for i in range(len(headers))]
    return [
        "  ".join(cell.rjust(width) if i else cell.ljust(width) for i, (cell, width) in enumerate(zip(row, widths)))
        for row in [headers] + rows
    ]
