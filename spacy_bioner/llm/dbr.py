"""Dense Bioentity Recognition (DBR, VANER section 3.4): pseudo-sentences made of
entity names from a knowledge base, labelled B/I where the name has the instructed
type, so the model memorises entity knowledge relevant to its training sentences.

Retrieval. The paper mines phrases with AutoPhrase and ranks knowledge-base names by
SapBERT cosine similarity. Offline and on a CPU this module does the same with:
- phrases: the word n-grams (1 to 3 words) of the sentence that begin and end with a
  content word (one with a letter, not a stop word);
- similarity: cosine between character 3- to 5-gram TF-IDF vectors of phrases and names
  (scikit-learn, `char_wb` analyzer), nearest names by brute force on the sparse matrix.
The index is built once per process and knowledge-base file (a few seconds for the
140k names of kb/combined_entity_names.tsv) and kept in memory.

Assembly. Of the retrieved names, up to `n_positive` of the instructed type and up to
`n_negative` of other types are sampled, shuffled and joined with ", ". The "random"
mode (the paper's ablation) draws the same numbers of names uniformly from the base.
"""

import csv
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy

from . import require
from .instructions import BEGIN, INSIDE, OUTSIDE

DBR_MODES = ("none", "retrieved", "random")
SEPARATOR = ","
STOP_WORDS = frozenset(
    "a an and are as at be been by for from had has have in into is it its of on or that the their "
    "these this those to was were which with we our not no than then there after before during between "
    "both all also may can could would should such other patients patient study results".split()
)


@dataclass(frozen=True)
class Entry:
    """A knowledge-base entity name and its type."""

    name: str
    type: str


def read_kb(path: Union[str, Path], max_words: int = 8) -> List[Entry]:
    """Unique (name, type) rows of a TSV with a header holding `name` and `type` columns.
    Names longer than `max_words` words are left out (they make poor pseudo-sentences)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No DBR knowledge base at {path}")
    seen, entries = set(), []
    with path.open(encoding="utf8", newline="") as file:
        reader = csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE)
        if not {"name", "type"} <= set(reader.fieldnames or ()):
            raise ValueError(f"{path}: the header must name the columns 'name' and 'type'")
        for row in reader:
            name, label = (row["name"] or "").strip(), (row["type"] or "").strip()
            key = (name.lower(), label)
            if name and label and len(name.split()) <= max_words and key not in seen:
                seen.add(key)
                entries.append(Entry(name, label))
    if not entries:
        raise ValueError(f"{path} holds no entity names")
    return entries


def candidate_phrases(words: Sequence[str], max_words: int = 3) -> List[str]:
    """Word n-grams that begin and end with a content word, in order, without repeats."""

    def content(word: str) -> bool:
        return any(c.isalpha() for c in word) and word.lower() not in STOP_WORDS and len(word) > 1

    phrases: Dict[str, None] = {}
    for start in range(len(words)):
        if not content(words[start]):
            continue
        for end in range(start + 1, min(start + max_words, len(words)) + 1):
            if content(words[end - 1]):
                phrases[" ".join(words[start:end])] = None
    return list(phrases)


class EntityIndex:
    """Nearest knowledge-base names of a phrase by character n-gram TF-IDF cosine."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        text = require("sklearn.feature_extraction.text")
        neighbors = require("sklearn.neighbors")
        self.entries = list(entries)
        self.vectorizer = text.TfidfVectorizer(
            analyzer="char_wb", ngram_range=(3, 5), lowercase=True, dtype=numpy.float32
        )
        matrix = self.vectorizer.fit_transform([entry.name for entry in self.entries])
        self.neighbors = neighbors.NearestNeighbors(metric="cosine", algorithm="brute").fit(matrix)

    def retrieve(self, words: Sequence[str], top_k: int = 3, min_similarity: float = 0.5) -> List[Entry]:
        """Names among the `top_k` nearest of each candidate phrase with cosine similarity
        of at least `min_similarity`, most similar first, without repeats."""
        phrases = candidate_phrases(words)
        if not phrases:
            return []
        k = min(top_k, len(self.entries))
        distances, indices = self.neighbors.kneighbors(self.vectorizer.transform(phrases), n_neighbors=k)
        hits: Dict[int, float] = {}
        for row_distances, row_indices in zip(distances, indices):
            for distance, index in zip(row_distances, row_indices):
                similarity = 1.0 - float(distance)
                if similarity >= min_similarity and similarity > hits.get(int(index), -1.0):
                    hits[int(index)] = similarity
        return [self.entries[i] for i in sorted(hits, key=lambda i: (-hits[i], i))]


@lru_cache(maxsize=2)
def _cached_kb(path: str, mtime: float) -> Tuple[List[Entry], Dict[str, List[Entry]]]:
    entries = read_kb(path)
    by_type: Dict[str, List[Entry]] = {}
    for entry in entries:
        by_type.setdefault(entry.type, []).append(entry)
    return entries, by_type


@lru_cache(maxsize=2)
def _cached_index(path: str, mtime: float) -> EntityIndex:
    return EntityIndex(_cached_kb(path, mtime)[0])


def knowledge_base(path: Union[str, Path]) -> Tuple[List[Entry], Dict[str, List[Entry]]]:
    """The entries of a knowledge base, and the same grouped by type (read once per process)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No DBR knowledge base at {path}")
    return _cached_kb(str(path.resolve()), path.stat().st_mtime)


def entity_index(path: Union[str, Path]) -> EntityIndex:
    """The retrieval index of a knowledge base (built once per process)."""
    path = Path(path)
    knowledge_base(path)
    return _cached_index(str(path.resolve()), path.stat().st_mtime)


def random_entries(
    by_type: Dict[str, List[Entry]], entity_type: str, rng: random.Random, n_positive: int = 10, n_negative: int = 5
) -> List[Entry]:
    """`n_positive` names of the instructed type and `n_negative` of other types, at random."""
    positives = by_type.get(entity_type, [])
    others = [label for label in sorted(by_type) if label != entity_type]
    chosen = rng.sample(positives, min(n_positive, len(positives)))
    if others:
        weights = [len(by_type[label]) for label in others]
        for label in rng.choices(others, weights=weights, k=n_negative):
            chosen.append(rng.choice(by_type[label]))
    return chosen


def dbr_sample(
    entries: Sequence[Entry], entity_type: str, rng: random.Random, n_positive: int = 10, n_negative: int = 5
) -> Optional[Tuple[List[str], List[bool], List[int]]]:
    """A pseudo-sentence (words, spaces after each word, labels) of up to `n_positive`
    entries of `entity_type` and `n_negative` of other types, shuffled, separated by
    commas; B/I labels on the instructed type, O elsewhere. None without entries."""
    positives = [entry for entry in entries if entry.type == entity_type]
    negatives = [entry for entry in entries if entry.type != entity_type]
    chosen = rng.sample(positives, min(n_positive, len(positives)))
    chosen += rng.sample(negatives, min(n_negative, len(negatives)))
    if not chosen:
        return None
    rng.shuffle(chosen)
    words: List[str] = []
    spaces: List[bool] = []
    labels: List[int] = []
    for i, entry in enumerate(chosen):
        if i:
            words.append(SEPARATOR)
            spaces.append(True)
            labels.append(OUTSIDE)
        name_words = entry.name.split()
        words.extend(name_words)
        spaces.extend([True] * (len(name_words) - 1) + [False])
        if entry.type == entity_type:
            labels.extend([BEGIN] + [INSIDE] * (len(name_words) - 1))
        else:
            labels.extend([OUTSIDE] * len(name_words))
    return words, spaces, labels
