"""The `spacy_bioner.DictionaryEmbed.v1` architecture: a token embedding plus a learned
embedding of the token's dictionary matches (`spacy_bioner.dictionary`).

Use it as the `embed` of spaCy's `Tok2Vec.v2`, around `MultiHashEmbed.v2`, so the CNN
encoder sees the matches in context, exactly where it sees the word's own features.
The dictionary is read from its file once, when the pipeline is initialized for
training, and saved inside the model's weights: a trained pipeline needs no file.
"""

from typing import Callable, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Linear, Model, chain, deserialize_attr, serialize_attr, with_array
from thinc.types import Floats2d

from ..dictionary import EntityDictionary


@registry.architectures("spacy_bioner.DictionaryEmbed.v1")
def build_dictionary_embed(
    embed: Model[List[Doc], List[Floats2d]],
    dictionary: Optional[str],
    types: Optional[List[str]] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """`embed`'s token vectors plus a linear projection of the dictionary features.

    embed: the token embedding, e.g. spacy.MultiHashEmbed.v2 (its nO is the width).
    dictionary: a TSV file with the columns `name` and `type` (a header line), read at
        initialize; e.g. ../shared/data/kb/combined_entity_names.tsv.
    types: the entity types of the file to use (default: all).
    """
    features = DictionaryFeatures(dictionary, types)
    projection = Linear()
    return Model(
        "dictionary_embed",
        _sum_forward,
        init=_init_sum,
        layers=[embed, chain(features, with_array(projection))],
        refs={"embed": embed, "features": features, "projection": projection},
        dims={"nO": embed.get_dim("nO") if embed.has_dim("nO") else None},
    )


def _init_sum(model: Model, X: Optional[List[Doc]] = None, Y=None) -> None:
    """Initialize the embedding, then size the projection to its width."""
    embed, projected_features = model.layers
    embed.initialize(X=X)
    width = embed.get_dim("nO")
    model.get_ref("projection").set_dim("nO", width)
    projected_features.initialize(X=X)
    model.set_dim("nO", width)


def _sum_forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Floats2d], Callable]:
    embed, projection = model.layers
    matches, backprop_projection = projection(docs, is_train)
    vectors, backprop_embed = embed(docs, is_train)

    def backprop(d_vectors: List[Floats2d]) -> List[Doc]:
        backprop_projection(d_vectors)
        return backprop_embed(d_vectors)

    return [v + m for v, m in zip(vectors, matches)], backprop


def DictionaryFeatures(path: Optional[str], types: Optional[List[str]] = None) -> Model[List[Doc], List[Floats2d]]:
    """Docs -> (n_tokens, 2 * n_types) B/I match indicators; no trainable weights."""
    return Model(
        "dictionary_features",
        _features_forward,
        init=_init_features,
        attrs={"path": path, "types": types, "dictionary": EntityDictionary()},
        dims={"nO": None},
    )


def _init_features(model: Model, X: Optional[List[Doc]] = None, Y=None) -> None:
    path = model.attrs["path"]
    if path is None:
        raise ValueError(
            "spacy_bioner.DictionaryEmbed.v1: no dictionary file given; set `dictionary` (e.g. "
            "${paths.dictionary}) to a TSV with 'name' and 'type' columns, or use spacy.MultiHashEmbed.v2 alone"
        )
    lang = X[0].vocab.lang if X else "en"
    dictionary = EntityDictionary.from_tsv(path, lang=lang or "en", types=model.attrs["types"])
    model.attrs["dictionary"] = dictionary
    model.set_dim("nO", dictionary.n_features)


def _features_forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Floats2d], Callable]:
    dictionary: EntityDictionary = model.attrs["dictionary"]
    if not dictionary.types:
        raise ValueError("spacy_bioner.DictionaryEmbed.v1: the dictionary is empty; initialize the pipeline first")
    features = [model.ops.asarray2f(array) for array in dictionary.features(docs)]
    return features, lambda d_features: []


@serialize_attr.register(EntityDictionary)
def _serialize_dictionary(_: EntityDictionary, value: EntityDictionary, name: str, model: Model) -> bytes:
    return value.to_bytes()


@deserialize_attr.register(EntityDictionary)
def _deserialize_dictionary(_: EntityDictionary, value: bytes, name: str, model: Model) -> EntityDictionary:
    return EntityDictionary().from_bytes(value)
