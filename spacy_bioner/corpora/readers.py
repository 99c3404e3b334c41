"""Registered corpus readers, so training configs can read TSV files without a convert step."""

from pathlib import Path
from typing import Callable, Iterator, Union

from spacy.language import Language
from spacy.training import Example
from spacy.util import registry

from .iob import group_sentences, read_tagged_sentences, sentences_to_doc


@registry.readers("spacy_bioner.IOBCorpus.v1")
def create_iob_reader(
    path: Union[str, Path], limit: int = 0, n_sents: int = 1
) -> Callable[[Language], Iterator[Example]]:
    """Examples from an IOB2/IOBES TSV file, tokenized as in the file.

    limit: read at most this many docs (0 = all).
    n_sents: sentences per doc, as `convert --n-sents` (-DOCSTART- lines take precedence).
    """

    def read(nlp: Language) -> Iterator[Example]:
        for i, sentences in enumerate(group_sentences(read_tagged_sentences(path), n_sents)):
            if limit and i >= limit:
                break
            reference = sentences_to_doc(nlp.vocab, sentences)
            yield Example(nlp.make_doc(reference.text), reference)

    return read
