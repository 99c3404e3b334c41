"""`EntityDictionary`: typed entity names (a gazetteer) and their matches in a Doc.

A token's dictionary features say, for every entity type, whether the token begins or
continues the longest case-insensitive dictionary match of that type (B/I/O). They
are the CNN counterpart of VANER's knowledge injection (Bian et al. 2024): the model
learns how far to trust a match, and in which contexts, from the training data.

Matching uses spaCy's `PhraseMatcher` on the LOWER attribute. Names are tokenized
with the tokenizer of the pipeline's language, so they split as the documents do.
"""

import csv
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy
import srsly
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc
from spacy.util import get_lang_class

from .entity_writing import greedy_non_overlapping

# Names this short (after lowercasing and stripping) match too much to be evidence.
MIN_NAME_CHARS = 2


class EntityDictionary:
    """Entity names grouped by type, stored as token sequences."""

    def __init__(self, lang: str = "en", types: Sequence[str] = (), names: Sequence[Tuple[Sequence[str], int]] = ()):
        self.lang = lang
        self.types = list(types)
        self.names = [(tuple(tokens), int(type_index)) for tokens, type_index in names]
        self._matcher: Optional[PhraseMatcher] = None
        self._type_of_key: Dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.names)

    @property
    def n_features(self) -> int:
        """Width of the feature matrix: a B and an I column per type."""
        return 2 * len(self.types)

    @classmethod
    def from_tsv(
        cls, path: Union[str, Path], lang: str = "en", types: Optional[Sequence[str]] = None
    ) -> "EntityDictionary":
        """Read a tab-separated file with a header naming (at least) the columns `name`
        and `type`, such as ../shared/data/kb/combined_entity_names.tsv. `types` keeps
        only those types (default: every type in the file)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"dictionary file not found: {path}")
        wanted = set(types) if types is not None else None
        by_type: Dict[str, set] = {}
        with path.open(encoding="utf8", newline="") as file_:
            reader = csv.reader(file_, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(reader, None)
            if header is None or "name" not in header or "type" not in header:
                raise ValueError(
                    f"{path}: the first line must be a header with the columns 'name' and 'type'; got {header}"
                )
            name_col, type_col = header.index("name"), header.index("type")
            for line_number, row in enumerate(reader, start=2):
                if len(row) <= max(name_col, type_col):
                    raise ValueError(
                        f"{path}:{line_number}: expected at least {max(name_col, type_col) + 1} columns, got {len(row)}"
                    )
                name, type_ = row[name_col].strip(), row[type_col].strip()
                if len(name) < MIN_NAME_CHARS or not type_ or (wanted is not None and type_ not in wanted):
                    continue
                by_type.setdefault(type_, set()).add(name.lower())
        if not by_type:
            raise ValueError(f"{path}: no names" + (f" of the types {sorted(wanted)}" if wanted else ""))
        tokenizer = get_lang_class(lang)().tokenizer
        sorted_types = sorted(by_type)
        names = []
        for type_index, type_ in enumerate(sorted_types):
            for doc in tokenizer.pipe(sorted(by_type[type_])):
                names.append(([token.text for token in doc], type_index))
        return cls(lang, sorted_types, names)

    def features(self, docs: Iterable[Doc]) -> List[numpy.ndarray]:
        """Per doc, a (n_tokens, 2 * n_types) float32 array: column 2k is 1 where the
        token begins the longest match of type k, column 2k+1 where it continues one."""
        matcher = self._get_matcher()
        output = []
        for doc in docs:
            array = numpy.zeros((len(doc), self.n_features), dtype="float32")
            if len(doc):
                for type_index, spans in self._longest_matches(matcher(doc)).items():
                    for start, end in spans:
                        array[start, 2 * type_index] = 1.0
                        array[start + 1 : end, 2 * type_index + 1] = 1.0
            output.append(array)
        return output

    def _longest_matches(self, matches: List[Tuple[int, int, int]]) -> Dict[int, List[Tuple[int, int]]]:
        """For each type, the longest matches that do not overlap (longest first, then
        leftmost), as spaCy's `filter_spans` selects them."""
        by_type: Dict[int, List[Tuple[int, int]]] = {}
        for key, start, end in matches:
            by_type.setdefault(self._type_of_key[key], []).append((start, end))
        return {
            type_index: [spans[i] for i in greedy_non_overlapping(spans, [()] * len(spans))]
            for type_index, spans in by_type.items()
        }

    def _get_matcher(self) -> PhraseMatcher:
        """Build the matcher on first use, on a vocab of its own: match ids and LOWER
        values are string hashes, the same in every vocab, so the pipeline's vocab
        does not grow by the dictionary's words."""
        if self._matcher is None:
            vocab = get_lang_class(self.lang)().vocab
            matcher = PhraseMatcher(vocab, attr="LOWER")
            keys = [f"bioner_dictionary:{type_}" for type_ in self.types]
            patterns: List[List[Doc]] = [[] for _ in self.types]
            for tokens, type_index in self.names:
                patterns[type_index].append(Doc(vocab, words=list(tokens)))
            for key, docs in zip(keys, patterns):
                matcher.add(key, docs)
            self._type_of_key = {vocab.strings[key]: index for index, key in enumerate(keys)}
            self._matcher = matcher
        return self._matcher

    def __getstate__(self) -> dict:
        """Pickle the names only: the matcher is rebuilt on first use."""
        return {"lang": self.lang, "types": self.types, "names": self.names}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["lang"], state["types"], state["names"])

    def to_bytes(self) -> bytes:
        return srsly.msgpack_dumps(
            {"lang": self.lang, "types": self.types, "names": [[list(t), i] for t, i in self.names]}
        )

    def from_bytes(self, data: bytes) -> "EntityDictionary":
        msg = srsly.msgpack_loads(data)
        self.__init__(msg["lang"], msg["types"], msg["names"])
        return self
