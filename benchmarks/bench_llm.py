"""VANER (`bioner_llm_tagger`, SmolLM2-135M + LoRA) against `bioner_tagger` + MiniLM on CPU,
with the same training budget: N sentences per dataset x M epochs, 8 sentences per update.

    python benchmarks/bench_llm.py --datasets NCBI-disease --train-sentences 384 --test-sentences 200 --name cpu_ncbi
    python benchmarks/bench_llm.py --datasets NCBI-disease BC5CDR --rows multi --train-sentences 384 --name cpu_multi

Rows (strict test P/R/F1 and words/second of inference):
- per dataset: bidirectional vs causal attention, each without DBR (NCBI-disease also
  with DBR and with random DBR, the paper's ablation);
- multi-dataset instruction tuning: one model on the union of the datasets' training
  sentences (spacy_bioner.MultiCorpus.v1), scored on each test set;
- baseline: bioner_tagger on MiniLM-L6 (configs/tagger_trf.cfg with the softmax output and
  WeLT weights, the config's default when the results were made), same sentences and updates.
Both systems use AdamW (Thinc Adam, decoupled weight decay 0.01) at a constant 2e-4.
SmolLM2 is read from its GGUF once and kept as a Hugging Face directory under --work.
Writes benchmarks/results/llm_<name>.md and .json after every row.
"""

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Dict, List

import spacy
import torch
from paths import display_path
from spacy.training import Example
from spacy.util import load_model_from_config, minibatch
from thinc.api import Adam, Config

from spacy_bioner.corpora.multi import create_multi_corpus_reader
from spacy_bioner.llm.backbone import load_backbone, load_tokenizer
from spacy_bioner.offline_models import minilm_dir, model_paths
from spacy_bioner.scoring import score_entities

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
KB = DATA / "kb" / "combined_entity_names.tsv"
BATCH_SIZE = 8


def optimizer() -> Adam:
    return Adam(2e-4, L2=0.01, L2_is_weight_decay=True, grad_clip=1.0)


def smollm2_dir(work: Path) -> Path:
    """SmolLM2-135M de-quantized from its GGUF once, saved as a model directory."""
    target = work / "smollm2-135m"
    if not (target / "config.json").is_file():
        paths = model_paths()
        load_backbone(paths["llm_dir"], paths["llm_gguf_file"]).save_pretrained(str(target), safe_serialization=True)
        load_tokenizer(paths["llm_dir"], paths["llm_gguf_file"]).save_pretrained(str(target))
    return target


def read(nlp, split: str, datasets: List[str], limit: int) -> List[Example]:
    paths = {name: str(DATA / "ner" / name / f"{split}.tsv") for name in datasets}
    return list(create_multi_corpus_reader(paths, limit=limit)(nlp))


def train(nlp, examples: List[Example], epochs: int, seed: int) -> float:
    """Seconds spent updating; the examples are shuffled each epoch."""
    rng = random.Random(seed)
    sgd = optimizer()
    start = time.perf_counter()
    for _ in range(epochs):
        examples = list(examples)
        rng.shuffle(examples)
        for batch in minibatch(examples, BATCH_SIZE):
            nlp.update(batch, sgd=sgd)
    return time.perf_counter() - start


def evaluate(nlp, examples: List[Example]) -> Dict[str, float]:
    start = time.perf_counter()
    docs = list(nlp.pipe(eg.predicted.copy() for eg in examples))
    seconds = time.perf_counter() - start
    scores = score_entities(Example(doc, eg.reference) for doc, eg in zip(docs, examples))
    n_words = sum(len(doc) for doc in docs)
    return {"p": scores["ents_p"], "r": scores["ents_r"], "f": scores["ents_f"], "words_per_second": n_words / seconds}


def llm_pipeline(backbone: Path, settings: dict) -> spacy.Language:
    nlp = spacy.blank("en")
    config = {
        "model": {"name": str(backbone), "device": "cpu", **settings.pop("model", {})},
        "batch_size": 16,
        **settings,
    }
    nlp.add_pipe("bioner_llm_tagger", config=config)
    return nlp


def baseline_pipeline() -> spacy.Language:
    overrides = {
        "paths.transformer": str(minilm_dir()),
        "components.bioner_tagger.model.output": "softmax",
        "components.bioner_tagger.scheme": "welt",
    }
    config = Config().from_disk(ROOT / "configs" / "tagger_trf.cfg", overrides=overrides)
    return load_model_from_config(config, auto_fill=True)


def run_row(results: dict, name: str, make_nlp, train_sets: List[str], test_sets: List[str], args) -> None:
    nlp = make_nlp()
    train_examples = read(nlp, "train", train_sets, args.train_sentences)
    nlp.initialize(lambda: train_examples)
    seconds = train(nlp, train_examples, args.epochs, args.seed)
    for dataset in test_sets:
        row = evaluate(nlp, read(nlp, "test", [dataset], args.test_sentences))
        row.update(system=name, train=" + ".join(train_sets), test=dataset, train_seconds=round(seconds, 1))
        results["rows"].append(row)
        print(json.dumps(row), flush=True)
    write(results, args)


def write(results: dict, args) -> None:
    out = args.output / f"llm_{args.name}"
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf8")
    lines = [
        f"Budget: {args.train_sentences} training sentences per dataset x {args.epochs} epoch(s), "
        f"{BATCH_SIZE} sentences per update; first {args.test_sentences} test sentences; "
        f"CPU, {args.threads} torch thread(s); {results['machine']}.",
        "",
        "| system | trained on | test | P | R | F1 | words/s | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['system']} | {row['train']} | {row['test']} | {100 * row['p']:.1f} | {100 * row['r']:.1f} | "
            f"{100 * row['f']:.1f} | {row['words_per_second']:.0f} | {row['train_seconds']:.0f} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf8")


def main(args) -> None:
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    args.output.mkdir(parents=True, exist_ok=True)
    backbone = smollm2_dir(args.work)
    shown = {k: display_path(v, args.work) if isinstance(v, Path) else str(v) for k, v in vars(args).items()}
    results = {"args": shown, "machine": args.machine, "rows": []}
    dbr = {"dbr_kb": str(KB), "seed": args.seed}
    rows = {
        "VANER bidirectional": {},
        "VANER causal": {"model": {"bidirectional": False}},
        "VANER bidirectional + DBR": {"dbr_mode": "retrieved", **dbr},
        "VANER bidirectional + random DBR": {"dbr_mode": "random", **dbr},
    }
    for dataset in args.datasets:
        if "baseline" in args.rows:
            run_row(results, "bioner_tagger + MiniLM", baseline_pipeline, [dataset], [dataset], args)
        for name, settings in rows.items():
            if ("DBR" in name and dataset not in args.dbr_datasets) or name.split(" ", 1)[1] not in args.rows:
                continue
            run_row(results, name, lambda s=settings: llm_pipeline(backbone, dict(s)), [dataset], [dataset], args)
    if "multi" in args.rows and len(args.datasets) > 1:
        name = "VANER bidirectional, multi-dataset"
        run_row(results, name, lambda: llm_pipeline(backbone, {}), args.datasets, args.datasets, args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["NCBI-disease", "BC5CDR"])
    parser.add_argument("--dbr-datasets", nargs="+", default=["NCBI-disease"])
    parser.add_argument(
        "--rows",
        nargs="+",
        default=["baseline", "bidirectional", "causal", "bidirectional + DBR", "bidirectional + random DBR", "multi"],
    )
    parser.add_argument("--train-sentences", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--test-sentences", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core CPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="cpu")
    parser.add_argument("--machine", default="2 shared CPU cores")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bioner_llm_bench"))
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results")
    main(parser.parse_args(sys.argv[1:]))
