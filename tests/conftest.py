import os
import random
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def pytest_addoption(parser) -> None:
    parser.addoption("--gpu", action="store_true", help="Run the whole suite on GPU 0 (also: BIONER_TEST_GPU=1).")


def on_gpu(config) -> bool:
    """Whether this run is the GPU tier: --gpu or BIONER_TEST_GPU=1."""
    return config.getoption("--gpu") or os.environ.get("BIONER_TEST_GPU", "") not in ("", "0")


def pytest_configure(config) -> None:
    """In the GPU tier every model is created on GPU 0 (spacy.require_gpu fails at once
    without one); CI runs on the CPU."""
    if on_gpu(config):
        spacy.require_gpu(0)


def pytest_collection_modifyitems(config, items) -> None:
    """`gpu` tests run only in the GPU tier; `forks` tests (worker processes, which
    cannot use a CUDA context made in the parent: see the README) only outside it."""
    gpu = on_gpu(config)
    skip_gpu = pytest.mark.skip(reason="needs the GPU tier: BIONER_TEST_GPU=1 or --gpu, on a machine with a GPU")
    skip_forks = pytest.mark.skip(reason="worker processes cannot use the CUDA context of the parent (GPU tier)")
    for item in items:
        if "gpu" in item.keywords and not gpu:
            item.add_marker(skip_gpu)
        if "forks" in item.keywords and gpu:
            item.add_marker(skip_forks)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"The shared corpora are expected at {SHARED_DATA} (../shared/data beside the repo)")
    return SHARED_DATA


def tiny_tok2vec(width: int = 32) -> dict:
    """A small CNN tok2vec config block, fast enough for unit tests."""
    return {
        "@architectures": "spacy.HashEmbedCNN.v2",
        "width": width,
        "depth": 1,
        "embed_size": 500,
        "window_size": 1,
        "maxout_pieces": 2,
        "subword_features": True,
        "pretrained_vectors": None,
    }


SENTENCES = [
    ("Aspirin induced Reye syndrome in children .", [(0, 1, "Chemical"), (2, 4, "Disease")]),
    ("Cisplatin causes acute kidney injury .", [(0, 1, "Chemical"), (2, 5, "Disease")]),
    ("No adverse events were seen .", []),
    ("Patients with breast cancer received tamoxifen daily .", [(2, 4, "Disease"), (5, 6, "Chemical")]),
    ("Haloperidol may trigger neuroleptic malignant syndrome .", [(0, 1, "Chemical"), (3, 6, "Disease")]),
]


def make_examples(nlp):
    examples = []
    for text, spans in SENTENCES:
        reference = Doc(nlp.vocab, words=text.split())
        reference.ents = [Span(reference, s, e, label=label) for s, e, label in spans]
        examples.append(Example(nlp.make_doc(text), reference))
    return examples


def make_nlp(output="softmax", scheme="welt", hidden_width=0, **config):
    nlp = spacy.blank("en")
    model = {"@architectures": "spacy_bioner.Tagger.v1", "output": output, "hidden_width": hidden_width, "tok2vec": tiny_tok2vec()}
    nlp.add_pipe("bioner_tagger", config={"model": model, "scheme": scheme, **config})
    return nlp


def train(nlp, examples, n_iter=40, seed=0):
    random.seed(seed)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(n_iter):
        random.shuffle(examples)
        nlp.update(examples, sgd=optimizer, drop=0.0)
    return nlp


@pytest.fixture(scope="session")
def tagger_model_dir(tmp_path_factory) -> str:
    """A tiny bioner_tagger pipeline trained on SENTENCES, saved to disk."""
    spacy.util.fix_random_seed(0)
    nlp = make_nlp()
    train(nlp, make_examples(nlp))
    path = tmp_path_factory.mktemp("tagger") / "model"
    nlp.to_disk(path)
    return str(path)


@pytest.fixture(scope="session")
def pipelines(tmp_path_factory):
    """Tiny trained pipelines of every component (tests/pipelines.py), built on first use."""
    from .pipelines import Pipelines

    return Pipelines(tmp_path_factory.mktemp("pipelines"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread while a module runs: the tiny LLM's operations are too small for
    threads, and on a busy machine idle threads spinning at barriers slow them down."""
    try:
        import torch
    except ImportError:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
