"""The Python jobs of benchmarks/gpu_check.sh (issue #18), one per call; each writes one
JSON result, so a job that fails or runs out of time leaves the others' results.

    python benchmarks/gpu_check.py prepare .device/data     # here: the corpora, as DocBins
    python benchmarks/gpu_check.py tagger RESULT.json --data .device/data --transformer DIR --gpu-id 0 --steps 300
    python benchmarks/gpu_check.py relations RESULT.json --data .device/data --transformer DIR --gpu-id 0 --steps 500
    python benchmarks/gpu_check.py llm RESULT.json --data .device/data --llm DIR --gpu-id 0 --steps 100

tagger: `bioner_tagger` (CRF) and spaCy `ner` on the transformer (configs/tagger_trf.cfg,
as benchmarks/bench_transformer.py builds them), a fixed step budget each, then words/s
of both over the NCBI-disease test sentences, batch 256, in turn, best of 3.
relations: configs/relations_trf.cfg on CoNLL04. llm: the VANER tagger
(configs/llm_tagger.cfg, no DBR) bidirectional and causal. Each training reports its
steps/s and the dev scores of its last model. With --gpu-id -1 everything runs on the
CPU, so the jobs can be tried here with tiny budgets.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import spacy
from spacy.tokens import DocBin

ROOT = Path(__file__).resolve().parents[1]
NCBI = ROOT.parent / "shared" / "data" / "ner" / "NCBI-disease"
CONLL04 = ROOT.parent / "shared" / "data" / "re" / "conll04"


def prepare(out: Path) -> None:
    """NCBI-disease (train/devel/test) and CoNLL04 (train/dev/test) as DocBins under `out`."""
    from spacy_bioner.corpora import read_iob, read_spert

    vocab = spacy.blank("en").vocab
    (out / "ncbi").mkdir(parents=True, exist_ok=True)
    (out / "conll04").mkdir(parents=True, exist_ok=True)
    for split in ("train", "devel", "test"):
        DocBin(docs=read_iob(NCBI / f"{split}.tsv", vocab)[0]).to_disk(out / "ncbi" / f"{split}.spacy")
    for split in ("train", "dev", "test"):
        docs = read_spert(CONLL04 / f"conll04_{split}.json", vocab, "bioner_relations")
        DocBin(docs=docs, store_user_data=True).to_disk(out / "conll04" / f"{split}.spacy")


def train(config: Path, output: Path, steps: int, gpu_id: int, overrides: Dict[str, Any]) -> Dict[str, Any]:
    """`spacy train` for `steps` steps; its steps/s (initialization included) and the dev
    scores of model-last. A failed training is reported, not raised."""
    command = [sys.executable, "-m", "spacy", "train", str(config), "--output", str(output), "--gpu-id", str(gpu_id)]
    settings = {"training.max_steps": steps, "training.eval_frequency": max(steps // 5, 1), **overrides}
    for key, value in settings.items():
        command += [f"--{key}", str(value)]
    start = time.perf_counter()
    done = subprocess.run(command)
    seconds = time.perf_counter() - start
    result: Dict[str, Any] = {
        "steps": steps,
        "seconds": round(seconds, 1),
        "steps_per_second": round(steps / seconds, 2),
    }
    meta = output / "model-last" / "meta.json"
    if done.returncode or not meta.exists():
        return {**result, "error": f"spacy train exited with {done.returncode}"}
    performance = json.loads(meta.read_text(encoding="utf8")).get("performance", {})
    result["dev"] = {k: v for k, v in performance.items() if isinstance(v, float)}
    print(json.dumps({"trained": str(output), **result}), flush=True)
    return result


def tagger_job(args: argparse.Namespace) -> Dict[str, Any]:
    from bench_transformer import CONFIG, SYSTEMS, ner_config
    from compare_systems import interleaved_speeds

    data = args.data / "ncbi"
    common = {
        "paths.train": data / "train.spacy",
        "paths.dev": data / "devel.spacy",
        "paths.transformer": args.transformer,
        "corpora.dev.limit": 200,
        "training.optimizer.learn_rate.warmup_steps": max(1, args.steps // 10),
    }
    systems = {
        "bioner_tagger crf": (CONFIG, SYSTEMS["bioner_tagger crf"]),
        "ner": (ner_config(args.work / "ner_trf.cfg"), {}),
    }
    results: Dict[str, Any] = {}
    for name, (config, overrides) in systems.items():
        results[name] = train(
            config, args.work / name.replace(" ", "-"), args.steps, args.gpu_id, {**common, **overrides}
        )
    trained = {
        name: args.work / name.replace(" ", "-") / "model-last" for name in systems if "error" not in results[name]
    }
    if args.gpu_id >= 0:
        spacy.require_gpu(args.gpu_id)
    texts = [doc.text for doc in DocBin().from_disk(data / "test.spacy").get_docs(spacy.blank("en").vocab)]
    speeds = interleaved_speeds(trained, texts, rounds=3, batch_size=256)
    for name, words_per_second in speeds.items():
        results[name]["words_per_second"] = round(words_per_second)
    return {"sentences": len(texts), "batch_size": 256, "systems": results}


def relations_job(args: argparse.Namespace) -> Dict[str, Any]:
    data = args.data / "conll04"
    overrides = {
        "paths.train": data / "train.spacy",
        "paths.dev": data / "dev.spacy",
        "paths.transformer": args.transformer,
        "training.optimizer.learn_rate.warmup_steps": max(1, args.steps // 10),
    }
    return train(ROOT / "configs" / "relations_trf.cfg", args.work / "relations", args.steps, args.gpu_id, overrides)


def llm_job(args: argparse.Namespace) -> Dict[str, Any]:
    if not (args.llm / "config.json").is_file():
        return {"skipped": f"no SmolLM2 model directory at {args.llm}"}
    data = args.data / "ncbi"
    common = {
        "paths.train": json.dumps({"NCBI-disease": str(data / "train.spacy")}),
        "paths.dev": json.dumps({"NCBI-disease": str(data / "devel.spacy")}),
        "paths.llm": args.llm,
        "corpora.dev.limit": 200,
        "components.bioner_llm_tagger.dbr_mode": "none",
        "components.bioner_llm_tagger.pack_base_model": "false",
    }
    return {
        name: train(
            ROOT / "configs" / "llm_tagger.cfg",
            args.work / f"llm-{name}",
            args.steps,
            args.gpu_id,
            {**common, "components.bioner_llm_tagger.model.bidirectional": str(name == "bidirectional").lower()},
        )
        for name in ("bidirectional", "causal")
    }


JOBS = {"tagger": tagger_job, "relations": relations_job, "llm": llm_job}


def main(argv: List[str]) -> None:
    if argv[:1] == ["prepare"]:
        prepare(Path(argv[1]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("job", choices=list(JOBS))
    parser.add_argument("result", type=Path)
    parser.add_argument("--data", type=Path, default=ROOT / ".device" / "data")
    parser.add_argument("--transformer", default="/tmp/minilm")
    parser.add_argument("--llm", type=Path, default=ROOT / ".device" / "smollm2")
    parser.add_argument("--gpu-id", type=int, default=0)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu_check"))
    args = parser.parse_args(argv)
    args.work = args.work / args.job
    args.work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result = JOBS[args.job](args)
    result["job_seconds"] = round(time.perf_counter() - start, 1)
    args.result.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
