"""Abbreviation definitions in a Doc: a long form followed by its short form in
parentheses, "hereditary nonpolyposis colorectal cancer ( HNPCC )".

The test is the one of Schwartz & Hearst (2003, "A simple algorithm for identifying
abbreviation definitions in biomedical text"): the short form's letters and digits
appear in the long form in order, and its first character begins a word of the long
form. Here the long form is not searched for: it is a given span (an entity) that
ends right before the parenthesis, and the short form's match must cover it up to at
most two leading words.
"""

from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from spacy.tokens import Doc, Span

# A short form is at most this many tokens (e.g. "HPT - JT").
MAX_SHORT_FORM_TOKENS = 3
# An entity defines a short form only if the long form leaves at most this many of its
# words uncovered at the front: "X - linked spastic paraplegia ( SPG )" keeps it, but in
# "deficiency of the enzyme phenylalanine hydroxylase ( PAH )" PAH names the enzyme,
# and its other mentions ("the PAH gene") are not the disease.
MAX_WORDS_BEFORE_LONG_FORM = 2


def long_form_start(short: str, long: str) -> Optional[int]:
    """Where in `long` the long form of `short` begins (Schwartz & Hearst), or None if
    `short` does not abbreviate `long`: the short form's characters, letters and digits
    only, occur in `long` in order, case-insensitively, matched from the end, and its
    first one begins a word of `long`. The offset is that first character's."""
    short_chars = [_fold(c) for c in short if c.isalnum()]
    long = "".join(_fold(c) for c in long)
    if not short_chars:
        return None
    position = len(long) - 1
    for index in range(len(short_chars) - 1, -1, -1):
        char = short_chars[index]
        while position >= 0 and (
            long[position] != char or (index == 0 and position > 0 and long[position - 1].isalnum())
        ):
            position -= 1
        if position < 0:
            return None
        position -= 1
    return position + 1


def _fold(char: str) -> str:
    """`char` lowercased to one character, so that offsets into the folded text are
    offsets into the original ('İ'.lower() is two characters: 'i' and a combining dot)."""
    return char.lower()[0]


def short_form_candidates(doc: Doc, max_chars: int = 10) -> Iterator[Span]:
    """Spans of up to MAX_SHORT_FORM_TOKENS tokens between "(" and ")" that can be a
    short form: 2 to `max_chars` characters, beginning with a letter or a digit, with
    at least one capital letter (so that "( see below )" is not one)."""
    for i, token in enumerate(doc[:-2]):
        if token.text != "(":
            continue
        for length in range(1, MAX_SHORT_FORM_TOKENS + 1):
            close = i + length + 1
            if close < len(doc) and doc[close].text == ")":
                span = doc[i + 1 : close]
                text = "".join(t.text for t in span)
                if 2 <= len(text) <= max_chars and text[0].isalnum() and any(c.isupper() for c in text):
                    yield span
                break
            if close >= len(doc) or doc[close].text == "(":
                break


def defined_short_forms(doc: Doc, entities: Sequence[Span], max_chars: int = 10) -> Dict[Tuple[str, ...], Span]:
    """Short form (its token texts) -> the entity it abbreviates, for every definition
    "ENTITY ( SHORT )" in the doc whose short form abbreviates the entity, or the
    entity without at most MAX_WORDS_BEFORE_LONG_FORM leading words. A short form
    defined twice keeps its first definition."""
    ending_at = {entity.end: entity for entity in entities}
    definitions: Dict[Tuple[str, ...], Span] = {}
    for short in short_form_candidates(doc, max_chars):
        entity = ending_at.get(short.start - 1)
        if entity is None:
            continue
        start = long_form_start(short.text, entity.text)
        if start is not None and words_before(entity, start) <= MAX_WORDS_BEFORE_LONG_FORM:
            definitions.setdefault(tuple(t.text for t in short), entity)
    return definitions


def words_before(span: Span, char_offset: int) -> int:
    """How many alphabetic tokens of `span` end before `char_offset` (relative to the span)."""
    return sum(1 for token in span if token.is_alpha and token.idx + len(token) - span.start_char <= char_offset)


def occurrences(doc: Doc, words: Tuple[str, ...]) -> List[Tuple[int, int]]:
    """(start, end) of every token sequence of the doc whose texts equal `words`."""
    texts = [token.text for token in doc]
    n = len(words)
    return [(i, i + n) for i in range(len(texts) - n + 1) if tuple(texts[i : i + n]) == words]
