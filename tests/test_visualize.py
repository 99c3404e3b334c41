import spacy
from spacy.tokens import Span
from typer.testing import CliRunner

from spacy_bioner.cli import app
from spacy_bioner.relations import Relation
from spacy_bioner.visualize import relation_arcs, render_page


def _annotated_doc():
    nlp = spacy.blank("en")
    doc = nlp("Aspirin induced Reye syndrome in children with influenza")
    chemical, disease, nested, flu = (
        Span(doc, 0, 1, label="Chemical"),
        Span(doc, 2, 4, label="Disease"),
        Span(doc, 2, 3, label="Person"),
        Span(doc, 7, 8, label="Disease"),
    )
    doc.ents = [chemical, disease, flu]
    doc.spans["bioner_spans"] = [chemical, disease, nested, flu]
    doc._.relations = [Relation(disease, chemical, "Adverse-Effect", 0.9), Relation(flu, disease, "Risk", 0.6)]
    return doc


def test_relation_arcs_merge_entities_into_words():
    arcs = relation_arcs(_annotated_doc())
    texts = [word["text"] for word in arcs["words"]]
    assert texts == ["Aspirin", "induced", "Reye syndrome", "in", "children", "with", "influenza"]
    assert {(a["start"], a["end"], a["label"], a["dir"]) for a in arcs["arcs"]} == {
        (0, 2, "Adverse-Effect", "left"),
        (2, 6, "Risk", "left"),
    }


def test_page_shows_entities_nested_spans_and_relation_labels():
    page = render_page([_annotated_doc()])
    assert page.count("<section>") == 1
    for text in ["Reye syndrome", "Chemical", "Span group bioner_spans", "Person", "Adverse-Effect", "Risk"]:
        assert text in page
    assert "<svg" in page  # the arcs


def test_docs_without_relations_have_no_arc_section():
    nlp = spacy.blank("en")
    assert relation_arcs(nlp("no relations here")) is None
    assert "Relations" not in render_page([nlp("no relations here")])


def test_visualize_command(tagger_model_dir, tmp_path):
    output = tmp_path / "page.html"
    result = CliRunner().invoke(
        app, ["visualize", tagger_model_dir, "Cisplatin causes acute kidney injury .", "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    page = output.read_text()
    assert "Cisplatin" in page and "Chemical" in page and "Span group bioner_tagger" in page
