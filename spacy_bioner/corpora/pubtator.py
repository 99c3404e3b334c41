"""PubTator format: `PMID|t|title` and `PMID|a|abstract` lines, then one tab-separated
annotation per line (`PMID start end mention type [id]`, character offsets into
title + " " + abstract), a blank line between documents."""
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator, List, Optional, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc

from .iob import CorpusFormatError, read_lines

Annotation = Tuple[int, int, str, str]  # start, end, type, concept id ("" if none)


@dataclass
class PubTatorDocument:
    id: str
    title: str = ""
    abstract: str = ""
    annotations: List[Annotation] = field(default_factory=list)
    line: int = 0

    @property
    def text(self) -> str:
        return f"{self.title} {self.abstract}" if self.abstract else self.title


def iter_pubtator(path: Union[str, Path]) -> Iterator[PubTatorDocument]:
    """Documents of a PubTator file; malformed lines raise CorpusFormatError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such PubTator file: {path}")
    current: Optional[PubTatorDocument] = None
    for number, line in read_lines(path):
        if not line.strip():
            if current is not None:
                yield current
            current = None
            continue
        head = line.split("|", 2)
        if len(head) == 3 and head[1] in ("t", "a") and "\t" not in head[0]:
            if current is None or current.id != head[0]:
                if current is not None:
                    yield current
                current = PubTatorDocument(head[0], line=number)
            setattr(current, "title" if head[1] == "t" else "abstract", head[2])
            continue
        fields = line.split("\t")
        if current is None or len(fields) < 5 or fields[0] != current.id:
            raise CorpusFormatError(path, number, "expected 'PMID|t|', 'PMID|a|' or an annotation of the current document")
        try:
            start, end = int(fields[1]), int(fields[2])
        except ValueError:
            raise CorpusFormatError(path, number, f"offsets must be integers: {fields[1]!r}, {fields[2]!r}") from None
        if not 0 <= start < end <= len(current.text):
            raise CorpusFormatError(path, number, f"offsets {start}-{end} outside the document's text")
        current.annotations.append((start, end, fields[4], fields[5] if len(fields) > 5 else ""))
    if current is not None:
        yield current


def pubtator_to_doc(nlp: Language, document: PubTatorDocument) -> Tuple[Doc, int]:
    """A Doc with the annotations as doc.ents (overlaps dropped, longest first), and the
    number of annotations whose boundaries had to be expanded to token boundaries."""
    doc = nlp.make_doc(document.text)
    spans, expanded = [], 0
    for start, end, label, _ in sorted(document.annotations, key=lambda a: (a[0] - a[1], a[0])):
        span = doc.char_span(start, end, label=label)
        if span is None:
            span = doc.char_span(start, end, label=label, alignment_mode="expand")
            expanded += 1
        if span is not None and all(span.end <= s.start or span.start >= s.end for s in spans):
            spans.append(span)
    doc.ents = sorted(spans, key=lambda s: s.start)
    return doc, expanded


def write_pubtator_document(file: IO[str], document: PubTatorDocument) -> None:
    """Write one document block (with its trailing blank line). Line breaks in the text
    (and tabs in a mention) are written as spaces, so every offset stays valid."""
    file.write(f"{document.id}|t|{_one_line(document.title)}\n{document.id}|a|{_one_line(document.abstract)}\n")
    text = document.text
    for start, end, label, concept in document.annotations:
        mention = _one_line(text[start:end]).replace("\t", " ")
        columns = [document.id, str(start), str(end), mention, label] + ([concept] if concept else [])
        file.write("\t".join(columns) + "\n")
    file.write("\n")


def _one_line(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")
