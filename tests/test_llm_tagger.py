"""bioner_llm_tagger (VANER) with a tiny random Llama model built in the test."""

import shutil

import numpy
import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example
from thinc.api import Adam

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("safetensors")

from spacy_bioner.datasets import mark  # noqa: E402
from spacy_bioner.llm.backbone import load_backbone  # noqa: E402
from spacy_bioner.llm.instructions import (  # noqa: E402
    BEGIN,
    IGNORE,
    OUTSIDE,
    Instance,
    InstructionEncoder,
    gather_word_scores,
    instruction,
    window_bounds,
)
from spacy_bioner.llm.model import build_llm_tagger_model, pad_batch  # noqa: E402

from .llm_helpers import build_tiny_llm, llm_config  # noqa: E402
from .util import make_examples  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tiny model's operations are too small for threads; on a busy machine idle
    threads spinning at barriers make them 40 times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory):
    return build_tiny_llm(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="module")
def tokenizer(tiny_llm):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_llm))


def make_nlp(path, **settings):
    nlp = spacy.blank("en")
    nlp.add_pipe("bioner_llm_tagger", config=llm_config(path, **settings))
    return nlp


@pytest.fixture(scope="module")
def trained(tiny_llm):
    """A pipeline initialized and updated a few times on the sentences of tests/util.py."""
    nlp = make_nlp(tiny_llm, dataset="BC5CDR")
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.01)
    for _ in range(3):
        nlp.update(examples, sgd=optimizer)
    return nlp


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_first_position_sees_last_token_only_when_bidirectional(tiny_llm, implementation, bidirectional):
    model = build_llm_tagger_model(
        str(tiny_llm), device="cpu", attn_implementation=implementation, bidirectional=bidirectional, lora_r=4
    )
    model.initialize()
    first = model.predict(pad_batch([[1, 10, 11, 12, 13]], 3))
    changed = model.predict(pad_batch([[1, 10, 11, 12, 40]], 3))
    assert numpy.allclose(first[0, :4], changed[0, :4], atol=1e-6) != bidirectional
    assert not numpy.allclose(first[0, 4], changed[0, 4])


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_padding_is_never_attended(tiny_llm, implementation):
    model = build_llm_tagger_model(str(tiny_llm), device="cpu", attn_implementation=implementation, lora_r=4)
    model.initialize()
    alone = model.predict(pad_batch([[1, 10, 11, 12]], 3))
    padded = model.predict(pad_batch([[1, 10, 11, 12], [1, 10, 11, 12, 13, 14, 15]], 3))
    assert numpy.allclose(alone[0], padded[0, :4], atol=1e-5)


def test_instruction_template_and_adapt_mode():
    template = "If any {entity_type} entity is mentioned in the {dataset} input, extract it. ##input: "
    assert instruction(template, "Disease", "NCBI-disease") == (
        "If any Disease entity is mentioned in the NCBI-disease input, extract it. ##input: "
    )
    assert (
        instruction(template, "Disease", None)
        == "If any Disease entity is mentioned in the input, extract it. ##input: "
    )
    with pytest.raises(ValueError, match="entity_type"):
        instruction("Extract {dataset} entities:", "Disease", None)


def test_labels_on_first_sub_token_and_none_on_the_instruction(tokenizer):
    encoder = InstructionEncoder(tokenizer, "If any {entity_type} entity is mentioned in the {dataset} input ##input: ")
    words = ["Cisplatin", "induced", "nephrotoxicity", "."]
    pieces = encoder.word_pieces(words, [True, True, False, False])
    assert len(pieces[2]) > 1, "the test needs a word split into several sub-tokens"
    labels = [BEGIN, OUTSIDE, BEGIN, OUTSIDE]
    (window,) = encoder.encode([Instance(words, [True, True, False, False], "Disease", "BC5CDR", labels)])
    prefix = encoder.prefix("Disease", "BC5CDR")
    assert window.input_ids[: len(prefix)] == prefix
    assert prefix[0] == tokenizer.bos_token_id
    assert "Disease" in tokenizer.decode(prefix) and "BC5CDR" in tokenizer.decode(prefix)
    assert all(label == IGNORE for label in window.labels[: len(prefix)])
    assert [window.labels[p] for p in window.first_pieces] == labels
    labelled = [i for i, label in enumerate(window.labels) if label != IGNORE]
    assert labelled == window.first_pieces
    start = window.first_pieces[2]
    assert window.input_ids[start : start + len(pieces[2])] == pieces[2]
    assert window.labels[start + 1 : start + len(pieces[2])] == [IGNORE] * (len(pieces[2]) - 1)


def test_words_are_tokenized_as_in_running_text(tokenizer):
    encoder = InstructionEncoder(tokenizer, "{entity_type} ##input: ")
    words = ["Aspirin", "induced", "Reye", "syndrome"]
    pieces = encoder.word_pieces(words, [True] * 4)
    assert sum(pieces, []) == tokenizer(" ".join(words), add_special_tokens=False)["input_ids"]


def test_one_pass_per_entity_type_batched(trained, monkeypatch):
    tagger = trained.get_pipe("bioner_llm_tagger")
    seen, calls = [], []
    encode, make_batch = tagger.encoder.encode, tagger._batch
    monkeypatch.setattr(tagger.encoder, "encode", lambda instances: seen.extend(instances) or encode(instances))
    monkeypatch.setattr(tagger, "_batch", lambda windows: calls.append(make_batch(windows)) or calls[-1])
    docs = list(trained.pipe(["Aspirin caused nephrotoxicity .", "No events .", "Cisplatin and breast cancer ."]))
    assert sorted((inst.key, inst.entity_type) for inst in seen) == [
        (i, label) for i in range(3) for label in ("Chemical", "Disease")
    ]
    assert len(calls) == 1 and calls[0].input_ids.shape[0] == 6
    for doc in docs:
        assert "bioner_llm_tagger" in doc.spans
        assert len(doc.spans["bioner_llm_tagger"].attrs["scores"]) == len(doc.spans["bioner_llm_tagger"])


def test_marked_docs_use_their_dataset_and_types(trained, monkeypatch):
    tagger = trained.get_pipe("bioner_llm_tagger")
    seen = []
    encode = tagger.encoder.encode
    monkeypatch.setattr(tagger.encoder, "encode", lambda instances: seen.extend(instances) or encode(instances))
    doc = trained.make_doc("Aspirin caused nephrotoxicity .")
    mark(doc, "NCBI-disease", ["Disease"])
    trained(doc)
    assert [(inst.entity_type, inst.dataset) for inst in seen] == [("Disease", "NCBI-disease")]
    seen.clear()
    trained("Aspirin caused nephrotoxicity .")
    assert {inst.dataset for inst in seen} == {"BC5CDR"}


def test_evaluation_marks_docs_with_the_dataset_and_its_gold_types(trained, monkeypatch):
    """`bioner evaluate --dataset` on a single-type test set: the model knows Chemical and
    Disease, but only Disease is tagged, with that dataset's instruction."""
    from spacy_bioner.evaluation import predict_examples

    tagger = trained.get_pipe("bioner_llm_tagger")
    seen = []
    encode = tagger.encoder.encode
    monkeypatch.setattr(tagger.encoder, "encode", lambda instances: seen.extend(instances) or encode(instances))
    reference = Doc(
        trained.vocab, words=["Aspirin", "caused", "nephrotoxicity", "."], ents=["O", "O", "B-Disease", "O"]
    )
    examples = predict_examples(trained, [reference], dataset="NCBI-disease")
    assert [(inst.entity_type, inst.dataset) for inst in seen] == [("Disease", "NCBI-disease")]
    assert {span.label_ for span in examples[0].predicted.spans["bioner_llm_tagger"]} <= {"Disease"}
    seen.clear()
    predict_examples(trained, [reference])
    assert sorted(inst.entity_type for inst in seen) == ["Chemical", "Disease"]


def test_adapt_mode_leaves_the_dataset_out(tiny_llm):
    nlp = make_nlp(tiny_llm, dataset="BC5CDR", instruction_mode="adapt")
    tagger = nlp.get_pipe("bioner_llm_tagger")
    doc = nlp.make_doc("Aspirin .")
    mark(doc, "NCBI-disease", ["Disease"])
    assert tagger._dataset(doc) is None


def test_types_merge_into_spans_and_non_overlapping_ents(trained):
    tagger = trained.get_pipe("bioner_llm_tagger")
    doc = trained.make_doc("Aspirin induced Reye syndrome")
    predictions = [
        [
            ("Chemical", numpy.asarray([1, 2, 0, 0]), numpy.asarray([0.9, 0.9, 0.9, 0.9], dtype="f")),
            ("Disease", numpy.asarray([0, 1, 2, 2]), numpy.asarray([0.6, 0.6, 0.6, 0.6], dtype="f")),
        ]
    ]
    tagger.set_annotations([doc], predictions)
    spans = {(s.start, s.end, s.label_) for s in doc.spans["bioner_llm_tagger"]}
    assert spans == {(0, 2, "Chemical"), (1, 4, "Disease")}
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(0, 2, "Chemical")]


def test_window_bounds_cover_every_word_within_budget():
    counts = [3, 1, 2, 5, 1, 1, 4, 2, 2, 1] * 20
    bounds = window_bounds(counts, budget=12, overlap=3)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(counts)
    for (start, end), (next_start, _) in zip(bounds, bounds[1:]):
        assert start < next_start <= end
    assert all(sum(counts[s:e]) <= 12 for s, e in bounds)
    assert window_bounds([], 12, 3) == []
    assert window_bounds([20, 1], 12, 3) == [(0, 1), (1, 2)]


def test_a_1000_token_doc_is_windowed_not_truncated(tiny_llm):
    nlp = make_nlp(tiny_llm, model={"max_length": 48})
    words = (["Aspirin", "induced", "nephrotoxicity", "in", "patients", "."] * 167)[:1000]
    reference = Doc(nlp.vocab, words=words)
    reference.ents = [reference.char_span(0, 7, label="Chemical")]
    example = Example(Doc(nlp.vocab, words=words), reference)
    nlp.initialize(lambda: [example])
    tagger = nlp.get_pipe("bioner_llm_tagger")
    instances = tagger._gold_instances([example])
    windows = tagger.encoder.encode(instances)
    assert len(windows) > 20
    assert max(len(w.input_ids) for w in windows) <= 48
    covered = {w.word_start + i for w in windows for i in range(len(w.first_pieces))}
    assert covered == set(range(1000))
    scores = [numpy.full((len(w.input_ids), 3), float(k), dtype="f") for k, w in enumerate(windows)]
    (word_scores,) = gather_word_scores(windows, scores, [1000])
    assert word_scores.shape == (1000, 3)
    losses = nlp.update([example], sgd=Adam(0.001))
    assert losses["bioner_llm_tagger"] > 0
    doc = nlp(reference.text)
    assert len(doc) == 1000
    assert all(span.end <= 1000 for span in doc.spans["bioner_llm_tagger"])


def test_update_trains_adapters_and_head_only(tiny_llm):
    nlp = make_nlp(tiny_llm)
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    module = nlp.get_pipe("bioner_llm_tagger").model.shims[0]._model
    before = {name: p.detach().clone() for name, p in module.named_parameters()}
    optimizer = Adam(0.01)
    first = nlp.update(examples, sgd=optimizer)["bioner_llm_tagger"]
    for _ in range(15):
        last = nlp.update(examples, sgd=optimizer)["bioner_llm_tagger"]
    assert last < first * 0.7
    changed = {name for name, p in module.named_parameters() if not torch.allclose(before[name], p.detach())}
    assert changed and all("lora_" in name or name.startswith("head.") for name in changed)
    assert any(name.startswith("head.") for name in changed)


def test_unknown_entity_type_in_data_is_an_error(tiny_llm):
    nlp = make_nlp(tiny_llm)
    examples = make_examples(nlp)
    with pytest.raises(ValueError, match="'Chemical'"):
        nlp.get_pipe("bioner_llm_tagger").initialize(lambda: examples, nlp=nlp, labels=["Disease"])


def _outputs(nlp, texts):
    tagger = nlp.get_pipe("bioner_llm_tagger")
    docs = [nlp.make_doc(text) for text in texts]
    return [[(t, p.tolist(), c.tolist()) for t, p, c in per_doc] for per_doc in tagger.predict(docs)]


TEXTS = ["Aspirin induced Reye syndrome in children .", "Cisplatin causes acute kidney injury ."]


def _saved_files(path):
    return {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}


def test_save_and_load_without_packing_needs_the_base(tiny_llm, tmp_path):
    base = shutil.copytree(tiny_llm, tmp_path / "base_model")
    nlp = make_nlp(base, dataset="BC5CDR")
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    nlp.update(examples, sgd=Adam(0.01))
    nlp.to_disk(tmp_path / "pipeline")
    files = _saved_files(tmp_path / "pipeline" / "bioner_llm_tagger")
    assert "model/head.safetensors" in files and "model/adapter/adapter_model.safetensors" in files
    assert "model/tokenizer/tokenizer.json" in files and "model/base.json" in files
    assert not any(f.startswith("model/base/") for f in files)
    assert not any(f.endswith((".bin", ".pt", ".pkl", ".pickle")) for f in files)
    loaded = spacy.load(tmp_path / "pipeline")
    assert _outputs(loaded, TEXTS) == _outputs(nlp, TEXTS)
    shutil.rmtree(base)
    with pytest.raises(FileNotFoundError, match=str(base)):
        spacy.load(tmp_path / "pipeline")


def test_save_and_load_with_packed_base_works_without_the_source(tiny_llm, tmp_path):
    base = shutil.copytree(tiny_llm, tmp_path / "base_model")
    nlp = make_nlp(base, pack_base_model=True)
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    nlp.update(examples, sgd=Adam(0.01))
    nlp.to_disk(tmp_path / "pipeline")
    files = _saved_files(tmp_path / "pipeline" / "bioner_llm_tagger")
    assert {"model/base/config.json", "model/base/model.safetensors"} <= files
    expected = _outputs(nlp, TEXTS)
    shutil.rmtree(base)
    loaded = spacy.load(tmp_path / "pipeline")
    assert _outputs(loaded, TEXTS) == expected
    tagger = loaded.get_pipe("bioner_llm_tagger")
    again = spacy.blank("en").add_pipe("bioner_llm_tagger", config=llm_config(base))
    again.from_bytes(tagger.to_bytes())
    assert again.labels == tagger.labels


def test_missing_weights_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere")):
        load_backbone(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "empty")):
        load_backbone(str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="model.gguf"):
        load_backbone(str(tmp_path), gguf_file="model.gguf")


def test_4bit_needs_cuda(tiny_llm):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="CUDA"):
        load_backbone(str(tiny_llm), load_in_4bit=True)


def test_multi_dataset_examples_are_instructed_per_dataset(tiny_llm):
    nlp = make_nlp(tiny_llm)
    examples = make_examples(nlp)
    for i, example in enumerate(examples):
        dataset, types = ("BC5CDR", ["Chemical", "Disease"]) if i % 2 else ("NCBI-disease", ["Disease"])
        for doc in (example.reference, example.predicted):
            mark(doc, dataset, types)
        if not i % 2:
            example.reference.ents = [e for e in example.reference.ents if e.label_ == "Disease"]
    nlp.initialize(lambda: examples)
    tagger = nlp.get_pipe("bioner_llm_tagger")
    assert tagger.cfg["datasets"] == ["BC5CDR", "NCBI-disease"]
    pairs = [(inst.key, inst.entity_type, inst.dataset) for inst in tagger._gold_instances(examples)]
    assert pairs == [
        (0, "Disease", "NCBI-disease"),
        (1, "Chemical", "BC5CDR"),
        (1, "Disease", "BC5CDR"),
        (2, "Disease", "NCBI-disease"),
        (3, "Chemical", "BC5CDR"),
        (3, "Disease", "BC5CDR"),
        (4, "Disease", "NCBI-disease"),
    ]


@pytest.mark.models
def test_smollm2_gguf_tags_two_sentences():
    """The real SmolLM2-135M GGUF from PyPI: loads, trains a step and tags two sentences."""
    from spacy_bioner.offline_models import ModelNotInstalled, model_paths

    pytest.importorskip("gguf")
    try:
        paths = model_paths()
    except ModelNotInstalled as err:
        pytest.skip(f"{err} (or: python scripts/install_models.py)")
    nlp = spacy.blank("en")
    model = {"name": paths["llm_dir"], "gguf_file": paths["llm_gguf_file"], "device": "cpu"}
    nlp.add_pipe("bioner_llm_tagger", config={"model": model, "dataset": "BC5CDR"})
    examples = make_examples(nlp)[:2]
    nlp.initialize(lambda: examples)
    tagger = nlp.get_pipe("bioner_llm_tagger")
    assert tagger.model.shims[0]._model.backbone.get_base_model().config.hidden_size == 576
    losses = nlp.update(examples, sgd=Adam(2e-4))
    assert losses["bioner_llm_tagger"] > 0
    docs = list(nlp.pipe(TEXTS))
    for doc, text in zip(docs, TEXTS):
        assert doc.text == text
        group = doc.spans["bioner_llm_tagger"]
        assert len(group.attrs["scores"]) == len(group)
        assert all(span.label_ in ("Chemical", "Disease") for span in group)
        assert all(0.0 <= score <= 1.0 for score in group.attrs["scores"])
