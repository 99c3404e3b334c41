"""Multi-dataset instruction tuning (VANER section 3.5): several named corpora read as
one, each example marked with its dataset name and entity types, so that one LLM tagger
learns all of them and is instructed with the right dataset and types per sentence.

The marks (:mod:`spacy_bioner.datasets`) are set on both the predicted and the
reference doc.
"""

from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Union

from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from spacy.util import registry

from ..datasets import mark
from .iob import read_tagged_sentences, sentence_to_doc


def read_references(path: Union[str, Path], nlp: Language, limit: int = 0) -> List[Doc]:
    """Gold docs of an IOB TSV file or a DocBin (.spacy), at most `limit` (0 = all)."""
    path = Path(path)
    if path.suffix == ".spacy":
        docs: Iterable[Doc] = DocBin().from_disk(path).get_docs(nlp.vocab)
    else:
        docs = (sentence_to_doc(nlp.vocab, sentence) for sentence in read_tagged_sentences(path))
    references = []
    for doc in docs:
        if limit and len(references) >= limit:
            break
        references.append(doc)
    return references


@registry.readers("spacy_bioner.MultiCorpus.v1")
def create_multi_corpus_reader(
    paths: Dict[str, str], entity_types: Optional[Dict[str, List[str]]] = None, limit: int = 0
) -> Callable[[Language], Iterator[Example]]:
    """Examples from several corpora, marked with their dataset name and entity types.

    paths: dataset name -> IOB TSV file or DocBin (.spacy), e.g.
        {"NCBI-disease": "corpus/NCBI-disease/train.spacy", "BC5CDR": "..."}.
    entity_types: dataset name -> its annotated types (default: the types found in it).
        A type found in the data but not listed is an error.
    limit: at most this many sentences per dataset (0 = all).
    """
    declared = dict(entity_types or {})
    unknown = sorted(set(declared) - set(paths))
    if unknown:
        raise ValueError(f"entity_types names datasets that have no path: {unknown}")

    def read(nlp: Language) -> Iterator[Example]:
        for dataset, path in paths.items():
            references = read_references(path, nlp, limit)
            found = sorted({ent.label_ for doc in references for ent in doc.ents})
            types = declared.get(dataset, found)
            extra = sorted(set(found) - set(types))
            if extra:
                raise ValueError(f"{path} ({dataset}) has entity types {extra} not listed in entity_types[{dataset!r}]")
            for reference in references:
                predicted = nlp.make_doc(reference.text)
                mark(reference, dataset, types)
                mark(predicted, dataset, types)
                yield Example(predicted, reference)

    return read
