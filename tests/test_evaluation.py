import json

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example
from typer.testing import CliRunner

from spacy_bioner.cli import app
from spacy_bioner.datasets import entity_types_of
from spacy_bioner.evaluation import errors_html, evaluate_examples
from spacy_bioner.scoring import categorize_errors


def test_each_error_is_counted_once_in_its_category():
    gold = {(0, 5, "Chemical"), (10, 20, "Disease"), (30, 40, "Disease"), (50, 60, "Gene"), (70, 80, "Disease")}
    predicted = {
        (0, 5, "Chemical"),  # correct
        (10, 20, "Gene"),  # wrong label
        (30, 45, "Disease"),  # wrong boundary
        (50, 55, "Disease"),  # wrong label and boundary
        (90, 95, "Chemical"),  # false positive
    }  # (70, 80, Disease) is a false negative
    errors = sorted(categorize_errors(predicted, gold), key=lambda e: e[0])
    assert errors == [
        ("false_negative", None, (70, 80, "Disease")),
        ("false_positive", (90, 95, "Chemical"), None),
        ("wrong_boundary", (30, 45, "Disease"), (30, 40, "Disease")),
        ("wrong_label", (10, 20, "Gene"), (10, 20, "Disease")),
        ("wrong_label_and_boundary", (50, 55, "Disease"), (50, 60, "Gene")),
    ]


def test_a_prediction_overlapping_two_gold_entities_pairs_with_one():
    errors = categorize_errors({(0, 10, "D")}, {(0, 4, "D"), (6, 10, "D")})
    assert sorted(category for category, _, _ in errors) == ["false_negative", "wrong_boundary"]


def _example(nlp, words, pred, gold):
    def doc(spans):
        d = Doc(nlp.vocab, words=words)
        d.ents = [Span(d, s, e, label=label) for s, e, label in spans]
        return d

    return Example(doc(pred), doc(gold))


def test_evaluation_results_and_html_list_the_errors():
    nlp = spacy.blank("en")
    words = ["Aspirin", "causes", "Reye", "syndrome", "<b>"]
    example = _example(nlp, words, [(0, 1, "Disease"), (2, 3, "Disease")], [(0, 1, "Chemical"), (2, 4, "Disease")])
    results = evaluate_examples([example])
    assert results["f"] == 0.0
    assert results["errors"]["total"]["wrong_label"] == 1
    assert results["errors"]["total"]["wrong_boundary"] == 1
    assert results["errors"]["per_type"]["Chemical"]["wrong_label"] == 1
    page = errors_html([example])
    assert page.count("<tr><td>0</td>") == 2
    assert '<mark class="gold">Reye syndrome<sup>Disease</sup></mark>' in page
    assert "&lt;b&gt;" in page and "<b>" not in page  # document text is escaped


def test_evaluate_command_writes_json_and_html(tmp_path):
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "Disease", "pattern": "cancer"}])
    nlp.to_disk(tmp_path / "model")
    data = tmp_path / "gold.tsv"
    data.write_text("breast\tB-Disease\ncancer\tI-Disease\n\ncancer\tB-Disease\nrisk\tO\n", encoding="utf8")
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(tmp_path / "model"),
            str(data),
            "--output",
            str(tmp_path / "m.json"),
            "--html",
            str(tmp_path / "e.html"),
        ],
    )
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "m.json").read_text())
    assert scores["p"] == 0.5 and scores["r"] == 0.5
    assert scores["errors"]["total"]["wrong_boundary"] == 1
    assert "wrong_boundary" in (tmp_path / "e.html").read_text()
    assert "ALL (micro)" in result.output


def test_evaluate_command_names_a_missing_model(tmp_path):
    data = tmp_path / "gold.tsv"
    data.write_text("x\tO\n", encoding="utf8")
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "nope"), str(data)])
    assert result.exit_code == 2 and "nope" in result.output


@Language.component("test_label_by_marked_type")
def label_by_marked_type(doc: Doc) -> Doc:
    """Tags every "cancer" with the first entity type the doc is marked with."""
    label = (entity_types_of(doc) or ["unmarked"])[0]
    doc.ents = [Span(doc, token.i, token.i + 1, label=label) for token in doc if token.text == "cancer"]
    return doc


def test_evaluate_command_marks_docs_with_dataset_and_gold_types(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("test_label_by_marked_type")
    nlp.to_disk(tmp_path / "model")
    data = tmp_path / "gold.tsv"
    data.write_text("cancer\tB-Disease\nrisk\tO\n", encoding="utf8")
    for options, expected_f in [(["--dataset", "NCBI-disease"], 1.0), ([], 0.0)]:
        output = tmp_path / "m.json"
        result = CliRunner().invoke(
            app, ["evaluate", str(tmp_path / "model"), str(data), "--output", str(output), *options]
        )
        assert result.exit_code == 0, result.output
        assert json.loads(output.read_text())["f"] == expected_f
