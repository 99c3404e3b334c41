"""Annotating corpora with a trained pipeline: streaming readers for raw inputs, writers
for the results, resume and bad-document bookkeeping.

A bad document (undecodable, not valid JSON, empty, longer than `max_chars`) is
reported and skipped: it never stops the run and is always counted in the summary.
"""
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple

from spacy.language import Language
from spacy.tokens import Doc

from .corpora.brat import one_line
from .corpora.pubtator import PubTatorDocument, iter_pubtator, write_pubtator_document

INPUT_FORMATS = ("txt", "jsonl", "pubtator", "dir")
OUTPUT_FORMATS = ("jsonl", "pubtator", "brat")


@dataclass
class InputRecord:
    """One document to annotate, or the reason it cannot be."""

    id: str
    text: str = ""
    title: Optional[str] = None
    problem: Optional[str] = None


@dataclass
class Summary:
    n_annotated: int = 0
    n_words: int = 0
    n_resumed: int = 0
    bad: List[Tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


def guess_input_format(path: Path) -> str:
    if path.is_dir():
        return "dir"
    suffix = path.suffix.lower()
    return {".jsonl": "jsonl", ".pubtator": "pubtator"}.get(suffix, "txt")


def iter_inputs(path: Path, input_format: str, max_chars: int) -> Iterator[InputRecord]:
    """Records of the input, each checked for the problems that make a document bad."""
    if input_format not in INPUT_FORMATS:
        raise ValueError(f"Unknown input format {input_format!r}; valid: {', '.join(INPUT_FORMATS)}")
    if not path.exists():
        raise FileNotFoundError(f"No such input: {path}")
    readers = {"txt": _iter_lines, "jsonl": _iter_jsonl, "pubtator": _iter_pubtator, "dir": _iter_dir}
    for record in readers[input_format](path):
        if record.problem is None and not record.text.strip():
            record.problem = "empty document"
        elif record.problem is None and len(record.text) > max_chars:
            record.problem = f"document of {len(record.text)} characters exceeds --max-chars {max_chars}"
        yield record


def _decode(raw: bytes) -> Tuple[str, Optional[str]]:
    try:
        return raw.decode("utf8"), None
    except UnicodeDecodeError as err:
        return "", f"not valid UTF-8 ({err.reason} at byte {err.start})"


def _iter_lines(path: Path) -> Iterator[InputRecord]:
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            text, problem = _decode(raw.rstrip(b"\r\n"))
            yield InputRecord(f"{path.stem}:{number}", text, problem=problem)


def _iter_jsonl(path: Path) -> Iterator[InputRecord]:
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            if not raw.strip():
                continue
            fallback_id = f"{path.stem}:{number}"
            line, problem = _decode(raw)
            if problem:
                yield InputRecord(fallback_id, problem=f"line {number}: {problem}")
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                yield InputRecord(fallback_id, problem=f"line {number}: invalid JSON ({err.msg})")
                continue
            if not isinstance(record, dict) or not isinstance(record.get("text"), str) or "id" not in record:
                yield InputRecord(fallback_id, problem=f"line {number}: expected an object with 'id' and a string 'text'")
                continue
            doc_id, text = str(record["id"]), record["text"]
            if not _is_unicode(doc_id) or not _is_unicode(text):
                yield InputRecord(fallback_id, problem=f"line {number}: 'id' or 'text' holds a lone surrogate (\\ud800-\\udfff), not text")
                continue
            yield InputRecord(doc_id, text)


def _is_unicode(text: str) -> bool:
    """Whether `text` can be written as UTF-8 (JSON escapes can make lone surrogates)."""
    try:
        text.encode("utf8")
    except UnicodeEncodeError:
        return False
    return True


def _iter_pubtator(path: Path) -> Iterator[InputRecord]:
    for document in iter_pubtator(path):
        yield InputRecord(document.id, document.text, title=document.title)


def _iter_dir(path: Path) -> Iterator[InputRecord]:
    for file in sorted(path.glob("*.txt")):
        if not _is_unicode(file.stem):
            name = file.stem.encode("utf8", "surrogateescape").decode("utf8", "replace")
            yield InputRecord(name, problem="the file name is not valid UTF-8")
            continue
        text, problem = _decode(file.read_bytes())
        yield InputRecord(file.stem, text, problem=problem)


def doc_annotations(doc: Doc) -> Dict[str, Any]:
    """Entities of every span group (and doc.ents entries in no group) with character
    offsets, type, score and source; relations (if `doc._.relations` exists) by entity index."""
    entities: List[Dict[str, Any]] = []
    index: Dict[Tuple[int, int, str], int] = {}
    for key, group in doc.spans.items():
        scores = group.attrs.get("scores")
        for i, span in enumerate(group):
            index.setdefault((span.start_char, span.end_char, span.label_), len(entities))
            score = float(scores[i]) if scores is not None and i < len(scores) else None
            entities.append(_entity(span, score, key))
    for span in doc.ents:
        if (span.start_char, span.end_char, span.label_) not in index:
            index[(span.start_char, span.end_char, span.label_)] = len(entities)
            entities.append(_entity(span, None, "ents"))
    relations = []
    if Doc.has_extension("relations"):
        for relation in doc._.relations:
            head = index[(relation.head.start_char, relation.head.end_char, relation.head.label_)]
            tail = index[(relation.tail.start_char, relation.tail.end_char, relation.tail.label_)]
            relations.append({"head": head, "tail": tail, "label": relation.label, "score": relation.score})
    return {"entities": entities, "relations": relations}


def _entity(span, score: Optional[float], source: str) -> Dict[str, Any]:
    return {"start": span.start_char, "end": span.end_char, "label": span.label_, "text": span.text, "score": score, "source": source}


class Writer:
    """Writes annotated documents in one of OUTPUT_FORMATS, appending (for resume)."""

    def __init__(self, path: Path, output_format: str):
        if output_format not in OUTPUT_FORMATS:
            raise ValueError(f"Unknown output format {output_format!r}; valid: {', '.join(OUTPUT_FORMATS)}")
        self.path, self.format = path, output_format
        if output_format == "brat":
            path.mkdir(parents=True, exist_ok=True)
            self.file = None
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            _drop_partial_tail(path, b"\n" if output_format == "jsonl" else b"\n\n")
            self.file = path.open("a", encoding="utf8")

    def problem(self, record: InputRecord) -> Optional[str]:
        """Why the record's id cannot be written in this format, or None: BRAT makes
        file names of ids, PubTator puts them at the start of `ID|t|` lines."""
        doc_id = record.id
        if self.format == "brat":
            if doc_id in ("", ".", "..") or any(c in doc_id for c in "/\\\0") or len(doc_id.encode("utf8", "surrogatepass")) > 200:
                return f"id {doc_id!r} is not a file name (BRAT output names the files after the ids)"
        elif self.format == "pubtator" and (not doc_id or any(c in doc_id for c in "|\t\r\n")):
            return f"id {doc_id!r} cannot start a PubTator line (empty, or holds '|', a tab or a line break)"
        return None

    def done_ids(self) -> Set[str]:
        """Ids already in the output (a run that stopped midway resumes after them)."""
        if self.format == "brat":
            return {ann.stem for ann in self.path.glob("*.ann")}
        if not self.path.stat().st_size:
            return set()
        if self.format == "pubtator":
            return {document.id for document in iter_pubtator(self.path)}
        ids = set()
        with self.path.open(encoding="utf8") as file:
            for line in file:
                try:
                    ids.add(str(json.loads(line)["id"]))
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue
        return ids

    def write(self, record: InputRecord, annotations: Dict[str, Any]) -> None:
        if self.format == "jsonl":
            self.file.write(json.dumps({"id": record.id, "text": record.text, **annotations}, ensure_ascii=False) + "\n")
        elif self.format == "pubtator":
            title = record.text if record.title is None else record.title
            abstract = record.text[len(title) + 1 :]
            spans = sorted({(e["start"], e["end"], e["label"]) for e in annotations["entities"]})
            write_pubtator_document(self.file, PubTatorDocument(record.id, title, abstract, [(s, e, label, "") for s, e, label in spans]))
        else:
            self._write_brat(record, annotations)

    def _write_brat(self, record: InputRecord, annotations: Dict[str, Any]) -> None:
        entities = annotations["entities"]
        lines = [f"T{i + 1}\t{e['label']} {e['start']} {e['end']}\t{one_line(e['text'])}" for i, e in enumerate(entities)]
        lines += [
            f"R{i + 1}\t{r['label']} Arg1:T{r['head'] + 1} Arg2:T{r['tail'] + 1}" for i, r in enumerate(annotations["relations"])
        ]
        # newline="": the text exactly as it is, since the offsets count its characters
        with (self.path / f"{record.id}.txt").open("w", encoding="utf8", newline="") as file:
            file.write(record.text)
        (self.path / f"{record.id}.ann").write_text("".join(line + "\n" for line in lines), encoding="utf8")

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _drop_partial_tail(path: Path, separator: bytes) -> None:
    """Cut a record that an interrupted run left half-written at the end of `path`
    (everything after the last `separator`), so that it is redone cleanly."""
    if not path.is_file():
        return
    with path.open("rb+") as file:
        data = file.read()
        if data and not data.endswith(separator):
            cut = data.rfind(separator)
            file.truncate(cut + len(separator) if cut >= 0 else 0)


def pending_records(
    records: Iterable[InputRecord],
    done: Set[str],
    summary: Summary,
    problem: Optional[Callable[[InputRecord], Optional[str]]] = None,
) -> Iterator[InputRecord]:
    """The records still to annotate: those already in the output are counted as
    resumed, bad ones (including those `problem`, e.g. Writer.problem, finds fault
    with) are counted and reported in the summary."""
    for record in records:
        if record.id in done:
            summary.n_resumed += 1
            continue
        reason = record.problem or (problem(record) if problem is not None else None)
        if reason is not None:
            summary.bad.append((record.id, reason))
        else:
            yield record


def annotate_records(
    nlp: Language,
    records: Iterable[InputRecord],
    writer: Writer,
    summary: Summary,
    batch_size: int = 64,
    n_process: int = 1,
    progress: Optional[Any] = None,
) -> Summary:
    """Run the pipeline over the pending records in this machine's processes and write them."""
    todo = ((record.text, record) for record in pending_records(records, writer.done_ids(), summary, writer.problem))
    for doc, record in nlp.pipe(todo, as_tuples=True, batch_size=batch_size, n_process=n_process):
        writer.write(record, doc_annotations(doc))
        summary.n_annotated += 1
        summary.n_words += len(doc)
        if progress is not None:
            progress.update(1)
    return summary
