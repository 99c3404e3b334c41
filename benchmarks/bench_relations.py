"""Benchmark `bioner_relations` (SpERT.MT) on CoNLL04 and ADE, with ablation rows.

CoNLL04: train on train+dev, test on test, micro averages. ADE: the given folds (10-fold
cross-validation; fold 0 alone for a quick run), macro averages; a row is the mean over
the folds, and with several folds a per-fold table follows with the mean and the sample
standard deviation of each F1. Every variant (one row) trains the same config for the
same budget and seed with one switch flipped (Lu & Xue 2024, Table 2):

    full              the config as it is
    no-multitask      components.bioner_relations.multitask = false
    no-iou            components.bioner_relations.iou_scaling = false
    no-entity-logits  components.bioner_relations.model.entity_logits = false

Writes benchmarks/results/relations_<dataset>[_<encoder>].md and .json (the encoder
suffix, the last part of paths.transformer, only for a transformer config) with entity
(strict) and relation (strict and boundaries) P/R/F1, training time, words/second at
inference (model-last, no selection on the test set), the encoder and the command.
The test split never reaches `spacy train`: its progress evaluations use CoNLL04's dev
split (part of the published training data, so they only show progress), and for ADE,
which has no dev split, the last 10% of the fold's training sentences, held out.

    python benchmarks/bench_relations.py conll04 --max-steps 2000
    python benchmarks/bench_relations.py conll04 --variants full no-multitask no-iou no-entity-logits
    python benchmarks/bench_relations.py ade --folds 0-9 --max-steps 2000
    python benchmarks/bench_relations.py conll04 --config configs/relations_trf.cfg \\
        --paths.transformer assets/models/all-MiniLM-L6-v2 --max-steps 11530

A config with a warmup_linear learning rate warms up over 10% of --max-steps (SpERT's
lr_warmup). Any other argument is a `spacy train` override applied to every variant.
The corpora are read from ../shared/data/re (or --data DIR) (never copied into the
repo); the DocBins and models go to a temporary directory unless --workdir is given.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List

import spacy
import srsly
from ade_folds import hold_out_dev
from paths import display_command, display_path
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from spacy.util import load_config

from spacy_bioner.corpora import read_spert
from spacy_bioner.scoring import make_relation_scorer

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
KEY = "bioner_relations"
DATASETS = {
    "conll04": {"average": "micro", "splits": lambda fold: (["conll04_train", "conll04_dev"], "conll04_test")},
    "ade": {"average": "macro", "splits": lambda fold: ([f"ade_split_{fold}_train"], f"ade_split_{fold}_test")},
}
# --split dev: train without the dev sentences and score on them, to choose settings
DEV_SPLITS = {
    "conll04": lambda fold: (["conll04_train"], "conll04_dev"),
    "ade": lambda fold: ([f"ade_split_{fold}_train"], None),
}
VARIANTS: Dict[str, List[str]] = {
    "full": [],
    "no-multitask": ["--components.bioner_relations.multitask", "false"],
    "no-iou": ["--components.bioner_relations.iou_scaling", "false"],
    "no-entity-logits": ["--components.bioner_relations.model.entity_logits", "false"],
}
F1_COLUMNS = ("NER F1", "RE strict F1", "RE boundaries F1")


def read_docs(names, dataset: str, data: Path) -> List[Doc]:
    vocab = spacy.blank("en").vocab
    return [doc for name in names for doc in read_spert(data / "re" / dataset / f"{name}.json", vocab, KEY)]


def write_docbin(docs: List[Doc], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs, store_user_data=True).to_disk(path)


def parse_folds(dataset: str, spec: str) -> List[int]:
    """The folds of a spec like "0" or "0-9" (CoNLL04 has one split: [0])."""
    first, _, last = spec.partition("-")
    return [0] if dataset == "conll04" else list(range(int(first), int(last or first) + 1))


def fold_corpus(workdir: Path, dataset: str, fold: int) -> Path:
    return workdir / "corpus" / f"{dataset}_{fold}"


def read_scored_docs(fold_dir: Path, vocab) -> List[Doc]:
    """The docs model-last is scored on: the fold's test split, or with --split dev its dev split."""
    return list(DocBin().from_disk(fold_dir / "scored.spacy").get_docs(vocab))


def relation_scores(predictions: Iterable[Doc], references: List[Doc]) -> Dict[str, Any]:
    return make_relation_scorer(KEY)([Example(p, r) for p, r in zip(predictions, references)])


def prepare_fold(dataset: str, fold: int, workdir: Path, data: Path, split: str = "test") -> Path:
    """The fold's train/, dev.spacy and scored.spacy DocBins under workdir, shared by
    the variants. `split` "test" scores the test split; "dev" trains without the dev
    split and scores it (CoNLL04's dev sentences; ADE's held-out 10%)."""
    train_names, test_name = (DATASETS[dataset]["splits"] if split == "test" else DEV_SPLITS[dataset])(fold)
    fold_dir = fold_corpus(workdir, dataset, fold) / split
    if dataset == "conll04":
        for name in train_names:
            write_docbin(read_docs([name], dataset, data), fold_dir / "train" / f"{name}.spacy")
        dev_docs = read_docs(["conll04_dev"], dataset, data)
    else:
        train_docs, dev_docs = hold_out_dev(read_docs(train_names, dataset, data))
        write_docbin(train_docs, fold_dir / "train" / f"{train_names[0]}.spacy")
    write_docbin(dev_docs, fold_dir / "dev.spacy")
    write_docbin(read_docs([test_name], dataset, data) if test_name else dev_docs, fold_dir / "scored.spacy")
    return fold_dir


def run_fold(
    fold: int, seed: int, fold_dir: Path, output: Path, config: Path, max_steps: int, overrides, gpu_id: int = -1
) -> dict:
    """Train on the fold for max_steps with `seed` and score model-last on its scored split."""
    command = [
        sys.executable, "-m", "spacy", "train", str(config), "--output", str(output),
        "--paths.train", str(fold_dir / "train"), "--paths.dev", str(fold_dir / "dev.spacy"),
        "--training.max_steps", str(max_steps), "--training.eval_frequency", str(max(max_steps // 4, 1)),
        "--system.seed", str(seed), "--gpu-id", str(gpu_id), *overrides,
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True)
    train_seconds = time.perf_counter() - start
    # model-last: no model selection on the scored split
    nlp = spacy.load(output / "model-last")
    references = read_scored_docs(fold_dir, nlp.vocab)
    start = time.perf_counter()
    predictions = list(nlp.pipe(doc.text for doc in references))
    seconds = time.perf_counter() - start
    scores = relation_scores(predictions, references)
    n_words = sum(len(doc) for doc in references)
    return {
        "fold": fold,
        "seed": seed,
        "scores": scores,
        "train_seconds": train_seconds,
        "words_per_second": n_words / seconds,
    }


def headline(result: dict, average: str) -> Dict[str, float]:
    """The table's numbers for one run (percent), in column order."""
    scores = result["scores"]
    keys = {"NER": f"spans_{KEY}" if average == "micro" else f"spans_{KEY}_macro"}
    keys.update({"RE strict": f"rel_strict_{average}", "RE boundaries": f"rel_{average}"})
    row = {
        f"{column} {metric.upper()}{'1' if metric == 'f' else ''}": 100 * scores[f"{key}_{metric}"]
        for column, key in keys.items()
        for metric in "prf"
    }
    row["train s"] = result["train_seconds"]
    row["words/s"] = result["words_per_second"]
    return row


def summary(results: List[dict], average: str) -> Dict[str, Dict[str, float]]:
    """Mean over the runs (folds x seeds) of every column and, with several runs, the
    sample standard deviation of each F1."""
    rows = [headline(result, average) for result in results]
    mean = {name: statistics.fmean(row[name] for row in rows) for name in rows[0]}
    std = {name: statistics.stdev(row[name] for row in rows) for name in F1_COLUMNS} if len(rows) > 1 else {}
    return {"mean": mean, "std": std}


def config_overrides(args: List[str]) -> Dict[str, Any]:
    """`spacy train` overrides ("--section.key value" or "--section.key=value") as a dict
    for load_config; values are read as JSON where they parse, else kept as strings."""
    result, index = {}, 0
    while index < len(args):
        name = args[index]
        if not name.startswith("--") or "." not in name:
            raise ValueError(f"not a config override: {name!r} (expected --section.key value)")
        if "=" in name:
            name, value = name.split("=", 1)
        else:
            index += 1
            if index == len(args):
                raise ValueError(f"config override {name} has no value")
            value = args[index]
        try:
            result[name[2:]] = srsly.json_loads(value)
        except ValueError:
            result[name[2:]] = value
        index += 1
    return result


def encoder_of(config_path: Path, overrides: List[str]) -> Dict[str, Any]:
    """The encoder the config trains (transformer name or CNN tok2vec) and whether its
    learning rate has a warm-up to size."""
    config = load_config(config_path, overrides=config_overrides(overrides), interpolate=True)
    transformer = config["components"].get("transformer")
    learn_rate = config["training"]["optimizer"]["learn_rate"]
    return {
        "name": Path(transformer["model"]["name"]).name if transformer else None,
        "warmup": isinstance(learn_rate, dict) and learn_rate.get("@schedules") == "warmup_linear.v1",
    }


def markdown(meta: Dict[str, Any], variants: Dict[str, dict]) -> str:
    encoder = meta["encoder"] or "CNN tok2vec"
    lines = [
        f"# bioner_relations on {meta['dataset']} ({meta['average']} averages; folds {meta['folds']}; "
        f"seeds {meta['seeds']}; scored on the {meta['split']} split; "
        f"encoder {encoder} ({meta['config']}), CPU, {meta['max_steps']} steps)",
        "",
    ]
    columns = list(next(iter(variants.values()))["summary"]["mean"])
    lines += ["| variant | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 1)]
    for name, variant in variants.items():
        values = variant["summary"]["mean"]
        cells = [f"{values[c]:.2f}" if "/s" not in c else f"{values[c]:.0f}" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    n_runs = len(meta["folds"]) * len(meta["seeds"])
    if n_runs > 1:
        lines += [
            "",
            f"Per run (F1); the rows above are the means over the {n_runs} runs (folds x seeds):",
            "",
            "| variant | fold | seed | " + " | ".join(F1_COLUMNS) + " |",
            "|" + "---|" * (len(F1_COLUMNS) + 3),
        ]
        for name, variant in variants.items():
            for run in variant["runs"]:
                row = headline(run, meta["average"])
                cells = " | ".join(f"{row[c]:.2f}" for c in F1_COLUMNS)
                lines.append(f"| {name} | {run['fold']} | {run.get('seed', 0)} | {cells} |")
            mean, std = variant["summary"]["mean"], variant["summary"]["std"]
            cells = [f"{mean[c]:.2f} ± {std[c]:.2f}" for c in F1_COLUMNS]
            lines.append(f"| {name} | mean ± sd | | " + " | ".join(cells) + " |")
    lines += ["", f"Command: `{meta['command']}`"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=sorted(DATASETS))
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "relations.cfg")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=["full"])
    parser.add_argument("--folds", default="0", help="ADE folds, e.g. 0 or 0-9")
    parser.add_argument("--max-steps", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="Train each variant once per seed.")
    parser.add_argument(
        "--split", choices=["test", "dev"], default="test",
        help="Score on the test split, or (dev) train without the dev split and score on it, to choose settings.",
    )  # fmt: skip
    parser.add_argument("--suffix", default="", help="Appended to the results file names.")
    parser.add_argument("--gpu-id", type=int, default=-1, help="GPU for spacy train (-1: the CPU).")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=DATA, help="Directory holding re/<dataset>/ (a mirror)")
    parser.add_argument("--output-dir", type=Path, default=ROOT / "benchmarks" / "results")
    # any other arguments are `spacy train` overrides, e.g. --paths.transformer DIR
    args, overrides = parser.parse_known_args()
    folds = parse_folds(args.dataset, args.folds)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_relations_"))
    encoder = encoder_of(args.config, overrides)
    if encoder["warmup"]:
        overrides = ["--training.optimizer.learn_rate.warmup_steps", str(max(1, args.max_steps // 10)), *overrides]
    fold_dirs = {fold: prepare_fold(args.dataset, fold, workdir, args.data, args.split) for fold in folds}
    average = DATASETS[args.dataset]["average"]
    variants = {}
    for name in args.variants:
        runs = [
            run_fold(
                fold, seed, fold_dirs[fold], workdir / name / f"{args.dataset}_{fold}_{args.split}_seed{seed}",
                args.config, args.max_steps, [*overrides, *VARIANTS[name]], args.gpu_id,
            )
            for fold in folds
            for seed in args.seeds
        ]  # fmt: skip
        variants[name] = {"overrides": VARIANTS[name], "summary": summary(runs, average), "runs": runs}
    meta = {
        "dataset": args.dataset,
        "average": average,
        "config": display_path(args.config),
        "encoder": encoder["name"],
        "max_steps": args.max_steps,
        "folds": folds,
        "seeds": args.seeds,
        "split": args.split,
        "command": display_command(["benchmarks/bench_relations.py", *sys.argv[1:]], args.workdir),
    }
    stem = f"relations_{args.dataset}" + (f"_{encoder['name']}" if encoder["name"] else "")
    stem += ("_dev" if args.split == "dev" else "") + args.suffix
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / f"{stem}.json").write_text(json.dumps({**meta, "variants": variants}, indent=2) + "\n")
    text = markdown(meta, variants)
    (args.output_dir / f"{stem}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
