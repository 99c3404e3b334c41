"""Fixtures and hooks only; the helpers test modules import live in tests/util.py."""

import os
from pathlib import Path

import pytest
import spacy

from .util import make_examples, make_nlp, train

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
