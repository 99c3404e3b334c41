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


CONFIG = """[paths]
train = null
dev = null

[system]
seed = 0

[training]
max_steps = 100
dropout = 0.1
"""


def saved_model(compare_systems, models: Path, name: str, settings: dict) -> Path:
    """A model-best directory whose config.cfg is CONFIG with `settings`, as `spacy train`
    would save it (only the config matters to the reuse check)."""
    best = models / name / "model-best"
    best.mkdir(parents=True)
    overrides = compare_systems.parse_config_overrides([f"--{k}={v}" for k, v in settings.items()])
    spacy.util.load_config_from_str(CONFIG, overrides=overrides).to_disk(best / "config.cfg")
    return best


def run_main(compare_systems, corpus: Path, output: Path, variants, models: Path, seeds=(0, 1)) -> None:
    compare_systems.main(
        corpus,
        output,
        variants,
        steps=10,
        seed=list(seeds),
        jobs=1,
        speed_rounds=1,
        models=models,
        gpu_id=-1,
        dev_file="devel.spacy",
        test_file="test.spacy",
        reuse=True,
    )


def test_reuse_scores_existing_models_and_trains_the_rest(compare_systems, tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    DocBin(docs=[spacy.blank("en")("A test sentence.")]).to_disk(corpus / "test.spacy")
    (tmp_path / "a.cfg").write_text(CONFIG, encoding="utf8")
    models = tmp_path / "models"
    saved_model(compare_systems, models, "old_seed0", compare_systems.train_settings([], corpus, 10, 0))
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
    run_main(compare_systems, corpus, tmp_path / "out", [f"old={tmp_path / 'a.cfg'}", "new=b.cfg"], models)
    assert trained == ["new_seed0", "old_seed1", "new_seed1"]
    table = (tmp_path / "out.md").read_text(encoding="utf8")
    # One of old's two seeds was reused: no train time rather than the other seed's.
    assert "| old | 80.00 | 70.00 | 90.00 | 79.00 ± 0.00 | - | 100 |" in table
    assert "| new | 80.00 | 70.00 | 90.00 | 79.00 ± 0.00 | 12 | 100 |" in table
    assert "--reuse" in table


@pytest.mark.parametrize(
    "saved_settings,named",
    [({"training.dropout": "0.2"}, "training.dropout: saved 0.2, expected 0.1"), ({"system.seed": "3"}, "system.seed")],
)
def test_reuse_refuses_a_model_trained_otherwise(compare_systems, tmp_path, monkeypatch, saved_settings, named):
    """A saved model from another config, seed, data or budget is named, not scored as the variant."""
    corpus = tmp_path / "corpus"
    (tmp_path / "a.cfg").write_text(CONFIG, encoding="utf8")
    models = tmp_path / "models"
    settings = {**compare_systems.train_settings([], corpus, 10, 0), **saved_settings}
    saved_model(compare_systems, models, "old_seed0", settings)
    monkeypatch.setattr(compare_systems, "train", lambda *args: pytest.fail("must not train"))
    with pytest.raises(SystemExit, match=f"--reuse: .*old_seed0.* was not trained as variant 'old'.*{named}"):
        run_main(compare_systems, corpus, tmp_path / "out", [f"old={tmp_path / 'a.cfg'}"], models, seeds=(0,))
