import pytest
import spacy
import srsly
from spacy.tokens import DocBin

from spacy_bioner.corpora import CorpusFormatError, read_brat, read_brat_dir, read_spert, write_spert
from spacy_bioner.corpora.brat import brat_name_problem, read_ann, write_brat_document
from spacy_bioner.corpora.spert import add_symmetric_reverses, drop_symmetric_reverses, symmetric_relation_types
from spacy_bioner.relations import get_relations

RECORDS = [
    {
        "tokens": ["Cisplatin", "induced", "acute", "kidney", "injury", "."],
        "entities": [
            {"type": "Adverse-Effect", "start": 2, "end": 5},
            {"type": "Drug", "start": 0, "end": 1},
            {"type": "Adverse-Effect", "start": 3, "end": 5},
        ],
        "relations": [
            {"type": "Adverse-Effect", "head": 0, "tail": 1},
            {"type": "Adverse-Effect", "head": 2, "tail": 1},
        ],
        "orig_id": 7,
    },
    {"tokens": ["No", "events", "."], "entities": [], "relations": []},
]


def triples(spans):
    return [(span.start, span.end, span.label_) for span in spans]


@pytest.fixture
def nlp():
    return spacy.blank("en")


@pytest.fixture
def spert_file(tmp_path):
    path = tmp_path / "tiny.json"
    srsly.write_json(path, RECORDS)
    return path


def test_spert_nested_entities_go_to_span_group_and_longest_to_ents(nlp, spert_file):
    docs = read_spert(spert_file, nlp.vocab, spans_key="gold")
    assert [token.text for token in docs[0]] == RECORDS[0]["tokens"]
    assert triples(docs[0].spans["gold"]) == [(2, 5, "Adverse-Effect"), (0, 1, "Drug"), (3, 5, "Adverse-Effect")]
    assert triples(docs[0].ents) == [(0, 1, "Drug"), (2, 5, "Adverse-Effect")]
    assert len(docs[1].spans["gold"]) == 0 and docs[0].user_data["orig_id"] == 7
    relations = [(triples([h])[0], triples([t])[0], label) for h, t, label, _ in get_relations(docs[0])]
    assert relations == [
        ((2, 5, "Adverse-Effect"), (0, 1, "Drug"), "Adverse-Effect"),
        ((3, 5, "Adverse-Effect"), (0, 1, "Drug"), "Adverse-Effect"),
    ]
    assert not read_spert(spert_file, nlp.vocab, set_ents=False)[0].ents


def test_spert_round_trips_through_docbin_and_json(nlp, spert_file, tmp_path):
    docs = read_spert(spert_file, nlp.vocab)
    stored = DocBin(docs=docs, store_user_data=True).to_bytes()
    restored = list(DocBin().from_bytes(stored).get_docs(nlp.vocab))
    assert write_spert(restored, tmp_path / "out.json") == 2
    assert srsly.read_json(tmp_path / "out.json") == RECORDS


@pytest.mark.parametrize(
    "record,message",
    [
        ({"tokens": ["a", "b"], "entities": [{"type": "X", "start": 1, "end": 3}]}, "record 1: .*outside"),
        (
            {
                "tokens": ["a"],
                "entities": [{"type": "X", "start": 0, "end": 1}],
                "relations": [{"type": "R", "head": 0, "tail": 1}],
            },
            "record 1: .*entity index",
        ),
        ({"tokens": ["a", " "], "entities": []}, "record 1: .*non-blank"),
        ({"entities": []}, "record 1: .*tokens"),
    ],
)
def test_spert_invalid_record_names_the_record(nlp, tmp_path, record, message):
    path = tmp_path / "bad.json"
    srsly.write_json(path, [RECORDS[1], record])
    with pytest.raises(CorpusFormatError, match=message):
        read_spert(path, nlp.vocab)


def test_ade_overlapping_entities_are_all_kept(nlp, shared_data):
    docs = read_spert(shared_data / "re" / "ade" / "ade_full.json", nlp.vocab)
    groups = [doc.spans["bioner_spans"] for doc in docs]
    assert len(docs) == 4272 and sum(len(group) for group in groups) == 10839
    overlapping = sum(
        a.start < b.end and b.start < a.end
        for group in groups
        for i, a in enumerate(group)
        for b in list(group)[i + 1 :]
    )
    assert overlapping == 120
    assert sum(len(doc.ents) for doc in docs) < 10839


TEXT = "Cisplatin induced acute kidney injury in rats.\n"
ANN = (
    "T1\tDrug 0 9\tCisplatin\n"
    "T2\tDisease 18 37\tacute kidney injury\n"
    "T3\tDisease 24 37\tkidney injury\n"
    "T4\tOrgan 24 30;41 45\tkidney rats\n"
    "R1\tCauses Arg1:T1 Arg2:T2\n"
    "E1\tInduce:T1 Theme:T2\n"
    "A1\tNegated E1\n"
    "N1\tReference T1 MeSH:D002945\tCisplatin\n"
    "#1\tAnnotatorNotes T1\tchecked\n"
    "\n"
)


def write_brat(directory, name, text, ann):
    (directory / f"{name}.txt").write_text(text, encoding="utf8")
    (directory / f"{name}.ann").write_text(ann, encoding="utf8")
    return directory / f"{name}.txt"


def test_brat_entities_nested_discontinuous_and_relations(nlp, tmp_path):
    doc = read_brat(write_brat(tmp_path, "doc1", TEXT, ANN), nlp, spans_key="gold")
    spans = [(span.text, span.label_) for span in doc.spans["gold"]]
    assert spans == [
        ("Cisplatin", "Drug"),
        ("acute kidney injury", "Disease"),
        ("kidney injury", "Disease"),
        ("kidney injury in rats", "Organ"),
    ]
    assert [(e.text, e.label_) for e in doc.ents] == [("Cisplatin", "Drug"), ("kidney injury in rats", "Organ")]
    assert [(h.text, t.text, label) for h, t, label, _ in doc._.relations] == [
        ("Cisplatin", "acute kidney injury", "Causes")
    ]


def test_brat_writer_round_trips_through_the_reader(nlp, tmp_path):
    text = "Cisplatin induced\nacute kidney injury."
    entities = [(0, 9, "Drug"), (18, 37, "Adverse effect"), (24, 37, "Disease")]
    write_brat_document(tmp_path, "doc1", text, entities, [(1, 0, "Caused by")])
    assert (tmp_path / "doc1.ann").read_text(encoding="utf8").splitlines()[
        1
    ] == "T2\tAdverse_effect 18 37\tacute kidney injury"
    doc = read_brat(tmp_path / "doc1.txt", nlp, spans_key="gold")
    assert doc.text == text
    assert [(s.start_char, s.end_char, s.label_) for s in doc.spans["gold"]] == [
        (0, 9, "Drug"),
        (18, 37, "Adverse_effect"),
        (24, 37, "Disease"),
    ]
    assert [(h.text, t.text, label) for h, t, label, _ in doc._.relations] == [
        ("acute kidney injury", "Cisplatin", "Caused_by")
    ]
    assert not list(tmp_path.glob(".*.partial"))
    assert brat_name_problem("doc1") is None and "not a file name" in brat_name_problem("a/b")


def test_brat_dir_reads_pairs_in_name_order(nlp, tmp_path):
    write_brat(tmp_path, "b", "Aspirin helps.", "T1\tDrug 0 7\tAspirin\n")
    write_brat(tmp_path, "a", TEXT, ANN)
    (tmp_path / "orphan.txt").write_text("no annotations", encoding="utf8")
    docs = read_brat_dir(tmp_path, nlp)
    assert [len(doc.spans["bioner_spans"]) for doc in docs] == [4, 1]


@pytest.mark.parametrize(
    "ann,message",
    [
        ("T1\tDrug 0 9\tCisplatin\nT2\tDrug 0 9\tAspirin\n", "line 2: entity text 'Aspirin' differs"),
        ("T1\tDrug 0 90\tCisplatin\n", "line 1: invalid entity"),
        ("T1\tDrug zero 9\tCisplatin\n", "line 1: invalid offsets"),
        ("T1\tDrug 0 9\tCisplatin\nX1\tsomething\n", "line 2: unknown annotation ID 'X1'"),
        ("T1\tDrug 0 9\tCisplatin\nR1\tCauses Arg1:T1 Arg2:T9\n", "line 2: relation 'Causes' refers .* 'T9'"),
        ("R1\tCauses Arg1:T1\n", "line 1: expected 'ID<TAB>Type Arg1:ID Arg2:ID'"),
    ],
)
def test_brat_invalid_lines_name_file_and_line(tmp_path, ann, message):
    (tmp_path / "x.ann").write_text(ann, encoding="utf8")
    with pytest.raises(CorpusFormatError, match=message):
        read_ann(tmp_path / "x.ann", TEXT)


def test_brat_strict_alignment_rejects_offsets_inside_a_token(nlp, tmp_path):
    path = write_brat(tmp_path, "doc", TEXT, "T1\tDrug 0 4\tCisp\n")
    doc = read_brat(path, nlp)
    assert [span.text for span in doc.spans["bioner_spans"]] == ["Cisplatin"]
    with pytest.raises(ValueError, match="T1 \\(0-4\\) does not align to tokens \\(strict\\)"):
        read_brat(path, nlp, alignment_mode="strict")


def test_symmetric_relations_are_stored_both_ways_and_written_once(nlp, tmp_path):
    record = {
        "tokens": ["Ann", "met", "Bob", "in", "Rome"],
        "entities": [
            {"type": "Peop", "start": 0, "end": 1},
            {"type": "Peop", "start": 2, "end": 3},
            {"type": "Loc", "start": 4, "end": 5},
        ],
        "relations": [{"type": "Meet", "head": 0, "tail": 1}, {"type": "Live_In", "head": 1, "tail": 2}],
    }
    srsly.write_json(tmp_path / "in.json", [record])
    srsly.write_json(
        tmp_path / "types.json", {"relations": {"Meet": {"symmetric": True}, "Live_In": {"symmetric": False}}}
    )
    symmetric = symmetric_relation_types(tmp_path / "types.json")
    assert symmetric == {"Meet"}
    doc = read_spert(tmp_path / "in.json", nlp.vocab)[0]
    add_symmetric_reverses(doc, symmetric)
    add_symmetric_reverses(doc, symmetric)  # idempotent
    assert sorted((h.start, t.start, label) for h, t, label, _ in get_relations(doc)) == [
        (0, 2, "Meet"),
        (2, 0, "Meet"),
        (2, 4, "Live_In"),
    ]
    drop_symmetric_reverses(doc, symmetric)
    write_spert([doc], tmp_path / "back.json")
    assert srsly.read_json(tmp_path / "back.json") == [record]


@pytest.mark.parametrize("types", ["not json", "[1, 2]", '{"relations": {"ADE": 5}}'])
def test_a_malformed_types_file_is_a_value_error(tmp_path, types):
    (tmp_path / "types.json").write_text(types, encoding="utf8")
    with pytest.raises(ValueError, match="expected a SpERT types file"):
        symmetric_relation_types(tmp_path / "types.json")
    with pytest.raises(FileNotFoundError, match="No such types file"):
        symmetric_relation_types(tmp_path / "missing.json")
