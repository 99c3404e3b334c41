"""Instruction inputs for the LLM tagger: the instruction prepended to a sentence, the
sentence split into word pieces, windows of at most `max_length` tokens, and IOB labels
on the first sub-token of each word (instruction tokens and later sub-tokens get none).

Words are tokenized one by one (with the leading space the tokenizer expects after
whitespace), so every spaCy token starts a new sub-token and owns the label there.
A sentence too long for one window is split into overlapping windows of whole words;
each word is predicted from the window where it has the most context on both sides.
"""

from dataclasses import dataclass
from typing import Any, Dict, Hashable, List, Optional, Sequence, Tuple

import numpy

from ..bio import tag_inventory

DEFAULT_TEMPLATE = "If any {entity_type} entity is mentioned in the {dataset} input, extract it. ##input: "
IGNORE = -1
# Label ids of the instructed type: the order of bio.tag_inventory([type]).
OUTSIDE, BEGIN, INSIDE = range(3)
N_TAGS = len(tag_inventory(["X"]))


def instruction(template: str, entity_type: str, dataset: Optional[str]) -> str:
    """The template filled in. Without a dataset name ("adapt" mode and DBR samples) the
    `{dataset}` field and the space after it are left out."""
    if "{entity_type}" not in template:
        raise ValueError(f"The instruction template must contain {{entity_type}}: {template!r}")
    if dataset is None:
        template = template.replace("{dataset} ", "").replace("{dataset}", "")
    return template.format(entity_type=entity_type, dataset=dataset)


@dataclass
class Instance:
    """One sentence (or DBR pseudo-sentence) under the instruction for one entity type.

    labels: per word OUTSIDE/BEGIN/INSIDE, or IGNORE where unknown; None at inference."""

    words: Sequence[str]
    spaces: Sequence[bool]
    entity_type: str
    dataset: Optional[str]
    labels: Optional[Sequence[int]] = None
    key: Hashable = None


@dataclass
class Window:
    """Model input for the words [word_start, word_start + len(first_pieces)) of an instance."""

    input_ids: List[int]
    labels: List[int]
    first_pieces: List[int]
    word_start: int
    instance: int


def window_bounds(piece_counts: Sequence[int], budget: int, overlap: int) -> List[Tuple[int, int]]:
    """(start, end) word ranges, each of at most `budget` pieces (a single longer word gets
    a window of its own), consecutive windows sharing up to `overlap` pieces."""
    bounds: List[Tuple[int, int]] = []
    start, n_words = 0, len(piece_counts)
    if n_words == 0:
        return bounds
    while True:
        end, total = start, 0
        while end < n_words and total + min(piece_counts[end], budget) <= budget:
            total += min(piece_counts[end], budget)
            end += 1
        end = max(end, start + 1)
        bounds.append((start, end))
        if end >= n_words:
            return bounds
        back, shared = end, 0
        while back - 1 > start and shared + piece_counts[back - 1] <= overlap:
            back -= 1
            shared += piece_counts[back]
        start = back


def _needs_space_prefix(tokenizer: Any) -> bool:
    """Whether a word after whitespace is tokenized as ' word' (byte-level BPE) rather
    than 'word' (SentencePiece-style tokenizers that add the word boundary themselves)."""
    context = tokenizer("x patient", add_special_tokens=False)["input_ids"]
    alone = tokenizer("x", add_special_tokens=False)["input_ids"]
    in_context = context[len(alone) :]
    if tokenizer(" patient", add_special_tokens=False)["input_ids"] == in_context:
        return True
    return tokenizer("patient", add_special_tokens=False)["input_ids"] != in_context


def _leading_special_ids(tokenizer: Any) -> List[int]:
    """The special tokens the tokenizer puts before a text (e.g. Llama's <s>)."""
    with_special = tokenizer("x", add_special_tokens=True)["input_ids"]
    plain = tokenizer("x", add_special_tokens=False)["input_ids"]
    for i in range(len(with_special) - len(plain) + 1):
        if with_special[i : i + len(plain)] == plain:
            return with_special[:i]
    return []


class InstructionEncoder:
    """Turns instances into model windows with a Hugging Face tokenizer."""

    def __init__(self, tokenizer: Any, template: str, max_length: int = 128) -> None:
        instruction(template, "X", "Y")  # validates the template
        self.tokenizer = tokenizer
        self.template = template
        self.max_length = max_length
        self.space_prefix = _needs_space_prefix(tokenizer)
        self.leading = _leading_special_ids(tokenizer)
        self._prefixes: Dict[Tuple[str, Optional[str]], List[int]] = {}
        self._pieces: Dict[str, List[int]] = {}

    def prefix(self, entity_type: str, dataset: Optional[str]) -> List[int]:
        """Token ids before the sentence: leading special tokens and the instruction."""
        key = (entity_type, dataset)
        if key not in self._prefixes:
            text = instruction(self.template, entity_type, dataset).rstrip()
            ids = self.leading + self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(ids) >= self.max_length:
                raise ValueError(
                    f"The instruction for {entity_type!r} takes {len(ids)} tokens, max_length is "
                    f"{self.max_length}: shorten the template or raise max_length"
                )
            self._prefixes[key] = ids
        return self._prefixes[key]

    def word_pieces(self, words: Sequence[str], spaces: Sequence[bool]) -> List[List[int]]:
        """Token ids of each word, as it would be tokenized after the preceding text."""
        texts = []
        for i, word in enumerate(words):
            after_space = i == 0 or spaces[i - 1]
            texts.append(" " + word if self.space_prefix and after_space else word)
        missing = sorted(set(texts) - set(self._pieces))
        if missing:
            encoded = self.tokenizer(missing, add_special_tokens=False)["input_ids"]
            for text, ids in zip(missing, encoded):
                self._pieces[text] = ids or [self.tokenizer.unk_token_id or 0]
        return [self._pieces[text] for text in texts]

    def encode(self, instances: Sequence[Instance]) -> List[Window]:
        """The windows of all instances, in order."""
        windows: List[Window] = []
        for index, instance in enumerate(instances):
            prefix = self.prefix(instance.entity_type, instance.dataset)
            budget = self.max_length - len(prefix)
            pieces = self.word_pieces(instance.words, instance.spaces)
            for start, end in window_bounds([len(p) for p in pieces], budget, budget // 4):
                input_ids = list(prefix)
                labels = [IGNORE] * len(prefix)
                first_pieces = []
                for i in range(start, end):
                    word_ids = pieces[i][:budget]
                    first_pieces.append(len(input_ids))
                    input_ids.extend(word_ids)
                    label = IGNORE if instance.labels is None else instance.labels[i]
                    labels.extend([label] + [IGNORE] * (len(word_ids) - 1))
                windows.append(Window(input_ids, labels, first_pieces, start, index))
        return windows


def gather_word_scores(
    windows: Sequence[Window], scores: Sequence[numpy.ndarray], n_words: Sequence[int]
) -> List[numpy.ndarray]:
    """Per instance, the (n_words, N_TAGS) scores at each word's first sub-token, taken
    from the window where the word is farthest from a window edge."""
    result = [numpy.zeros((n, N_TAGS), dtype="f") for n in n_words]
    best = [numpy.full((n,), -1) for n in n_words]
    for window, window_scores in zip(windows, scores):
        length = len(window.first_pieces)
        for offset, position in enumerate(window.first_pieces):
            word = window.word_start + offset
            margin = min(offset, length - 1 - offset)
            if margin > best[window.instance][word]:
                best[window.instance][word] = margin
                result[window.instance][word] = window_scores[position]
    return result
