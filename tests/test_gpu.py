"""GPU behaviour. The `gpu` tests run only in the GPU tier (BIONER_TEST_GPU=1 or --gpu,
which runs the whole suite on GPU 0); the others check, on any machine, what a GPU run
depends on: --gpu-id, worker processes refused with a GPU, the LLM's device."""

import numpy
import pytest
from thinc.api import get_current_ops, use_ops
from thinc.util import has_cupy_gpu
from typer.testing import CliRunner

from spacy_bioner.bio import tag_inventory
from spacy_bioner.bio_decoding import bio_constraints, pad, viterbi
from spacy_bioner.cli import app
from spacy_bioner.layers.crf import CRFTransitions, crf_loss, forward_backward
from spacy_bioner.llm import backbone

from .pipelines import PIPELINES, TEXTS, approx_floats, snapshots

runner = CliRunner()


def _annotate(model: str, tmp_path, *options: str):
    source = tmp_path / "in.txt"
    source.write_text("Aspirin induced Reye syndrome .\n", encoding="utf8")
    return runner.invoke(app, ["annotate", model, str(source), str(tmp_path / "out.jsonl"), *options])


@pytest.mark.parametrize("workers", [["--n-process", "2"], ["--dask", "local:2"]])
def test_annotate_refuses_worker_processes_on_a_gpu(tagger_model_dir, tmp_path, workers):
    result = _annotate(tagger_model_dir, tmp_path, "--gpu-id", "0", *workers)
    assert result.exit_code != 0
    assert "worker processes" in result.output and "--n-process 1" in result.output
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.skipif(has_cupy_gpu, reason="checks the error on a machine without a GPU")
@pytest.mark.parametrize("command", ["annotate", "evaluate"])
def test_gpu_id_without_a_gpu_is_one_clear_line(tagger_model_dir, tmp_path, command):
    if command == "annotate":
        result = _annotate(tagger_model_dir, tmp_path, "--gpu-id", "0")
    else:
        gold = tmp_path / "gold.tsv"
        gold.write_text("Aspirin\tB-Chemical\n.\tO\n", encoding="utf8")
        result = runner.invoke(app, ["evaluate", tagger_model_dir, str(gold), "--gpu-id", "0"])
    assert result.exit_code != 0
    assert "--gpu-id 0:" in result.output and "Traceback" not in result.output


def test_llm_auto_device_follows_spacy_gpu(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(backbone, "get_torch_default_device", lambda: torch.device("cuda:1"))
    assert backbone.resolve_device("auto") == "cuda:1"
    assert backbone.resolve_device("cpu") == "cpu"


@pytest.mark.gpu
def test_crf_on_the_device_matches_the_host():
    """Viterbi, forward-backward and the CRF loss give the same results on cupy arrays
    as on numpy ones (the tagger decodes on the host, training runs on the device)."""
    ops = get_current_ops()
    tags = tag_inventory(["A", "B"])
    rng = numpy.random.default_rng(0)
    emissions = [rng.normal(size=(length, len(tags))).astype("f") for length in (7, 1, 30, 12)]
    forbidden, forbidden_start, forbidden_end = bio_constraints(tags)
    transitions = rng.normal(size=(len(tags),) * 2).astype("f") + forbidden
    start = rng.normal(size=(len(tags),)).astype("f") + forbidden_start
    end = rng.normal(size=(len(tags),)).astype("f") + forbidden_end
    host = pad(numpy, emissions)
    device = pad(ops.xp, [ops.asarray2f(e) for e in emissions])
    args = (transitions, start, end)
    host_paths = viterbi(numpy, *host, *args)
    device_paths = viterbi(ops.xp, *device, *(ops.asarray(a) for a in args))
    for i, e in enumerate(emissions):
        assert ops.to_numpy(device_paths[i, : len(e)]).tolist() == host_paths[i, : len(e)].tolist()
    for h, d in zip(
        forward_backward(numpy, *host, *args), forward_backward(ops.xp, *device, *(ops.asarray(a) for a in args))
    ):
        numpy.testing.assert_allclose(ops.to_numpy(d), h, rtol=1e-4, atol=1e-5)
    gold = [rng.integers(-1, len(tags), len(e)).astype("i") for e in emissions]
    losses = []
    for layer_ops in ("numpy", ops.name):
        with use_ops(layer_ops):
            crf = CRFTransitions(len(tags))
        crf.initialize()
        loss, grads = crf_loss(crf, emissions, gold, forbidden, forbidden_start, forbidden_end)
        losses.append((loss, [crf.ops.to_numpy(g) for g in grads], crf.ops.to_numpy(crf.get_grad("transitions"))))
    (cpu_loss, cpu_grads, cpu_t), (gpu_loss, gpu_grads, gpu_t) = losses
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-4)
    for a, b in zip(gpu_grads, cpu_grads):
        numpy.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    numpy.testing.assert_allclose(gpu_t, cpu_t, rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("name", PIPELINES)
def test_every_pipeline_predicts_on_the_gpu_as_on_the_cpu(pipelines, name):
    """Each tiny pipeline, trained on the GPU, and its copy on the CPU (NumpyOps) give the
    same entities, scores (within 1e-3) and relations."""
    from spacy.util import load_model_from_config

    nlp = pipelines.trained(name)
    # serialized under the GPU's ops: the vocab's (empty) vectors table is a device array
    data = nlp.to_bytes()
    with use_ops("numpy"):  # the copy is built and predicts as in a CPU-only process
        cpu = load_model_from_config(nlp.config, auto_fill=True).from_bytes(data)
        expected = snapshots(cpu.pipe(TEXTS))
    assert snapshots(nlp.pipe(TEXTS)) == approx_floats(expected, abs=1e-3)
