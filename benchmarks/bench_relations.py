"""Benchmark `bioner_relations` (SpERT.MT) on CoNLL04 and ADE with configs/relations.cfg.

CoNLL04: train on train+dev, test on test, micro F1. ADE: the given folds (10-fold
cross-validation; fold 0 alone for a quick run), macro F1 averaged over the folds.
Writes benchmarks/results/relations_<dataset>.md and .json: entity (strict) and relation
(strict and boundaries) P/R/F1, training time and words/second at inference.

    python benchmarks/bench_relations.py conll04 --max-steps 2000
    python benchmarks/bench_relations.py ade --folds 0 --max-steps 2000

The corpora are read from ../shared/data/re (or --data DIR) (never copied into the repo); the DocBins
and models go to a temporary directory unless --workdir is given.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import spacy
from spacy.tokens import DocBin
from spacy.training import Example

from spacy_bioner.corpora import read_spert
from spacy_bioner.scoring import make_relation_scorer

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
KEY = "bioner_relations"
DATASETS = {
    "conll04": {"average": "micro", "splits": lambda fold: (["conll04_train", "conll04_dev"], "conll04_test")},
    "ade": {"average": "macro", "splits": lambda fold: ([f"ade_split_{fold}_train"], f"ade_split_{fold}_test")},
}


def write_docbin(names, dataset: str, path: Path, data: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    vocab = spacy.blank("en").vocab
    for name in names:
        docs = read_spert(data / "re" / dataset / f"{name}.json", vocab, KEY)
        DocBin(docs=docs, store_user_data=True).to_disk(path / f"{name}.spacy")


def run_fold(dataset: str, fold: int, workdir: Path, max_steps: int, overrides, data: Path) -> dict:
    train_names, test_name = DATASETS[dataset]["splits"](fold)
    fold_dir = workdir / f"{dataset}_{fold}"
    write_docbin(train_names, dataset, fold_dir / "train", data)
    write_docbin([test_name], dataset, fold_dir / "test", data)
    command = [
        sys.executable, "-m", "spacy", "train", str(ROOT / "configs" / "relations.cfg"),
        "--output", str(fold_dir / "model"),
        "--paths.train", str(fold_dir / "train"), "--paths.dev", str(fold_dir / "test"),
        "--training.max_steps", str(max_steps), "--training.eval_frequency", str(max(max_steps // 4, 1)),
        *overrides,
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True)
    train_seconds = time.perf_counter() - start
    # model-last: no model selection on the test set
    nlp = spacy.load(fold_dir / "model" / "model-last")
    references = list(DocBin().from_disk(fold_dir / "test" / f"{test_name}.spacy").get_docs(nlp.vocab))
    start = time.perf_counter()
    predictions = list(nlp.pipe(doc.text for doc in references))
    seconds = time.perf_counter() - start
    scores = make_relation_scorer(KEY)([Example(p, r) for p, r in zip(predictions, references)])
    n_words = sum(len(doc) for doc in references)
    return {"fold": fold, "scores": scores, "train_seconds": train_seconds, "words_per_second": n_words / seconds}


def summary(results, average: str) -> dict:
    """Mean over folds of the headline numbers (percent)."""
    keys = {
        "NER P": f"spans_{KEY}_p" if average == "micro" else f"spans_{KEY}_macro_p",
        "NER R": f"spans_{KEY}_r" if average == "micro" else f"spans_{KEY}_macro_r",
        "NER F1": f"spans_{KEY}_f" if average == "micro" else f"spans_{KEY}_macro_f",
    }
    for setting, prefix in (("RE strict", "rel_strict"), ("RE boundaries", "rel")):
        for metric in "prf":
            keys[f"{setting} {metric.upper()}{'1' if metric == 'f' else ''}"] = f"{prefix}_{average}_{metric}"
    table = {name: 100 * sum(r["scores"][key] for r in results) / len(results) for name, key in keys.items()}
    table["train s"] = sum(r["train_seconds"] for r in results) / len(results)
    table["words/s"] = sum(r["words_per_second"] for r in results) / len(results)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=sorted(DATASETS))
    parser.add_argument("--folds", default="0", help="ADE folds, e.g. 0 or 0-9")
    parser.add_argument("--max-steps", type=int, default=2000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=DATA, help="Directory holding re/<dataset>/ (a mirror)")
    # any other arguments are `spacy train` overrides, e.g. --components.bioner_relations.multitask false
    args, overrides = parser.parse_known_args()
    first, _, last = args.folds.partition("-")
    folds = [0] if args.dataset == "conll04" else list(range(int(first), int(last or first) + 1))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_relations_"))
    results = [run_fold(args.dataset, fold, workdir, args.max_steps, overrides, args.data) for fold in folds]
    average = DATASETS[args.dataset]["average"]
    table = summary(results, average)
    out = ROOT / "benchmarks" / "results" / f"relations_{args.dataset}"
    out.with_suffix(".json").write_text(json.dumps({"max_steps": args.max_steps, "folds": folds, "summary": table, "runs": results}, indent=2))
    lines = [
        f"# bioner_relations on {args.dataset} ({average} averages; folds {folds}; CNN tok2vec, CPU, {args.max_steps} steps)",
        "",
        "| " + " | ".join(table) + " |",
        "|" + "---|" * len(table),
        "| " + " | ".join(f"{value:.2f}" if "/s" not in name else f"{value:.0f}" for name, value in table.items()) + " |",
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
