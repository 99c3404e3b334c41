"""BRAT standoff (``doc.txt`` + ``doc.ann``) -> spaCy Docs with entities in a span group,
and back (:func:`write_brat_document`, as `bioner annotate` writes it).

Entity lines (``T1<TAB>Type START END[;START END...]<TAB>text``) become spans of
``doc.spans[spans_key]``, nested or overlapping ones included; a discontinuous entity
becomes the span from its first start to its last end. Relation lines (``R1<TAB>Type
Arg1:T1 Arg2:T2``) between entities go to ``doc._.relations`` (see
:mod:`spacy_bioner.relations`). Event, attribute, normalization, equivalence and note
lines (``E``, ``A``/``M``, ``N``, ``*``, ``#``) are checked for their ID and skipped.
Character offsets are mapped to the pipeline's tokens with ``Doc.char_span``.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc

from ..relations import set_relations
from .iob import CorpusFormatError, decode_text, read_lines
from .spert import DEFAULT_SPANS_KEY, write_gold_entities

SKIPPED_PREFIXES = ("E", "A", "M", "N", "*", "#")
ALIGNMENT_MODES = ("strict", "contract", "expand")


@dataclass
class Standoff:
    """The entities and relations of one .ann file."""

    entities: Dict[str, Tuple[str, int, int]] = field(default_factory=dict)
    relations: List[Tuple[str, str, str]] = field(default_factory=list)


def read_ann(path: Union[str, Path], text: str) -> Standoff:
    """Entities (id -> (type, start char, end char)) and relations (type, arg1 id, arg2
    id) of an .ann file, checked against the text it annotates."""
    path = Path(path)
    standoff = Standoff()
    relation_lines = []
    for number, line in read_lines(path):
        if not line.strip():
            continue
        fields = line.split("\t")
        ann_id = fields[0]
        if ann_id.startswith("T"):
            standoff.entities[ann_id] = _parse_entity(path, number, fields, text)
        elif ann_id.startswith("R"):
            standoff.relations.append(_parse_relation(path, number, fields))
            relation_lines.append(number)
        elif not ann_id.startswith(SKIPPED_PREFIXES):
            raise CorpusFormatError(path, number, f"unknown annotation ID {ann_id!r}")
    for number, (label, arg1, arg2) in zip(relation_lines, standoff.relations):
        for arg in (arg1, arg2):
            if not arg.startswith(("T", "E")) or (arg.startswith("T") and arg not in standoff.entities):
                raise CorpusFormatError(path, number, f"relation {label!r} refers to unknown annotation {arg!r}")
    return standoff


def _parse_entity(path: Path, number: int, fields: List[str], text: str) -> Tuple[str, int, int]:
    if len(fields) < 2:
        raise CorpusFormatError(path, number, "expected 'ID<TAB>Type START END<TAB>text'")
    label, _, offsets = fields[1].partition(" ")
    try:
        fragments = [tuple(int(x) for x in fragment.split()) for fragment in offsets.split(";")]
    except ValueError:
        raise CorpusFormatError(path, number, f"invalid offsets {offsets!r}") from None
    if not label or not fragments or any(len(f) != 2 or not 0 <= f[0] < f[1] <= len(text) for f in fragments):
        raise CorpusFormatError(path, number, f"invalid entity {fields[1]!r} for a text of {len(text)} characters")
    start, end = fragments[0][0], fragments[-1][1]
    written = "\t".join(fields[2:])
    if len(fields) > 2 and len(fragments) == 1 and one_line(text[start:end]) != written:
        raise CorpusFormatError(
            path, number, f"entity text {written!r} differs from the text at its offsets {text[start:end]!r}"
        )
    return label, start, end


def one_line(text: str) -> str:
    """`text` with its line breaks as spaces, as an .ann line holds an entity's text."""
    return text.replace("\r", " ").replace("\n", " ")


def brat_type(label: str) -> str:
    """`label` as a BRAT type, which ends at the first whitespace: each whitespace
    character written as `_` (and an empty label as `_`)."""
    return re.sub(r"\s", "_", label) or "_"


def _parse_relation(path: Path, number: int, fields: List[str]) -> Tuple[str, str, str]:
    parts = fields[1].split() if len(fields) > 1 else []
    args = dict(part.split(":", 1) for part in parts[1:] if ":" in part)
    if len(parts) != 3 or set(args) != {"Arg1", "Arg2"}:
        raise CorpusFormatError(path, number, "expected 'ID<TAB>Type Arg1:ID Arg2:ID'")
    return parts[0], args["Arg1"], args["Arg2"]


def read_brat(
    txt_path: Union[str, Path],
    nlp: Language,
    spans_key: str = DEFAULT_SPANS_KEY,
    set_ents: bool = True,
    alignment_mode: str = "expand",
) -> Doc:
    """A Doc of `txt_path` (tokenized by `nlp`) annotated from the .ann file beside it.

    set_ents: also put a non-overlapping selection (longest first) in doc.ents.
    alignment_mode: how entity offsets inside a token are mapped to tokens (see
        Doc.char_span); with "strict" such an entity is an error.
    """
    if alignment_mode not in ALIGNMENT_MODES:
        raise ValueError(f"Unknown alignment_mode {alignment_mode!r}; valid: {', '.join(ALIGNMENT_MODES)}")
    txt_path = Path(txt_path)
    ann_path = txt_path.with_suffix(".ann")
    if not txt_path.is_file() or not ann_path.is_file():
        raise FileNotFoundError(f"Expected {txt_path} and {ann_path}")
    text = decode_text(txt_path, txt_path.read_bytes())  # as is: offsets count "\r\n" as two
    standoff = read_ann(ann_path, text)
    doc = nlp.make_doc(text)
    spans = {}
    for ann_id, (label, start, end) in standoff.entities.items():
        span = doc.char_span(start, end, label=label, alignment_mode=alignment_mode)
        if span is None:
            raise ValueError(f"{ann_path}: entity {ann_id} ({start}-{end}) does not align to tokens ({alignment_mode})")
        spans[ann_id] = span
    write_gold_entities(doc, list(spans.values()), spans_key, set_ents)
    set_relations(doc, [(spans[a], spans[b], label) for label, a, b in standoff.relations if a in spans and b in spans])
    return doc


def read_brat_dir(directory: Union[str, Path], nlp: Language, **kwargs) -> List[Doc]:
    """Docs of every .txt file with an .ann file beside it in `directory` (sorted by name);
    keyword arguments as for :func:`read_brat`."""
    paths = sorted(path for path in Path(directory).glob("*.txt") if path.with_suffix(".ann").is_file())
    if not paths:
        raise FileNotFoundError(f"No .txt files with .ann files beside them in {directory}")
    return [read_brat(path, nlp, **kwargs) for path in paths]


def brat_name_problem(doc_id: str) -> Optional[str]:
    """Why `doc_id` cannot name a document's .txt and .ann files, or None."""
    if (
        doc_id in ("", ".", "..")
        or any(c in doc_id for c in "/\\\0")
        or len(doc_id.encode("utf8", "surrogatepass")) > 200
    ):
        return f"id {doc_id!r} is not a file name (BRAT output names the files after the ids)"
    return None


def write_brat_document(
    directory: Path,
    doc_id: str,
    text: str,
    entities: Iterable[Tuple[int, int, str]],
    relations: Iterable[Tuple[int, int, str]] = (),
) -> None:
    """Write `doc_id`.txt and `doc_id`.ann into `directory`.

    entities: (start char, end char, type), written as T1, T2, ... in this order.
    relations: (head, tail, type), head and tail indices into `entities`.
    Types are written with :func:`brat_type`, entity texts on one line. The .ann file
    marks the document as written: it appears whole or not at all.
    """
    lines = [
        f"T{i + 1}\t{brat_type(label)} {start} {end}\t{one_line(text[start:end])}"
        for i, (start, end, label) in enumerate(entities)
    ]
    lines += [
        f"R{i + 1}\t{brat_type(label)} Arg1:T{head + 1} Arg2:T{tail + 1}"
        for i, (head, tail, label) in enumerate(relations)
    ]
    # newline="": the text exactly as it is, since the offsets count its characters
    with (directory / f"{doc_id}.txt").open("w", encoding="utf8", newline="") as file:
        file.write(text)
    partial = directory / f".{doc_id}.ann.partial"
    partial.write_text("".join(line + "\n" for line in lines), encoding="utf8")
    partial.replace(directory / f"{doc_id}.ann")
