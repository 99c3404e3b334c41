"""bioner_tagger on a transformer through configs/tagger_trf.cfg: the listener path,
windowing of long documents, and spacy.load without the source model directory; and
configs/relations_trf.cfg and configs/spans_trf.cfg through one update and prediction.

The encoder is a tiny random BERT written into a temporary directory by the test (no
download); its 64 position embeddings make windowing necessary for long documents.
The `models` test loads the real MiniLM installed from PyPI instead.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, List, Tuple

import pytest

pytest.importorskip("spacy_transformers")
transformers = pytest.importorskip("transformers")

from spacy.language import Language  # noqa: E402
from spacy.tokens import Doc, Span  # noqa: E402
from spacy.training import Example  # noqa: E402
from spacy.util import load_config, load_model_from_config  # noqa: E402
from spacy_transformers.span_getters import get_doc_spans  # noqa: E402
from thinc.api import Adam, fix_random_seed  # noqa: E402

from spacy_bioner.offline_models import ModelNotInstalled, minilm_dir  # noqa: E402

CONFIGS = Path(__file__).parents[1] / "configs"
CONFIG = CONFIGS / "tagger_trf.cfg"
HIDDEN = 32
MAX_POSITIONS = 64
WINDOW, STRIDE = 16, 12
TINY_WINDOWS = {
    "components.transformer.model.get_spans.window": WINDOW,
    "components.transformer.model.get_spans.stride": STRIDE,
}
WORDS = (
    "the patient took was given a daily dose of for and with no history after . aspirin ibuprofen headache fever pain"
).split()
TRAIN = [
    ("the patient took aspirin for headache .", [(3, 4, "Chemical"), (5, 6, "Disease")]),
    ("aspirin was given for fever .", [(0, 1, "Chemical"), (4, 5, "Disease")]),
    ("the patient was given a daily dose of ibuprofen .", [(8, 9, "Chemical")]),
    ("no history of headache or fever .", [(3, 4, "Disease"), (5, 6, "Disease")]),
    ("a dose of aspirin after the pain .", [(3, 4, "Chemical"), (6, 7, "Disease")]),
    ("the patient was given a dose .", []),
    ("ibuprofen and aspirin for pain .", [(0, 1, "Chemical"), (2, 3, "Chemical"), (4, 5, "Disease")]),
    ("the patient with fever took a daily dose of aspirin .", [(3, 4, "Disease"), (9, 10, "Chemical")]),
]


def write_tiny_bert(path: Path) -> Path:
    """A random 2-layer BERT with a word-level WordPiece vocabulary, saved as an HF dir."""
    path.mkdir(parents=True)
    vocab = path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n", encoding="utf8")
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(vocab), model_max_length=MAX_POSITIONS)
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_POSITIONS,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    transformers.set_seed(0)
    transformers.BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def make_nlp(model_dir: Path, config_path: Path = CONFIG, **overrides: Any) -> Language:
    """The pipeline of a *_trf.cfg (default: tagger_trf.cfg) on the encoder in model_dir."""
    config = load_config(config_path, overrides={"paths.transformer": str(model_dir), **overrides}, interpolate=True)
    return load_model_from_config(config, auto_fill=True, validate=True)


def make_examples(nlp: Language, relations: bool = False) -> List[Example]:
    """TRAIN as examples; with `relations`, each first Chemical "treats" the first
    Disease of its sentence."""
    examples = []
    for text, ents in TRAIN:
        reference = Doc(nlp.vocab, words=text.split())
        reference.ents = [Span(reference, start, end, label=label) for start, end, label in ents]
        if relations:
            first = {ent.label_: ent for ent in reversed(reference.ents)}
            if {"Chemical", "Disease"} <= set(first):
                reference._.relations = [(first["Chemical"], first["Disease"], "treats")]
        examples.append(Example(nlp.make_doc(text), reference))
    return examples


def entities(doc: Doc) -> List[Tuple[int, int, str]]:
    return [(ent.start, ent.end, ent.label_) for ent in doc.ents]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return write_tiny_bert(tmp_path_factory.mktemp("trf") / "tiny-bert")


@pytest.fixture(scope="module")
def trained(model_dir: Path) -> Language:
    """The tagger trained through the listener until it tags the training set."""
    fix_random_seed(0)
    nlp = make_nlp(model_dir, **TINY_WINDOWS)
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    optimizer = Adam(1e-3)
    for _ in range(40):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    return nlp


def test_listener_width_is_inferred(trained: Language) -> None:
    tagger = trained.get_pipe("bioner_tagger")
    assert tagger.model.get_ref("tok2vec").get_ref("listener").get_dim("nO") == HIDDEN
    assert tagger.model.get_ref("output").get_dim("nI") == HIDDEN
    assert trained.get_pipe("transformer").listeners == [tagger.model.get_ref("tok2vec").get_ref("listener")]


def test_learns_through_listener(trained: Language) -> None:
    for text, ents in TRAIN:
        assert entities(trained(text)) == ents


def test_entity_after_600_tokens_is_tagged_in_a_window(trained: Language) -> None:
    filler = "the patient was given a dose .".split()
    words = (filler * 120)[:650] + ["aspirin", "for", "headache", "."] + filler * 30
    text = " ".join(words)
    doc = trained(text)
    assert len(doc) > 800
    assert entities(doc) == [(650, 651, "Chemical"), (652, 653, "Disease")]
    # The same pipeline reading the doc as one sequence gets only MAX_POSITIONS
    # wordpieces; the tokens after them have no encoding and are mis-tagged.
    transformer = trained.get_pipe("transformer").model
    strided = transformer.attrs["get_spans"]
    transformer.attrs["get_spans"] = get_doc_spans
    try:
        assert entities(trained(text)) != entities(doc)
    finally:
        transformer.attrs["get_spans"] = strided


def test_load_without_source_model_in_fresh_process(trained: Language, model_dir: Path, tmp_path: Path) -> None:
    texts = [text for text, _ in TRAIN[:4]] + ["ibuprofen for fever and headache after aspirin ."]
    expected = [[(*ent, score) for ent, score in zip(entities(doc), scores(doc))] for doc in trained.pipe(texts)]
    output = tmp_path / "pipeline"
    trained.to_disk(output)
    shutil.rmtree(model_dir)
    script = (
        "import json, sys, spacy\n"
        "nlp = spacy.load(sys.argv[1])\n"
        "docs = nlp.pipe(json.loads(sys.argv[2]))\n"
        "group = nlp.get_pipe('bioner_tagger').spans_key\n"
        "print(json.dumps([[[e.start, e.end, e.label_, s] for e, s in zip(d.ents, d.spans[group].attrs['scores'])]"
        " for d in docs]))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "no-cache")}
    result = subprocess.run(
        [sys.executable, "-c", script, str(output), json.dumps(texts)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert [[tuple(ent[:3]) for ent in doc] for doc in loaded] == [[ent[:3] for ent in doc] for doc in expected]
    for doc_loaded, doc_expected in zip(loaded, expected):
        assert [ent[3] for ent in doc_loaded] == pytest.approx([ent[3] for ent in doc_expected], abs=1e-5)


def scores(doc: Doc) -> List[float]:
    """Scores of doc.ents, looked up in the tagger's span group."""
    group = doc.spans["bioner_tagger"]
    by_span = {(span.start, span.end, span.label_): score for span, score in zip(group, group.attrs["scores"])}
    return [by_span[ent] for ent in entities(doc)]


@pytest.mark.parametrize(
    "config_name,component", [("relations_trf.cfg", "bioner_relations"), ("spans_trf.cfg", "bioner_spans")]
)
def test_trf_config_trains_and_predicts_through_listener(config_name: str, component: str, tmp_path: Path) -> None:
    model_dir = write_tiny_bert(tmp_path / "tiny-bert")
    fix_random_seed(0)
    nlp = make_nlp(model_dir, CONFIGS / config_name, **TINY_WINDOWS)
    assert nlp.pipe_names == ["transformer", component]
    examples = make_examples(nlp, relations=component == "bioner_relations")
    nlp.initialize(lambda: examples)
    pipe = nlp.get_pipe(component)
    listener = pipe.model.get_ref("tok2vec").get_ref("listener")
    assert nlp.get_pipe("transformer").listeners == [listener]
    assert listener.get_dim("nO") == HIDDEN
    encoder = next(shim for node in nlp.get_pipe("transformer").model.walk() for shim in node.shims)._model
    before = encoder.embeddings.word_embeddings.weight.detach().clone()
    optimizer = Adam(1e-3)
    for _ in range(2):  # the encoder's weights move from the second update on
        losses = nlp.update(examples, sgd=optimizer, drop=0.0)
        assert losses[component] > 0
    assert not (encoder.embeddings.word_embeddings.weight.detach() == before).all()  # gradient through the listener
    docs = list(nlp.pipe(text for text, _ in TRAIN))
    assert all(doc._.trf_data.tensors[-1].shape[-1] == HIDDEN for doc in docs)
    assert all(pipe.spans_key in doc.spans for doc in docs)
    if component == "bioner_relations":
        assert all(isinstance(doc._.relations, list) for doc in docs)


@pytest.mark.models
def test_minilm_from_pypi_tags_two_sentences() -> None:
    try:
        path = minilm_dir()
    except ModelNotInstalled as err:
        pytest.skip(f"{err} (or: spacy project run models)")
    fix_random_seed(0)
    nlp = make_nlp(path)
    examples = make_examples(nlp)[:2]
    nlp.initialize(lambda: examples)
    optimizer = Adam(5e-4)
    for _ in range(15):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    docs = list(nlp.pipe([eg.reference.text for eg in examples]))
    assert docs[0]._.trf_data.tensors[-1].shape[-1] == 384
    assert [entities(doc) for doc in docs] == [ents for _, ents in TRAIN[:2]]


def test_ensemble_members_share_one_encoder(tmp_path: Path) -> None:
    """configs/ensemble_members_trf.cfg: three member heads listen to one transformer,
    all of them train it, and each writes only its own span group."""
    model_dir = write_tiny_bert(tmp_path / "tiny-bert")  # the module's copy is removed by a load test
    fix_random_seed(0)
    nlp = make_nlp(model_dir, CONFIGS / "ensemble_members_trf.cfg", **TINY_WINDOWS, **{"paths.dev": "dev.spacy"})
    members = ["tagger_softmax", "tagger_crf", "spans"]
    assert nlp.pipe_names == ["transformer", *members]
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    assert len(nlp.get_pipe("transformer").listeners) == len(members)
    encoder = next(shim for node in nlp.get_pipe("transformer").model.walk() for shim in node.shims)._model
    before = encoder.embeddings.word_embeddings.weight.detach().clone()
    optimizer = Adam(1e-3)
    for _ in range(2):
        losses = nlp.update(examples, sgd=optimizer, drop=0.0)
        assert all(losses[name] > 0 for name in members)
    assert not (encoder.embeddings.word_embeddings.weight.detach() == before).all()
    for doc in nlp.pipe(text for text, _ in TRAIN):
        assert set(members) <= set(doc.spans)
        assert doc.ents == ()  # members never write doc.ents: the ensembler does
