"""Glue shared by the trainable components: class-weight settings and label errors,
so every component validates and reports them the same way."""

import warnings
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

from spacy.training import Example
from thinc.api import Ops
from thinc.types import Floats1d

from ..weights import SCHEMES, class_weights

# The default encoder of every component that takes a tok2vec: spaCy's CNN (as in its
# `ner` default), appended to each component's [model] block.
DEFAULT_CNN_TOK2VEC = """[model.tok2vec]
@architectures = "spacy.Tok2Vec.v2"

[model.tok2vec.embed]
@architectures = "spacy.MultiHashEmbed.v2"
width = 96
attrs = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
rows = [5000, 1000, 2500, 2500]
include_static_vectors = false

[model.tok2vec.encode]
@architectures = "spacy.MaxoutWindowEncoder.v2"
width = 96
depth = 4
window_size = 1
maxout_pieces = 3
"""


# spaCy's BILUO prefixes (Example.get_aligned_ner) in each tagging of spacy_bioner.bio
_FROM_BILUO = {"iob": {"B": "B", "I": "I", "L": "I", "U": "B"}, "iobes": {"B": "B", "I": "I", "L": "E", "U": "S"}}


def check_scheme(name: str, scheme: str) -> None:
    """A clear error for an unknown weighting scheme, naming the component."""
    if scheme not in SCHEMES:
        raise ValueError(f"[{name}] unknown setting scheme = {scheme!r}; valid schemes: {', '.join(SCHEMES)}")


def resolve_class_weights(
    name: str,
    classes: Sequence[str],
    counts: Mapping[str, int],
    explicit: Optional[Mapping[str, float]],
    scheme: str,
    beta: float,
    strength: float,
    setting: str = "class_weights",
) -> Dict[str, float]:
    """The loss weight of each class: the explicit weights from the config if given
    (one per class, checked; `setting` names them in the error), else the scheme
    applied to the training counts."""
    if explicit is None:
        return class_weights(counts, scheme, beta, strength)
    unknown = sorted(set(explicit) - set(classes))
    missing = sorted(set(classes) - set(explicit))
    if unknown or missing:
        raise ValueError(
            f"[{name}] {setting} must give one weight per class {list(classes)}; "
            f"unknown classes: {unknown}, missing classes: {missing}"
        )
    return {label: float(explicit[label]) for label in classes}


def weight_vector(ops: Ops, weights: Mapping[str, float], classes: Sequence[str]) -> Floats1d:
    """Resolved class weights in the model's output order, for the losses; 1 for a
    class they do not name (a pipeline saved before its weights were resolved)."""
    return ops.asarray1f([weights.get(label, 1.0) for label in classes])


def warn_long_entities(name: str, n_long: int, n_gold: int, max_span_length: int) -> None:
    """Say how many gold entities are longer than max_span_length: they are never
    candidates, so they cannot be learned; a warning instead of a silent drop."""
    if n_long:
        warnings.warn(
            f"[{name}] {n_long} of {n_gold} gold entities in the training data are longer than "
            f"max_span_length = {max_span_length} tokens: they are never candidates and cannot be "
            "learned; raise max_span_length to keep them",
            stacklevel=3,
        )


def unknown_label_error(name: str, index: int, label: str, known: Iterable[str]) -> ValueError:
    """The error for an entity type in the data that the component was not given."""
    return ValueError(
        f"[{name}] example {index} has entity type {label!r}, which the component "
        f"was not given (known types: {list(known)}); add it to the labels."
    )


def aligned_iob_tags(
    name: str, example: Example, index: int, known: Sequence[str], tagging: str = "iob"
) -> List[Optional[str]]:
    """Gold tag (IOB2, or IOBES with tagging="iobes") of each predicted token of
    `example` (the `index`-th); None where unknown or misaligned. An entity type outside
    `known` is an error."""
    prefixes = _FROM_BILUO[tagging]
    tags: List[Optional[str]] = []
    for biluo in example.get_aligned_ner():
        if biluo is None or biluo == "-" or biluo == "":
            tags.append(None)
        elif biluo == "O":
            tags.append("O")
        else:
            prefix, label = biluo.split("-", 1)
            if label not in known:
                raise unknown_label_error(name, index, label, known)
            tags.append(f"{prefixes[prefix]}-{label}")
    return tags
