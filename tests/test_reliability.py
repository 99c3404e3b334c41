"""Safe loading: no component unpickles data from a pipeline directory.

Weights are msgpack (Thinc) or safetensors (the LLM tagger), settings JSON. A pickle
planted in any file a component reads makes spacy.load refuse with an error; one planted
under a name a library would fall back to (a torch .bin beside or instead of the
safetensors) is ignored or refused by name; and the pickle never runs.
"""

import os
import pickle
import re
import shutil

import pytest
import spacy
import srsly

from .pipelines import PIPELINES, TEXTS, snapshots

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Payload:
    """Unpickling this runs code: it creates the file named by `marker`."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def plant(path, marker) -> None:
    """Write a pickle that runs code into `path`: a torch checkpoint for .bin/.pt files
    (what a torch loader would read), else a plain pickle."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".bin", ".pt") and _has_torch():
        import torch

        torch.save({"weight": _Payload(marker)}, str(path))
    else:
        path.write_bytes(pickle.dumps(_Payload(marker)))


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture
def copy_of(pipelines, tmp_path):
    """A fresh copy of a saved test pipeline, to tamper with."""

    def copy(name):
        return shutil.copytree(pipelines.path(name), tmp_path / name)

    return copy


# Files a component (or spaCy for it) reads when it loads.
READ_FILES = [
    ("tagger_softmax", "bioner_tagger/model"),
    ("tagger_softmax", "bioner_tagger/cfg"),
    ("tagger_softmax", "vocab/strings.json"),
    ("tagger_softmax", "vocab/vectors"),
    ("tagger_crf", "bioner_tagger/model"),
    ("spans", "bioner_spans/model"),
    ("spans", "bioner_spans/cfg"),
    ("relations", "bioner_relations/model"),
    ("relations", "bioner_relations/cfg"),
    ("llm", "bioner_llm_tagger/cfg"),
    ("llm", "bioner_llm_tagger/model/base.json"),
    ("llm", "bioner_llm_tagger/model/head.safetensors"),
    ("llm", "bioner_llm_tagger/model/adapter/adapter_model.safetensors"),
    ("llm", "bioner_llm_tagger/model/adapter/adapter_config.json"),
    ("llm", "bioner_llm_tagger/model/base/model.safetensors"),
    ("llm", "bioner_llm_tagger/model/tokenizer/tokenizer.json"),
    ("ensemble", "ensemble_meta/cfg"),
    ("ensemble", "ensemble_meta/filter/textcat/model"),
    ("ensemble", "ensemble_union/cfg"),
    ("ensemble", "entity_ruler/patterns.jsonl"),
]


@pytest.mark.parametrize("name,target", READ_FILES, ids=[f"{n}:{t}" for n, t in READ_FILES])
def test_a_pickle_in_a_file_a_component_reads_is_refused(copy_of, tmp_path, name, target):
    pipeline = copy_of(name)
    marker = tmp_path / "pwned"
    plant(pipeline / target, marker)
    with pytest.raises(Exception):
        spacy.load(pipeline)
    assert not marker.exists()


# (safetensors file, the torch checkpoint a loader could fall back to without it, what
# the error names)
FALLBACKS = [
    ("model/adapter/adapter_model.safetensors", "model/adapter/adapter_model.bin", "adapter/adapter_model.safetensors"),
    ("model/head.safetensors", "model/head.bin", "head.safetensors"),
    ("model/base/model.safetensors", "model/base/pytorch_model.bin", "base/*.safetensors"),
]


@pytest.mark.parametrize("safetensors,checkpoint,named", FALLBACKS, ids=[s for s, _, _ in FALLBACKS])
def test_a_torch_checkpoint_instead_of_safetensors_is_refused_by_name(
    copy_of, tmp_path, safetensors, checkpoint, named
):
    pipeline = copy_of("llm")
    marker = tmp_path / "pwned"
    (pipeline / "bioner_llm_tagger" / safetensors).unlink()
    plant(pipeline / "bioner_llm_tagger" / checkpoint, marker)
    with pytest.raises(FileNotFoundError, match=re.escape(f"No {named} in")):
        spacy.load(pipeline)
    assert not marker.exists()


# Pickles under names that libraries know, beside the files that are read.
EXTRA_FILES = {
    "tagger_softmax": ["bioner_tagger/model.pkl", "model.pickle", "bioner_tagger/pytorch_model.bin"],
    "tagger_crf": ["bioner_tagger/weights.pkl"],
    "spans": ["bioner_spans/model.pkl", "bioner_spans/pytorch_model.bin"],
    "relations": ["bioner_relations/model.pkl", "bioner_relations/pytorch_model.bin"],
    "llm": [
        "bioner_llm_tagger/model/adapter/adapter_model.bin",
        "bioner_llm_tagger/model/base/pytorch_model.bin",
        "bioner_llm_tagger/model/head.bin",
        "bioner_llm_tagger/model/tokenizer/tokenizer.pkl",
        "bioner_llm_tagger/model.pkl",
    ],
    "ensemble": ["ensemble_meta/filter/textcat/model.pkl", "ensemble_meta/model.pkl", "tagger_crf/pytorch_model.bin"],
}


@pytest.mark.parametrize("name", PIPELINES)
def test_extra_pickle_files_in_a_pipeline_are_ignored(pipelines, copy_of, tmp_path, name):
    pipeline = copy_of(name)
    marker = tmp_path / "pwned"
    for extra in EXTRA_FILES[name]:
        plant(pipeline / extra, marker)
    loaded = spacy.load(pipeline)
    assert snapshots(loaded.pipe(TEXTS)) == snapshots(pipelines.loaded(name).pipe(TEXTS))
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickle_in_the_transformer_weights_is_refused(tmp_path):
    """A tagger on a transformer (spacy-transformers) keeps the encoder's weights as a
    torch checkpoint inside the `transformer` component's msgpack; torch >= 2.6 loads
    those with weights_only, so a pickle there is refused."""
    pytest.importorskip("spacy_transformers")
    from .test_transformer import TINY_WINDOWS, make_examples, make_nlp, write_tiny_bert

    nlp = make_nlp(write_tiny_bert(tmp_path / "tiny-bert"), **TINY_WINDOWS)
    nlp.initialize(lambda: make_examples(nlp))
    nlp.to_disk(tmp_path / "pipeline")
    weights = tmp_path / "pipeline" / "transformer" / "model"
    marker = tmp_path / "pwned"
    msg = srsly.msgpack_loads(weights.read_bytes())
    planted = 0
    for node_shims in msg["shims"]:
        for i, shim_bytes in enumerate(node_shims):
            shim = srsly.msgpack_loads(shim_bytes)
            shim["state"] = pickle.dumps(_Payload(marker))
            node_shims[i] = srsly.msgpack_dumps(shim)
            planted += 1
    assert planted
    weights.write_bytes(srsly.msgpack_dumps(msg))
    with pytest.raises(Exception, match="(?i)weights.only|unpickl"):
        spacy.load(tmp_path / "pipeline")
    assert not marker.exists()
