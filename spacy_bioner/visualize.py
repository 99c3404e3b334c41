"""HTML views of annotated docs with displaCy: entities, nested span groups, and
relations drawn as labelled arcs between entities."""

import html
from typing import Any, Dict, List, Optional, Sequence

from spacy import displacy
from spacy.tokens import Doc

from .relations import get_relations


def relation_arcs(doc: Doc) -> Optional[Dict[str, Any]]:
    """displaCy's manual dependency format with each entity of a relation merged into
    one word (tagged with its type) and one arc per relation (head -> tail); None when
    the doc has no relations. Types and labels are HTML-escaped (displaCy escapes only
    the words)."""
    relations = get_relations(doc)
    if not relations:
        return None
    entities = sorted({(span.start, span.end, span.label_) for r in relations for span in (r.head, r.tail)})
    words: List[Dict[str, str]] = []
    word_of: Dict[tuple, int] = {}
    position = 0
    for start, end, label in entities:
        if start < position:  # overlapping entity: draw it on the word it starts in
            word_of[(start, end, label)] = len(words) - 1
            continue
        words += [{"text": token.text, "tag": ""} for token in doc[position:start]]
        word_of[(start, end, label)] = len(words)
        words.append({"text": doc[start:end].text, "tag": html.escape(label)})
        position = end
    words += [{"text": token.text, "tag": ""} for token in doc[position:]]
    arcs = []
    for relation in relations:
        head = word_of[(relation.head.start, relation.head.end, relation.head.label_)]
        tail = word_of[(relation.tail.start, relation.tail.end, relation.tail.label_)]
        if head == tail:
            continue
        arcs.append(
            {
                "start": min(head, tail),
                "end": max(head, tail),
                "label": html.escape(relation.label),
                "dir": "right" if head < tail else "left",
            }
        )
    return {"words": words, "arcs": arcs}


def _render(data: Dict[str, Any], style: str, key: str) -> str:
    """displaCy's HTML of its manual `data` for `style`, with the label of each item of
    data[key] HTML-escaped: displaCy escapes the text but writes labels as they are, so a
    label could inject markup or script into the page."""
    items = [{**item, "label": html.escape(item["label"])} for item in data[key]]
    return displacy.render({**data, key: items}, style=style, manual=True, page=False)


def render_page(docs: Sequence[Doc], title: str = "spacy-bioner") -> str:
    """One self-contained HTML page: per doc, its entities, each span group, and its
    relation arcs."""
    sections = []
    for i, doc in enumerate(docs):
        entities = (
            _render(displacy.parse_ents(doc), "ent", "ents")
            if doc.ents
            else f"<p>{html.escape(doc.text)}</p><p><em>no entities</em></p>"
        )
        parts = [f"<h2>Document {i + 1}</h2>", "<h3>Entities (doc.ents)</h3>", entities]
        for key, group in doc.spans.items():
            if len(group):
                parts += [
                    f"<h3>Span group {html.escape(key)}</h3>",
                    _render(displacy.parse_spans(doc, {"spans_key": key}), "span", "spans"),
                ]
        arcs = relation_arcs(doc)
        if arcs is not None:
            distance = max(120, 9 * max(len(word["text"]) for word in arcs["words"]))
            options = {"compact": True, "distance": distance}
            parts += [
                "<h3>Relations</h3>",
                displacy.render(arcs, style="dep", manual=True, page=False, options=options),
            ]
        sections.append("<section>" + "".join(parts) + "</section>")
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}section{margin-bottom:3em}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>" + "".join(sections) + "</body></html>"
    )
