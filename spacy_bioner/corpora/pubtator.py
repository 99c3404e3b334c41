"""PubTator format: `PMID|t|title` and `PMID|a|abstract` lines, then one tab-separated
annotation per line (`PMID start end mention type [id]`, character offsets into
title + " " + abstract), a blank line between documents."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Iterator, List, Optional, Tuple, Union

from .iob import CorpusFormatError, read_lines

Annotation = Tuple[int, int, str, str]  # start, end, type, concept id ("" if none)


@dataclass
class PubTatorDocument:
    id: str
    title: str = ""
    abstract: str = ""
    annotations: List[Annotation] = field(default_factory=list)
    line: int = 0
    error: Optional[CorpusFormatError] = None  # the first bad line, if any

    @property
    def text(self) -> str:
        return f"{self.title} {self.abstract}" if self.abstract else self.title


def iter_pubtator(path: Union[str, Path]) -> Iterator[PubTatorDocument]:
    """Documents of a PubTator file; malformed lines raise CorpusFormatError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such PubTator file: {path}")
    for document in parse_pubtator(path, ((number, line, None) for number, line in read_lines(path))):
        if document.error is not None:
            raise document.error
        yield document


def parse_pubtator(path: Path, lines: Iterable[Tuple[int, str, Optional[str]]]) -> Iterator[PubTatorDocument]:
    """Documents of PubTator lines (number, line as far as it could be read, problem
    reading it or None). A document with a bad line (or lines that belong to no document) comes with `error` naming the
    first bad line, read to its end so that the next document is read normally."""
    current: Optional[PubTatorDocument] = None

    def bad(number: int, problem: str) -> PubTatorDocument:
        document = current or PubTatorDocument(f"{path.stem}:{number}", line=number)
        document.error = document.error or CorpusFormatError(path, number, problem)
        return document

    for number, line, problem in lines:
        if problem is None and not line.strip():
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
            if problem is None:
                setattr(current, "title" if head[1] == "t" else "abstract", head[2])
                continue
        if problem is not None:
            current = bad(number, problem)
            continue
        fields = line.split("\t")
        if current is None or len(fields) < 5 or fields[0] != current.id:
            current = bad(number, "expected 'PMID|t|', 'PMID|a|' or an annotation of the current document")
            continue
        try:
            start, end = int(fields[1]), int(fields[2])
        except ValueError:
            current = bad(number, f"offsets must be integers: {fields[1]!r}, {fields[2]!r}")
            continue
        if not 0 <= start < end <= len(current.text):
            current = bad(number, f"offsets {start}-{end} outside the document's text")
            continue
        current.annotations.append((start, end, fields[4], fields[5] if len(fields) > 5 else ""))
    if current is not None:
        yield current


def write_pubtator_document(file: IO[str], document: PubTatorDocument) -> None:
    """Write one document block (with its trailing blank line). Line breaks in the text
    (and tabs in a mention, label or concept id) are written as spaces, so every offset
    stays valid and every line reads back as written."""
    file.write(f"{document.id}|t|{_one_line(document.title)}\n{document.id}|a|{_one_line(document.abstract)}\n")
    text = document.text
    for start, end, label, concept in document.annotations:
        columns = [document.id, str(start), str(end), _field(text[start:end]), _field(label)] + (
            [_field(concept)] if concept else []
        )
        file.write("\t".join(columns) + "\n")
    file.write("\n")


def _one_line(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


def _field(text: str) -> str:
    """`text` as one column of an annotation line: tabs and line breaks as spaces."""
    return _one_line(text).replace("\t", " ")
