"""Annotating corpora with a trained pipeline: streaming readers for raw inputs, writers
for the results, resume and bad-document bookkeeping.

A bad document (undecodable, not valid JSON, empty, longer than `max_chars`, a
malformed PubTator block, a directory entry that is not a regular file) is reported and
skipped: it never stops the run and is always counted in the summary.

OUTPUT is only ever changed when this tool wrote it: a state file beside it
(`OUTPUT.bioner-state.json`) names the output format, INPUT's SHA-256 and the options
that decide which records are written, and is locked while a run writes. A run resumes
by position: the records of INPUT already in OUTPUT, in order, are skipped.
"""

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc

from .corpora.brat import brat_name_problem, write_brat_document
from .corpora.pubtator import PubTatorDocument, parse_pubtator, write_pubtator_document

INPUT_FORMATS = ("txt", "jsonl", "pubtator", "dir")
OUTPUT_FORMATS = ("jsonl", "pubtator", "brat")
STATE_SUFFIX = ".bioner-state.json"
WRITTEN_BY = "bioner annotate"
_BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 20

DocId = Union[str, int]


class OutputError(Exception):
    """OUTPUT cannot be written safely: not written by this tool, written from another
    input, or in use by another run."""


@dataclass
class InputRecord:
    """One document to annotate, or the reason it cannot be."""

    id: DocId
    text: str = ""
    title: Optional[str] = None
    problem: Optional[str] = None


@dataclass
class Summary:
    n_annotated: int = 0
    n_words: int = 0
    n_resumed: int = 0
    bad: List[Tuple[DocId, str]] = field(default_factory=list)
    duplicates: List[DocId] = field(default_factory=list)
    seconds: float = 0.0


def guess_input_format(path: Path) -> str:
    if path.is_dir():
        return "dir"
    suffix = path.suffix.lower()
    return {".jsonl": "jsonl", ".pubtator": "pubtator"}.get(suffix, "txt")


def line_cap(max_chars: int) -> int:
    """The most bytes of an input line that are read: enough for `max_chars` characters
    as JSON escapes (6 bytes each) plus an id, so a longer line is never held whole."""
    return 6 * max_chars + 4096


def iter_inputs(path: Path, input_format: str, max_chars: int, follow_symlinks: bool = False) -> Iterator[InputRecord]:
    """Records of the input, each checked for the problems that make a document bad.

    follow_symlinks: read the files of a directory that are symbolic links (else they
        are bad documents)."""
    if input_format not in INPUT_FORMATS:
        raise ValueError(f"Unknown input format {input_format!r}; valid: {', '.join(INPUT_FORMATS)}")
    if not path.exists():
        raise FileNotFoundError(f"No such input: {path}")
    if (input_format == "dir") != path.is_dir():
        kind = "a directory" if path.is_dir() else "not a directory"
        raise ValueError(f"Input format {input_format!r} does not fit {path}: it is {kind}")
    if input_format == "dir":
        records = _iter_dir(path, max_chars, follow_symlinks)
    else:
        lines = _read_lines(path, line_cap(max_chars))
        records = {"txt": _iter_lines, "jsonl": _iter_jsonl, "pubtator": _iter_pubtator}[input_format](path, lines)
    for record in records:
        if record.problem is None and not record.text.strip():
            record.problem = "empty document"
        elif record.problem is None and len(record.text) > max_chars:
            record.problem = f"document of {len(record.text)} characters exceeds --max-chars {max_chars}"
        yield record


def input_fingerprint(path: Path, input_format: str, follow_symlinks: bool = False) -> str:
    """SHA-256 of what the input's records are read from: the file, or the names and
    contents of a directory's entries."""
    digest = hashlib.sha256()
    if input_format != "dir":
        _hash_file(digest, path)
        return digest.hexdigest()
    for name, file, _ in _dir_entries(path, follow_symlinks):
        digest.update(os.fsencode(name) + b"\0")
        if file is not None:
            _hash_file(digest, file)
        digest.update(b"\0")
    return digest.hexdigest()


def _hash_file(digest, path: Path) -> None:
    with path.open("rb") as file:
        for block in iter(lambda: file.read(_CHUNK), b""):
            digest.update(block)


LineRead = Tuple[int, bytes, Optional[str]]


def _read_lines(path: Path, cap: int) -> Iterator[LineRead]:
    """(number, line without its line break, problem or None), reading at most `cap`
    bytes of a line: the rest of a longer one is skipped unread, and it is a problem.
    A byte-order mark at the start is dropped."""
    with path.open("rb") as file:
        number = 0
        while True:
            raw = file.readline(cap + 1)
            if not raw:
                return
            number += 1
            if number == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            if len(raw) > cap and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):
                    raw = file.readline(_CHUNK)
                yield number, b"", f"line {number} is longer than {cap} bytes (the limit for --max-chars)"
                continue
            yield number, raw.rstrip(b"\r\n"), None


def _decode(raw: bytes) -> Tuple[str, Optional[str]]:
    try:
        return raw.decode("utf8"), None
    except UnicodeDecodeError as err:
        return "", f"not valid UTF-8 ({err.reason} at byte {err.start})"


def _iter_lines(path: Path, lines: Iterable[LineRead]) -> Iterator[InputRecord]:
    for number, raw, problem in lines:
        text, problem = ("", problem) if problem else _decode(raw)
        yield InputRecord(f"{path.stem}:{number}", text, problem=problem)


def _iter_jsonl(path: Path, lines: Iterable[LineRead]) -> Iterator[InputRecord]:
    for number, raw, problem in lines:
        fallback_id = f"{path.stem}:{number}"
        if problem is None and not raw.strip():
            continue
        line, problem = (None, problem) if problem else _decode(raw)
        if problem is None:
            record, problem = _json_record(line)
        if problem is not None:
            yield InputRecord(fallback_id, problem=f"line {number}: {problem}")
            continue
        yield InputRecord(record["id"], record["text"])


def _json_record(line: str) -> Tuple[Dict[str, Any], Optional[str]]:
    """The record of a JSONL line, or the problem with it."""
    try:
        record = json.loads(line)
    except RecursionError:
        return {}, "invalid JSON (nested too deeply)"
    except ValueError as err:  # JSONDecodeError, or an integer too long to convert
        return {}, f"invalid JSON ({getattr(err, 'msg', err)})"
    if not isinstance(record, dict) or not isinstance(record.get("text"), str) or "id" not in record:
        return {}, "expected an object with 'id' and a string 'text'"
    doc_id = record["id"]
    if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool):
        return (
            {},
            f"'id' must be a string or an integer, not {type(doc_id).__name__} (other ids would be changed by writing them)",
        )
    if not _is_unicode(str(doc_id)) or not _is_unicode(record["text"]):
        return {}, "'id' or 'text' holds a lone surrogate (\\ud800-\\udfff), not text"
    return record, None


def _is_unicode(text: str) -> bool:
    """Whether `text` can be written as UTF-8 (JSON escapes can make lone surrogates)."""
    try:
        text.encode("utf8")
    except UnicodeEncodeError:
        return False
    return True


def _decoded(lines: Iterable[LineRead]) -> Iterator[Tuple[int, str, Optional[str]]]:
    """Lines as text; one that is not UTF-8 as far as it reads (its id, say), with the problem."""
    for number, raw, problem in lines:
        text, problem = ("", problem) if problem else _decode(raw)
        yield number, raw.decode("utf8", "replace") if problem else text, problem


def _iter_pubtator(path: Path, lines: Iterable[LineRead]) -> Iterator[InputRecord]:
    for document in parse_pubtator(path, _decoded(lines)):
        problem = None if document.error is None else str(document.error)
        yield InputRecord(document.id, document.text, title=document.title, problem=problem)


def _dir_entries(path: Path, follow_symlinks: bool) -> Iterator[Tuple[str, Optional[Path], Optional[str]]]:
    """(name, file to read or None, problem) of each `*.txt` entry of a directory, by
    name: only regular files are read, and symbolic links only when followed."""
    with os.scandir(path) as entries:
        named = sorted((entry for entry in entries if entry.name.endswith(".txt")), key=lambda entry: entry.name)
    for entry in named:
        if entry.is_symlink() and not follow_symlinks:
            yield entry.name, None, "a symbolic link (pass --follow-symlinks to read the file it points to)"
        elif not entry.is_file(follow_symlinks=True):
            yield entry.name, None, "not a regular file"
        else:
            yield entry.name, Path(entry.path), None


def _iter_dir(path: Path, max_chars: int, follow_symlinks: bool) -> Iterator[InputRecord]:
    for name, file, problem in _dir_entries(path, follow_symlinks):
        stem = name[: -len(".txt")]
        if not _is_unicode(stem):
            stem = stem.encode("utf8", "surrogateescape").decode("utf8", "replace")
            problem = problem or "the file name is not valid UTF-8"
        if problem is None and file.stat().st_size > line_cap(max_chars):
            problem = f"file of {file.stat().st_size} bytes exceeds --max-chars {max_chars}"
        if problem is not None:
            yield InputRecord(stem, problem=problem)
            continue
        data = file.read_bytes()
        text, problem = _decode(data[len(_BOM) :] if data.startswith(_BOM) else data)
        yield InputRecord(stem, text, problem=problem)


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
    return {
        "start": span.start_char,
        "end": span.end_char,
        "label": span.label_,
        "text": span.text,
        "score": score,
        "source": source,
    }


class Writer:
    """Writes annotated documents in one of OUTPUT_FORMATS, appending (for resume).

    Only an output this tool wrote is opened (see the module's docstring): any other
    existing, non-empty OUTPUT, one written with another format, input or `run`
    settings, or one another run is writing raises OutputError before anything is
    changed. A record an interrupted run left half-written is cut, to be redone.

    run: what decides which records are written where (INPUT's fingerprint, options);
        a later run resumes OUTPUT only with the same.
    """

    def __init__(self, path: Path, output_format: str, run: Optional[Dict[str, Any]] = None):
        if output_format not in OUTPUT_FORMATS:
            raise ValueError(f"Unknown output format {output_format!r}; valid: {', '.join(OUTPUT_FORMATS)}")
        self.path, self.format = path, output_format
        self.state_path = path.with_name(path.name + STATE_SUFFIX)
        self.file: Optional[IO[str]] = None
        self._state = self._claim(run or {})
        try:
            if output_format == "brat":
                path.mkdir(exist_ok=True)
            else:
                _drop_partial_tail(path, b"\n" if output_format == "jsonl" else b"\n\n")
                self.file = path.open("a", encoding="utf8")
            self._written: Optional[Iterator[DocId]] = self.written_ids()
        except BaseException:
            self.close()
            raise

    def _claim(self, run: Dict[str, Any]) -> IO[str]:
        """The state file, created or checked, and locked for this run."""
        if self.path.exists() and (self.path.is_dir() != (self.format == "brat") or self.path.is_symlink()):
            kind = "a directory" if self.format == "brat" else "a regular file"
            raise OutputError(f"OUTPUT {self.path} must be {kind} for --output-format {self.format}")
        fresh = not self.state_path.exists()
        if fresh and not _is_empty(self.path):
            raise OutputError(
                f"OUTPUT {self.path} exists and was not written by {WRITTEN_BY} (no {self.state_path.name} beside it): "
                "it is left as it is; choose another OUTPUT"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        state = self.state_path.open("a+", encoding="utf8")
        if not _lock(state):
            state.close()
            raise OutputError(f"Another run is writing {self.path} (it holds the lock on {self.state_path})")
        try:
            state.seek(0)
            found = state.read()
            expected = {"written_by": WRITTEN_BY, "output_format": self.format, "run": run}
            if found.strip() or not _is_empty(self.path):
                _check_state(self.state_path, found, expected)
            else:
                state.truncate(0)
                state.write(json.dumps(expected, indent=2, sort_keys=True) + "\n")
                state.flush()
        except BaseException:
            state.close()
            raise
        return state

    def problem(self, record: InputRecord) -> Optional[str]:
        """Why the record's id cannot be written in this format, or None: BRAT makes
        file names of ids, PubTator puts them at the start of `ID|t|` lines."""
        doc_id = str(record.id)
        if self.format == "brat":
            return brat_name_problem(doc_id)
        if self.format == "pubtator" and (not doc_id or any(c in doc_id for c in "|\t\r\n")):
            return f"id {doc_id!r} cannot start a PubTator line (empty, or holds '|', a tab or a line break)"
        return None

    def key(self, record: InputRecord) -> DocId:
        """The record's id as OUTPUT holds it (JSONL keeps integers; the others write text)."""
        return record.id if self.format == "jsonl" else str(record.id)

    def written_ids(self) -> Iterator[DocId]:
        """Ids of the documents in OUTPUT: in order, or for BRAT by name."""
        if self.format == "brat":
            return iter(sorted(ann.stem for ann in self.path.glob("*.ann")))
        if self.format == "pubtator":
            return _pubtator_ids(self.path)
        return _jsonl_ids(self.path)

    def already_written(self, record: InputRecord) -> bool:
        """Whether an earlier run wrote this record; called once per writable record,
        in input order. Records are matched by position: the next id in OUTPUT must be
        this record's (BRAT: its .ann file exists), else OutputError."""
        if self.format == "brat":
            if not isinstance(self._written, set):
                self._written = set(self._written)
            return str(record.id) in self._written
        if self._written is None:
            return False
        done = next(self._written, _END)
        if done is _END:
            self._written = None
            return False
        if done != self.key(record):
            raise OutputError(
                f"OUTPUT {self.path} holds {done!r} where INPUT has {record.id!r}: it was not written from this INPUT; "
                "choose another OUTPUT"
            )
        return True

    def write(self, record: InputRecord, annotations: Dict[str, Any]) -> None:
        if self.format == "jsonl":
            self.file.write(
                json.dumps({"id": record.id, "text": record.text, **annotations}, ensure_ascii=False) + "\n"
            )
        elif self.format == "pubtator":
            title = record.text if record.title is None else record.title
            abstract = record.text[len(title) + 1 :]
            spans = sorted({(e["start"], e["end"], e["label"]) for e in annotations["entities"]})
            write_pubtator_document(
                self.file,
                PubTatorDocument(str(record.id), title, abstract, [(s, e, label, "") for s, e, label in spans]),
            )
        else:
            write_brat_document(
                self.path,
                str(record.id),
                record.text,
                [(e["start"], e["end"], e["label"]) for e in annotations["entities"]],
                [(r["head"], r["tail"], r["label"]) for r in annotations["relations"]],
            )

    def close(self) -> None:
        """Close OUTPUT and release the lock."""
        if self.file is not None:
            self.file.close()
            self.file = None
        if getattr(self, "_state", None) is not None:
            self._state.close()
            self._state = None

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


_END = object()


def _is_empty(path: Path) -> bool:
    """Whether `path` is missing, an empty file or an empty directory: nothing to lose."""
    if path.is_dir() and not path.is_symlink():
        return not any(path.iterdir())
    return not path.exists() or (path.is_file() and path.stat().st_size == 0)


def _lock(file: IO[str]) -> bool:
    """Take an exclusive lock on `file` without waiting; False when another process
    holds it. The system releases it when the process ends, also when it is killed."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(file.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _check_state(path: Path, found: str, expected: Dict[str, Any]) -> None:
    """OutputError unless the state file holds `expected`, naming what differs."""
    try:
        state = json.loads(found)
    except ValueError:
        state = None
    if not isinstance(state, dict) or state.get("written_by") != WRITTEN_BY:
        raise OutputError(f"{path} was not written by {WRITTEN_BY}: its output is left as it is; choose another OUTPUT")
    if state.get("output_format") != expected["output_format"]:
        raise OutputError(
            f"The output was written as {state.get('output_format')!r} ({path}), not {expected['output_format']!r}"
        )
    run = state.get("run") if isinstance(state.get("run"), dict) else {}
    changed = [
        f"{key} was {run.get(key)!r}, now {value!r}" for key, value in expected["run"].items() if run.get(key) != value
    ]
    if changed:
        raise OutputError(
            f"The output was written from another INPUT or with other options ({path}: {'; '.join(changed)}); "
            "resume with the same INPUT and options, or choose another OUTPUT"
        )


def _jsonl_ids(path: Path) -> Iterator[DocId]:
    if not path.is_file():
        return
    with path.open("rb") as file:
        for number, line in enumerate(file, start=1):
            try:
                yield json.loads(line)["id"]
            except (ValueError, KeyError, TypeError, RecursionError):
                raise OutputError(f"{path}, line {number}: not a record written by {WRITTEN_BY}") from None


def _pubtator_ids(path: Path) -> Iterator[str]:
    """The id of each document block: its first line is `ID|t|...`."""
    if not path.is_file():
        return
    with path.open("rb") as file:
        starts = True
        for line in file:
            if starts and line.strip():
                yield line.split(b"|", 1)[0].decode("utf8", "replace")
            starts = not line.strip()


def _drop_partial_tail(path: Path, separator: bytes) -> None:
    """Cut a record that an interrupted run left half-written at the end of `path`
    (everything after the last `separator`), so that it is redone cleanly. Reads the
    file backwards a block at a time."""
    if not path.is_file():
        return
    with path.open("rb+") as file:
        position = file.seek(0, os.SEEK_END)
        file.seek(max(0, position - len(separator)))
        if not position or file.read() == separator:
            return
        following = b""
        while position > 0:
            start = max(0, position - _CHUNK)
            file.seek(start)
            block = file.read(position - start) + following[: len(separator) - 1]
            cut = block.rfind(separator)
            if cut >= 0:
                file.truncate(start + cut + len(separator))
                return
            following, position = block, start
        file.truncate(0)


def pending_records(records: Iterable[InputRecord], writer: Writer, summary: Summary) -> Iterator[InputRecord]:
    """The records still to annotate. Those an earlier run wrote (by position) are
    counted as resumed; bad ones (including those whose id the output format cannot
    hold, and for BRAT a repeated id, which would overwrite the first) are counted and
    reported in the summary; other repeated ids are written and reported."""
    seen = set()
    for record in records:
        key = writer.key(record)
        reason = record.problem or writer.problem(record)
        if reason is None and key in seen:
            if writer.format == "brat":
                reason = f"id {key!r} repeats an earlier document's (BRAT output would overwrite its files)"
            else:
                summary.duplicates.append(record.id)
        if reason is not None:
            summary.bad.append((record.id, reason))
            continue
        seen.add(key)
        if writer.already_written(record):
            summary.n_resumed += 1
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
    todo = ((record.text, record) for record in pending_records(records, writer, summary))
    for doc, record in nlp.pipe(todo, as_tuples=True, batch_size=batch_size, n_process=n_process):
        writer.write(record, doc_annotations(doc))
        summary.n_annotated += 1
        summary.n_words += len(doc)
        if progress is not None:
            progress.update(1)
    return summary
