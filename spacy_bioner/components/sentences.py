"""`bioner_sentences`: rule-based sentence starts that keep biomedical names whole.

`bioner_tagger`, like spaCy's `ner`, lets no entity run across a sentence start, so a
document needs its sentences marked. spaCy's `sentencizer` starts a sentence after
every ".", which in tokenized biomedical text splits names: "E . coli", "S . aureus",
"5 . 6 - kb fragment". Here a sentence starts only where a token that ends sentences
(".", "!", "?") is followed by a token that begins with an upper-case letter; spaces
and line breaks between the two are skipped. A boundary before a lower-case word or a
digit is missed, which only leaves two sentences joined, as they are without the
component.
"""

from typing import Iterable

import numpy
from spacy.language import Language
from spacy.strings import get_string_id
from spacy.tokens import Doc

DEFAULT_SENTENCE_ENDS = (".", "!", "?")


@Language.factory(
    "bioner_sentences",
    assigns=["token.is_sent_start"],
    default_config={"sentence_ends": list(DEFAULT_SENTENCE_ENDS), "overwrite": False},
)
def make_sentences(nlp: Language, name: str, sentence_ends: Iterable[str], overwrite: bool) -> "SentenceStarts":
    """sentence_ends: the token texts that can end a sentence.
    overwrite: replace sentence starts the doc already has (false: keep them)."""
    sentence_ends = list(sentence_ends)
    if not sentence_ends or not all(isinstance(end, str) and end for end in sentence_ends):
        raise ValueError(f"{name}: sentence_ends must be a list of non-empty strings, got {sentence_ends!r}")
    return SentenceStarts(sentence_ends, overwrite)


class SentenceStarts:
    def __init__(self, sentence_ends: Iterable[str] = DEFAULT_SENTENCE_ENDS, overwrite: bool = False):
        self.sentence_ends = list(sentence_ends)
        self.overwrite = overwrite
        self._end_ids = numpy.asarray([get_string_id(end) for end in self.sentence_ends], dtype="uint64")

    def __call__(self, doc: Doc) -> Doc:
        if not len(doc) or (doc.has_annotation("SENT_START") and not self.overwrite):
            return doc
        # Arrays, not a loop over tokens: setting Token.is_sent_start checks the whole
        # doc on every assignment, and only the token after an end needs its text.
        orths, spaces = doc.to_array(["ORTH", "IS_SPACE"]).T
        words = numpy.flatnonzero(spaces == 0)
        ends = words[numpy.isin(orths[words], self._end_ids)]
        following = numpy.searchsorted(words, ends, side="right")
        candidates = words[following[following < len(words)]]
        starts = numpy.full((len(doc),), -1, dtype="int64")
        starts[0] = 1
        for i in candidates.tolist():
            if doc[i].text[0].isupper():
                starts[i] = 1
        doc.from_array(["SENT_START"], starts.astype("uint64"))
        return doc
