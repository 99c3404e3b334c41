"""Dense Bioentity Recognition: knowledge base, retrieval and pseudo-sentence samples."""

import random

import pytest
import spacy

from spacy_bioner.llm.dbr import EntityIndex, Entry, candidate_phrases, dbr_sample, random_entries, read_kb
from spacy_bioner.llm.instructions import BEGIN, INSIDE, OUTSIDE

pytest.importorskip("sklearn")

KB_ROWS = [
    ("breast cancer", "Disease"),
    ("Breast cancer", "Disease"),
    ("ovarian carcinoma", "Disease"),
    ("kidney injury", "Disease"),
    ("cisplatin", "Chemical"),
    ("tamoxifen citrate", "Chemical"),
    ("BRCA1", "Gene"),
    ("a very long name with far too many words in it here", "Disease"),
]


@pytest.fixture
def kb_file(tmp_path):
    path = tmp_path / "kb.tsv"
    lines = ["name\ttype\tid"] + [f"{name}\t{label}\tX:{i}" for i, (name, label) in enumerate(KB_ROWS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    return path


def entries(n_positive: int, n_negative: int):
    positives = [Entry(f"disease name {i}", "Disease") for i in range(n_positive)]
    negatives = [Entry(f"chem{i}", "Chemical") for i in range(n_negative)]
    return positives + negatives


def test_read_kb_deduplicates_and_skips_long_names(kb_file, tmp_path):
    kb = read_kb(kb_file)
    assert Entry("breast cancer", "Disease") in kb
    assert Entry("Breast cancer", "Disease") not in kb
    assert len(kb) == 6
    bad = tmp_path / "bad.tsv"
    bad.write_text("label\tid\nx\ty\n", encoding="utf8")
    with pytest.raises(ValueError, match="'name' and 'type'"):
        read_kb(bad)
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        read_kb(tmp_path / "missing.tsv")


def test_candidate_phrases_start_and_end_with_content_words():
    phrases = candidate_phrases("Germline mutations in the BRCA1 gene .".split())
    assert "BRCA1 gene" in phrases and "Germline mutations" in phrases
    assert not any(p.split()[0] in ("in", "the") or p.split()[-1] in ("in", "the", ".") for p in phrases)


def test_retrieval_finds_similar_names(kb_file):
    index = EntityIndex(read_kb(kb_file))
    found = index.retrieve("Women with breast cancers received cisplatin .".split(), top_k=2, min_similarity=0.5)
    assert found[:2] == [Entry("cisplatin", "Chemical"), Entry("breast cancer", "Disease")] or set(found[:2]) == {
        Entry("cisplatin", "Chemical"),
        Entry("breast cancer", "Disease"),
    }
    assert Entry("BRCA1", "Gene") not in found
    assert index.retrieve(["the", "."]) == []


def test_sample_counts_and_labels():
    words, spaces, labels = dbr_sample(entries(25, 9), "Disease", random.Random(0), n_positive=10, n_negative=5)
    assert len(words) == len(spaces) == len(labels)
    assert labels.count(BEGIN) == 10
    assert labels.count(INSIDE) == 20  # "disease name i" has three words
    assert sum(word.startswith("chem") for word in words) == 5
    assert words.count(",") == 14
    for word, label in zip(words, labels):
        if word.startswith("chem") or word == ",":
            assert label == OUTSIDE
    for previous, label in zip(labels, labels[1:]):
        if label == INSIDE:
            assert previous in (BEGIN, INSIDE)


def test_sample_with_few_entries_and_none():
    words, _, labels = dbr_sample(entries(2, 1), "Disease", random.Random(0))
    assert labels.count(BEGIN) == 2 and words.count(",") == 2
    assert dbr_sample([], "Disease", random.Random(0)) is None


def test_sample_is_deterministic_with_a_seed():
    pool = entries(30, 30)
    first = dbr_sample(pool, "Disease", random.Random(7))
    assert first == dbr_sample(pool, "Disease", random.Random(7))
    assert first != dbr_sample(pool, "Disease", random.Random(8))


def test_random_entries_draw_the_configured_numbers():
    by_type = {"Disease": entries(30, 0), "Chemical": entries(0, 30)}
    drawn = random_entries(by_type, "Disease", random.Random(0), n_positive=10, n_negative=5)
    assert sum(e.type == "Disease" for e in drawn) == 10 and sum(e.type == "Chemical" for e in drawn) == 5
    assert drawn == random_entries(by_type, "Disease", random.Random(0), n_positive=10, n_negative=5)


@pytest.mark.parametrize("mode", ["retrieved", "random"])
def test_component_mixes_dbr_samples_into_training(kb_file, mode, tmp_path_factory):
    pytest.importorskip("peft")
    from .llm_helpers import build_tiny_llm, llm_config
    from .util import make_examples

    path = build_tiny_llm(tmp_path_factory.mktemp("tiny_llama"))
    nlp = spacy.blank("en")
    config = llm_config(path, dataset="BC5CDR", dbr_mode=mode, dbr_kb=str(kb_file), dbr_ratio=1.0)
    tagger = nlp.add_pipe("bioner_llm_tagger", config=config)
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    gold = tagger._gold_instances(examples)
    samples = tagger._dbr_instances(gold)
    assert samples and len(samples) <= len(gold)
    assert all(sample.dataset is None for sample in samples)
    for sample in samples:
        names = " ".join(sample.words).split(" , ")
        assert all(any(name == row[0] for row in KB_ROWS) for name in names), names
    full = len(tagger._dbr_instances(gold * 20))
    tagger.cfg["dbr_ratio"] = 0.5
    halved = len(tagger._dbr_instances(gold * 20))
    assert 0.3 * full < halved < 0.7 * full
    with pytest.raises(ValueError, match="dbr_kb"):
        spacy.blank("en").add_pipe("bioner_llm_tagger", config=llm_config(path, dbr_mode=mode))
