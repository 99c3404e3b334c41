"""IOB2 / IOBES TSV (CoNLL style: `token<TAB>tag` per line, blank line between sentences)
<-> spaCy Docs.

Malformed input raises :class:`CorpusFormatError` naming the file and line. An I- or E-
tag that does not continue an entity of its type is repaired by starting a new entity
(see :mod:`spacy_bioner.bio`); the number of repairs is reported by :func:`read_iob`.
"""

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Sequence, Tuple, Union

from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

from ..bio import iob_to_spans, spans_to_iob, split_tag


class CorpusFormatError(ValueError):
    """Input data that cannot be read; the message names the file and the line (or
    another unit, such as a JSON record)."""

    def __init__(self, path: Union[str, Path], line: int, problem: str, unit: str = "line"):
        super().__init__(f"{path}, {unit} {line}: {problem}")
        self.path, self.line, self.problem = str(path), line, problem


# What the decoder puts in place of bytes that are not UTF-8 (errors="surrogateescape").
_UNDECODABLE = re.compile("[\udc80-\udcff]")
# Characters a token cannot hold in a TSV line.
_TSV_BREAKS = re.compile("[\t\r\n]")


def read_lines(path: Union[str, Path]) -> Iterator[Tuple[int, str]]:
    """(line number, line without its line break) of a UTF-8 text file, streamed; a
    line that is not valid UTF-8 raises CorpusFormatError naming it. A byte-order mark
    is dropped: it is not part of the first token."""
    with Path(path).open(encoding="utf-8-sig", errors="surrogateescape") as file:
        for number, raw in enumerate(file, start=1):
            if _UNDECODABLE.search(raw):
                raise CorpusFormatError(path, number, "not valid UTF-8")
            yield number, raw.rstrip("\r\n")


def decode_text(path: Union[str, Path], data: bytes) -> str:
    """`data` (the bytes of `path`) as UTF-8, or CorpusFormatError naming the line."""
    try:
        return data.decode("utf8")
    except UnicodeDecodeError as err:
        raise CorpusFormatError(path, data.count(b"\n", 0, err.start) + 1, f"not valid UTF-8 ({err.reason})") from None


@dataclass
class TaggedSentence:
    tokens: List[str] = field(default_factory=list)
    tags: List[str] = field(default_factory=list)
    line: int = 0
    # The sentence follows a `-DOCSTART-` line: it begins a document.
    starts_document: bool = False


def read_tagged_sentences(path: Union[str, Path]) -> Iterator[TaggedSentence]:
    """Sentences of a TSV file, validated line by line. A `-DOCSTART-` line marks the
    next sentence as the start of a document."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such corpus file: {path}")
    sentence = TaggedSentence()
    n_sentences = 0
    for number, line in read_lines(path):
        if not line.strip():
            if sentence.tokens:
                n_sentences += 1
                yield sentence
                sentence = TaggedSentence()
            continue
        if line.startswith("-DOCSTART-"):
            if sentence.tokens:
                n_sentences += 1
                yield sentence
            sentence = TaggedSentence(starts_document=True)
            continue
        columns = line.split("\t")
        if len(columns) < 2:
            raise CorpusFormatError(path, number, f"expected 'token<TAB>tag', found no tab in {line!r}")
        token, tag = columns[0], columns[-1].strip()
        if not token.strip():
            raise CorpusFormatError(path, number, "empty token")
        try:
            split_tag(tag)
        except ValueError as err:
            raise CorpusFormatError(path, number, str(err)) from None
        if not sentence.tokens:
            sentence.line = number
        sentence.tokens.append(token)
        sentence.tags.append(tag)
    if sentence.tokens:
        n_sentences += 1
        yield sentence
    if n_sentences == 0:
        raise CorpusFormatError(path, 1, "the file holds no tagged tokens")


def sentence_to_doc(vocab: Vocab, sentence: TaggedSentence) -> Doc:
    """A Doc of one sentence with its entities in doc.ents.

    Tokens containing whitespace are kept whole (spaCy allows them)."""
    return sentences_to_doc(vocab, [sentence])


def sentences_to_doc(vocab: Vocab, sentences: Sequence[TaggedSentence]) -> Doc:
    """A Doc of consecutive sentences (sentence starts set), entities in doc.ents."""
    words = [token for sentence in sentences for token in sentence.tokens]
    # One sentence keeps no sentence annotation, as before documents were grouped.
    sent_starts = (
        [i == 0 for sentence in sentences for i in range(len(sentence.tokens))] if len(sentences) > 1 else None
    )
    doc = Doc(vocab, words=words, spaces=[True] * (len(words) - 1) + [False], sent_starts=sent_starts)
    ents, offset = [], 0
    for sentence in sentences:
        ents.extend(
            Span(doc, offset + start, offset + end, label=label) for start, end, label in iob_to_spans(sentence.tags)
        )
        offset += len(sentence.tokens)
    doc.ents = ents
    return doc


def group_sentences(sentences: Iterable[TaggedSentence], n_sents: int = 1) -> Iterator[List[TaggedSentence]]:
    """Sentences grouped into documents: at the `-DOCSTART-` marks when the file has
    them (as `spacy convert` does), otherwise `n_sents` consecutive sentences at a time.

    Corpora such as NCBI-disease list the sentences of each abstract in order without
    marks; grouping them gives document-level components (abbreviations) their context."""
    if n_sents < 1:
        raise ValueError(f"n_sents must be at least 1, got {n_sents}")
    group: List[TaggedSentence] = []
    marked = False
    for sentence in sentences:
        marked = marked or sentence.starts_document
        if group and (sentence.starts_document if marked else len(group) == n_sents):
            yield group
            group = []
        group.append(sentence)
    if group:
        yield group


def count_repairs(tags: Sequence[str]) -> int:
    """Number of I-/E- tags that do not continue an entity of their own type."""
    repairs = 0
    previous = ("O", "")
    for tag in tags:
        prefix, label = split_tag(tag)
        if prefix in ("I", "E") and not (previous[0] in ("B", "I") and previous[1] == label):
            repairs += 1
        previous = (prefix, label)
    return repairs


def read_iob(path: Union[str, Path], vocab: Vocab, n_sents: int = 1) -> Tuple[List[Doc], int]:
    """Docs of a TSV file (see `group_sentences`) and the number of repaired tags."""
    docs, repairs = [], 0
    for sentences in group_sentences(read_tagged_sentences(path), n_sents):
        docs.append(sentences_to_doc(vocab, sentences))
        repairs += sum(count_repairs(sentence.tags) for sentence in sentences)
    return docs, repairs


def doc_to_tags(doc: Doc, scheme: str = "iob") -> List[Tuple[str, str]]:
    """(token text, tag) pairs for a Doc's entities."""
    spans = [(ent.start, ent.end, ent.label_) for ent in doc.ents]
    return list(zip((token.text for token in doc), spans_to_iob(spans, len(doc), scheme)))


def tag_counts(docs: Iterable[Doc]) -> Dict[str, int]:
    """Token-level IOB2 tag counts of the docs' entities: O first, then by entity type."""
    counts: Counter = Counter()
    for doc in docs:
        counts.update(tag for _, tag in doc_to_tags(doc))
    return dict(sorted(counts.items(), key=lambda item: (item[0] != "O", item[0][2:], item[0])))


def write_iob(docs: Iterable[Doc], path: Union[str, Path], scheme: str = "iob") -> int:
    """Write docs as TSV in `scheme` ('iob' or 'iobes'), a blank line after each sentence
    (a doc without sentence boundaries is one sentence); returns the number of sentences.
    Tokens that are whitespace only are skipped, as they cannot be written as a line; a
    token with a tab or a line break inside is a ValueError (it would not read back)."""
    n_sentences = 0
    with Path(path).open("w", encoding="utf8") as file:
        for i, doc in enumerate(docs):
            tagged = doc_to_tags(doc, scheme)
            broken = next((text for text, _ in tagged if _TSV_BREAKS.search(text)), None)
            if broken is not None:
                raise ValueError(f"doc {i}: the token {broken!r} holds a tab or a line break, which a TSV line cannot")
            sentences = doc.sents if doc.has_annotation("SENT_START") else [doc[:]]
            for sentence in sentences:
                rows = [(text, tag) for text, tag in tagged[sentence.start : sentence.end] if text.strip()]
                if rows:
                    file.writelines(f"{text}\t{tag}\n" for text, tag in rows)
                    file.write("\n")
                    n_sentences += 1
    return n_sentences
