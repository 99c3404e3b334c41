"""benchmarks/compare_systems.py: which models it trains, and how the table reads."""

import importlib.util
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_systems.py"


@pytest.fixture
def compare_systems():
    spec = importlib.util.spec_from_file_location("compare_systems", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reuse_scores_existing_models_and_trains_the_rest(compare_systems, tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    DocBin(docs=[spacy.blank("en")("A test sentence.")]).to_disk(corpus / "test.spacy")
    models = tmp_path / "models"
    (models / "old_seed0" / "model-best").mkdir(parents=True)
    trained = []

    def fake_train(config, overrides, corpus, output, steps, seed, gpu_id, dev_file):
        trained.append(output.name)
        (output / "model-best").mkdir(parents=True)
        return 12.0

    monkeypatch.setattr(compare_systems, "train", fake_train)
    monkeypatch.setattr(compare_systems, "dev_score", lambda model: 0.8)
    monkeypatch.setattr(
        compare_systems, "test_scores", lambda model, path: {"ents_p": 0.7, "ents_r": 0.9, "ents_f": 0.79}
    )
    monkeypatch.setattr(compare_systems, "interleaved_speeds", lambda models, texts, **kw: {n: 100.0 for n in models})
    compare_systems.main(
        corpus,
        tmp_path / "out",
        ["old=a.cfg", "new=b.cfg"],
        steps=10,
        seed=[0, 1],
        jobs=1,
        speed_rounds=1,
        models=models,
        gpu_id=-1,
        dev_file="devel.spacy",
        test_file="test.spacy",
        reuse=True,
    )
    assert trained == ["new_seed0", "old_seed1", "new_seed1"]
    table = (tmp_path / "out.md").read_text(encoding="utf8")
    # One of old's two seeds was reused: no train time rather than the other seed's.
    assert "| old | 80.00 | 70.00 | 90.00 | 79.00 ± 0.00 | - | 100 |" in table
    assert "| new | 80.00 | 70.00 | 90.00 | 79.00 ± 0.00 | 12 | 100 |" in table
    assert "--reuse" in table
