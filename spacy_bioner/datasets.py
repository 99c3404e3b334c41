"""Dataset marks on a Doc: the name of the corpus a doc comes from and the entity types
annotated in it (VANER section 3.5's multi-dataset instruction tuning).

The marks live in ``Doc.user_data`` (strings only, so DocBin keeps them). Readers set
them (:func:`spacy_bioner.corpora.multi.create_multi_corpus_reader`), as does `bioner
evaluate --dataset`; the LLM tagger reads them to instruct each sentence with its
dataset and types.
"""

from typing import Iterable, List, Optional

from spacy.tokens import Doc

DATASET_KEY = "bioner_dataset"
TYPES_KEY = "bioner_entity_types"


def mark(doc: Doc, dataset: str, entity_types: Iterable[str]) -> None:
    """Record the dataset a doc comes from and the entity types annotated in it."""
    doc.user_data[DATASET_KEY] = dataset
    doc.user_data[TYPES_KEY] = list(entity_types)


def dataset_of(doc: Doc) -> Optional[str]:
    return doc.user_data.get(DATASET_KEY)


def entity_types_of(doc: Doc) -> Optional[List[str]]:
    types = doc.user_data.get(TYPES_KEY)
    return None if types is None else list(types)
