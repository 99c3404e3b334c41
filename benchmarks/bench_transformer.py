"""spaCy's `ner` vs `bioner_tagger` (none, welt, crf) on the same transformer encoder.

    nice -n 10 python benchmarks/bench_transformer.py \
        [--datasets NCBI-disease BC5CDR] [--systems ...] [--steps 150] [--data ../shared/data/ner] \
        [--transformer assets/models/all-MiniLM-L6-v2] [--work /tmp/bioner_bench_trf] [--gpu-id 0]

Every system is trained by `spacy train` from configs/tagger_trf.cfg (for `ner` the
tagger is swapped for spaCy's transition-based `ner` on the same TransformerListener)
for the same fixed budget: `--steps` optimizer steps of 32 sentences, the learning rate
warming up over the first 10% of them and decaying linearly to 0 at the last, no model
selection (the last model is scored). The dev set only prints progress (first 200
sentences, at the first and last step). Test scores are strict (exact boundaries and
type); training time is the wall time of `spacy train`, initialization included (on a
shared machine it varies with the load). Speed is words per second of `nlp.pipe` over the
first 500 test texts, tokenization included, measured after all systems are trained,
taking the systems in turn three times (best pass kept), so every system meets the same
load; `--speed-only` re-times the models of an earlier run that way.
Writes benchmarks/results/transformer_<dataset>.{json,md}, keeping the rows of systems
not run this time when the budget is the same; data is converted to
DocBin under --work, never into the repository.
"""

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import spacy
import torch
from compare_systems import interleaved_speeds
from paths import display_command, display_path
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.util import load_config
from thinc.api import Config

from spacy_bioner.corpora import read_iob
from spacy_bioner.scoring import score_entities

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "tagger_trf.cfg"
RESULTS = ROOT / "benchmarks" / "results"
SYSTEMS: Dict[str, Dict[str, str]] = {
    "ner": {},
    "bioner_tagger none": {
        "components.bioner_tagger.scheme": "none",
        "components.bioner_tagger.model.output": "softmax",
    },
    "bioner_tagger welt": {
        "components.bioner_tagger.scheme": "welt",
        "components.bioner_tagger.model.output": "softmax",
    },
    "bioner_tagger crf": {"components.bioner_tagger.scheme": "none", "components.bioner_tagger.model.output": "crf"},
}
NER_COMPONENT = {
    "factory": "ner",
    "moves": None,
    "update_with_oracle_cut_size": 100,
    "incorrect_spans_key": None,
    "scorer": {"@scorers": "spacy.ner_scorer.v1"},
    "model": {
        "@architectures": "spacy.TransitionBasedParser.v2",
        "state_type": "ner",
        "extra_state_tokens": False,
        "hidden_width": 64,
        "maxout_pieces": 2,
        "use_upper": False,
        "nO": None,
    },
}


def convert(data_dir: Path, work: Path) -> Dict[str, Path]:
    """DocBins of train/devel/test (one Doc per sentence) under work."""
    work.mkdir(parents=True, exist_ok=True)
    nlp = spacy.blank("en")
    paths = {}
    for split in ("train", "devel", "test"):
        paths[split] = work / f"{split}.spacy"
        if not paths[split].exists():
            docs, _ = read_iob(data_dir / f"{split}.tsv", nlp.vocab)
            DocBin(docs=docs).to_disk(paths[split])
    return paths


def ner_config(path: Path) -> Path:
    """configs/tagger_trf.cfg with spaCy's `ner` in place of bioner_tagger (and
    without bioner_abbreviations, which reads the tagger's span group)."""
    config = load_config(CONFIG, interpolate=False)
    components = config["components"]
    tagger = components.pop("bioner_tagger")
    components.pop("bioner_abbreviations")
    components["ner"] = Config(NER_COMPONENT)
    components["ner"]["model"]["tok2vec"] = tagger["model"]["tok2vec"]
    config["nlp"]["pipeline"] = ["transformer", "ner"]
    config.to_disk(path)
    return path


def train(
    config: Path, output: Path, corpus: Dict[str, Path], args: argparse.Namespace, overrides: Dict[str, str]
) -> float:
    """Seconds `spacy train` takes for the fixed budget."""
    settings = {
        "paths.train": corpus["train"],
        "paths.dev": corpus["devel"],
        "paths.transformer": args.transformer,
        "training.max_steps": args.steps,
        "training.eval_frequency": args.steps,
        "training.optimizer.learn_rate.warmup_steps": max(1, args.steps // 10),
        "corpora.dev.limit": 200,
        **overrides,
    }
    command = [
        sys.executable,
        "-m",
        "spacy",
        "train",
        str(config),
        "--output",
        str(output),
        "--gpu-id",
        str(args.gpu_id),
    ]
    for key, value in settings.items():
        command += [f"--{key}", str(value)]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def evaluate(model: Path, test: Path) -> Dict[str, Any]:
    """Strict test P/R/F1 of the trained pipeline."""
    nlp = spacy.load(model)
    gold = list(DocBin().from_disk(test).get_docs(nlp.vocab))
    predicted = nlp.pipe(doc.text for doc in gold)
    scores = score_entities(Example(pred, ref) for pred, ref in zip(predicted, gold))
    return {"p": scores["ents_p"], "r": scores["ents_r"], "f": scores["ents_f"], "per_type": scores["ents_per_type"]}


def model_dir(work: Path, system: str) -> Path:
    return work / system.replace(" ", "-") / "model-last"


def markdown(dataset: str, rows: List[Dict[str, Any]], meta: Dict[str, Any]) -> str:
    lines = [
        f"# Transformer encoders on {dataset}",
        "",
        (
            f"Encoder `{meta['transformer']}`; budget {meta['steps']} steps x 32 sentences for every system "
            f"(warm-up {meta['warmup_steps']} steps, linear decay, last model scored); {meta['machine']}."
        ),
        "",
        "| system | P | R | F1 | train (s) | words/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['system']} | {row['p']:.2%} | {row['r']:.2%} | {row['f']:.2%} | "
            f"{row['train_seconds']:.0f} | {row['words_per_second']:.0f} |".replace("%", "")
        )
    lines += ["", f"Command: `{meta['command']}`"]
    if meta.get("speed_command"):
        lines.append(f"Speeds re-timed (all systems in turn) by: `{meta['speed_command']}`")
    lines.append("")
    return "\n".join(lines)


def previous_run(path: Path, steps: int) -> Dict[str, Any]:
    """The results of an earlier run with the same budget, if any."""
    if not path.exists():
        return {}
    results = json.loads(path.read_text(encoding="utf8"))
    return results if results["steps"] == steps else {}


def main(args: argparse.Namespace) -> None:
    if args.gpu_id >= 0:
        spacy.require_gpu(args.gpu_id)  # evaluation and speed on the GPU the systems trained on
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {
        "transformer": display_path(args.transformer) if Path(args.transformer).is_absolute() else args.transformer,
        "steps": args.steps,
        "warmup_steps": max(1, args.steps // 10),
        "machine": (
            f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
            + (f"GPU {args.gpu_id} ({torch.cuda.get_device_name(args.gpu_id)})" if args.gpu_id >= 0 else "CPU")
        ),
        "command": display_command(sys.argv, args.work),
    }
    for dataset in args.datasets:
        work = args.work / dataset
        corpus = convert(args.data / dataset, work)
        configs = {name: CONFIG for name in SYSTEMS}
        configs["ner"] = ner_config(work / "ner_trf.cfg")
        json_path = RESULTS / f"transformer_{dataset}.json"
        previous = previous_run(json_path, args.steps)
        rows = {row["system"]: row for row in previous.get("systems", [])}
        run_meta = (
            {**meta, "command": previous.get("command"), "speed_command": meta["command"]} if args.speed_only else meta
        )
        for name in [] if args.speed_only else args.systems:
            seconds = train(configs[name], model_dir(work, name).parent, corpus, args, SYSTEMS[name])
            rows[name] = {"system": name, "train_seconds": seconds, **evaluate(model_dir(work, name), corpus["test"])}
            print(json.dumps({k: v for k, v in rows[name].items() if k != "per_type"}), flush=True)
        texts = [doc.text for doc in DocBin().from_disk(corpus["test"]).get_docs(spacy.blank("en").vocab)][:500]
        speeds = interleaved_speeds({name: model_dir(work, name) for name in rows}, texts)
        for name, words_per_second in speeds.items():
            rows[name]["words_per_second"] = words_per_second
        print(json.dumps(speeds), flush=True)
        ordered = [rows[name] for name in SYSTEMS if name in rows]
        results = {"dataset": dataset, **run_meta, "systems": ordered}
        json_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf8")
        json_path.with_suffix(".md").write_text(markdown(dataset, ordered, run_meta), encoding="utf8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["NCBI-disease", "BC5CDR"])
    parser.add_argument("--systems", nargs="+", choices=list(SYSTEMS), default=list(SYSTEMS))
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ner")
    parser.add_argument("--transformer", default="assets/models/all-MiniLM-L6-v2")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bioner_bench_trf"))
    parser.add_argument("--gpu-id", type=int, default=-1, help="GPU for training, evaluation and speed (-1: the CPU).")
    parser.add_argument("--speed-only", action="store_true", help="Re-time the models of the last run; no training.")
    main(parser.parse_args())
