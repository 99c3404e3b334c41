"""Registered corpus readers, so training configs can read TSV files without a convert step."""

from pathlib import Path
from typing import Callable, Iterator, Union

from spacy.language import Language
from spacy.training import Example
from spacy.util import registry

from .iob import read_tagged_sentences, sentence_to_doc


@registry.readers("spacy_bioner.IOBCorpus.v1")
def create_iob_reader(path: Union[str, Path], limit: int = 0) -> Callable[[Language], Iterator[Example]]:
    """Examples from an IOB2/IOBES TSV file, one per sentence, tokenized as in the file.

    limit: read at most this many sentences (0 = all).
    """

    def read(nlp: Language) -> Iterator[Example]:
        for i, sentence in enumerate(read_tagged_sentences(path)):
            if limit and i >= limit:
                break
            reference = sentence_to_doc(nlp.vocab, sentence)
            yield Example(nlp.make_doc(reference.text), reference)

    return read
