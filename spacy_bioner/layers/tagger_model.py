"""The `spacy_bioner.Tagger.v1` architecture: tok2vec >> linear tag scores [>> CRF]."""
from typing import List, Optional

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Linear, Model, chain, with_array
from thinc.types import Floats2d

from .crf import CRFTransitions

OUTPUTS = ("softmax", "crf")


@registry.architectures("spacy_bioner.Tagger.v1")
def build_tagger_model(
    tok2vec: Model[List[Doc], List[Floats2d]], output: str = "softmax", nO: Optional[int] = None
) -> Model[List[Doc], List[Floats2d]]:
    """Per-token tag scores (unnormalised) for a BIO tagger.

    output: "softmax" (SEQ: independent per-token decisions, trained with weighted
        cross-entropy) or "crf" (SeqCRF: a linear-chain CRF whose transition scores are
        the `crf` sublayer). Both decode with Viterbi constrained to valid BIO.
    nO: number of tags; inferred in the component's initialize when left unset.
    """
    if output not in OUTPUTS:
        raise ValueError(f"Unknown tagger output {output!r}; valid outputs: {', '.join(OUTPUTS)}")
    scores = with_array(Linear(nO=nO))
    layers = [tok2vec, scores]
    if output == "crf":
        layers.append(CRFTransitions(nO))
    model = chain(*layers)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("output", scores.layers[0])
    if output == "crf":
        model.set_ref("crf", layers[-1])
    model.attrs["output"] = output
    return model
