"""The `spacy_bioner.Tagger.v1` architecture: tok2vec >> linear tag scores [>> CRF]."""

from typing import List, Optional

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Linear, Maxout, Model, chain, with_array
from thinc.types import Floats2d

from .crf import CRFTransitions

OUTPUTS = ("softmax", "crf")


@registry.architectures("spacy_bioner.Tagger.v1")
def build_tagger_model(
    tok2vec: Model[List[Doc], List[Floats2d]],
    output: str = "softmax",
    hidden_width: int = 0,
    nO: Optional[int] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """Per-token tag scores (unnormalised) for a BIO tagger.

    output: "softmax" (SEQ: independent per-token decisions, trained with weighted
        cross-entropy) or "crf" (SeqCRF: a linear-chain CRF whose transition scores are
        the `crf` sublayer). Both decode with Viterbi constrained to valid BIO.
    hidden_width: width of a maxout layer (3 pieces, layer-normalised) between the token
        vectors and the tag scores, as spaCy's `ner` has; 0 for none (the paper's SEQ).
    nO: number of tags; inferred in the component's initialize when left unset.
    """
    if output not in OUTPUTS:
        raise ValueError(f"Unknown tagger output {output!r}; valid outputs: {', '.join(OUTPUTS)}")
    if hidden_width < 0:
        raise ValueError(f"hidden_width must be >= 0; got {hidden_width}")
    linear = Linear(nO=nO)
    scores = with_array(chain(Maxout(nO=hidden_width, nP=3, normalize=True), linear) if hidden_width else linear)
    layers = [tok2vec, scores]
    if output == "crf":
        layers.append(CRFTransitions(nO))
    model = chain(*layers)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("output", linear)
    if output == "crf":
        model.set_ref("crf", layers[-1])
    model.attrs["output"] = output
    return model
