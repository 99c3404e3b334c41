"""How the prediction rule shapes the scores of models that benchmarks/bench_relations.py
trained: each model-last in its work directory is scored on its scored split (test, or
dev with --split dev) again at every given threshold theta (Eq. 18 of Lu & Xue 2024,
decision "score"; default 0.85) and, with --decisions ... identification, with the
identification heads deciding (decision "identification"; theta unused). With
--relation-thresholds, each theta is combined with each relation_threshold (the relation
stage's own theta; entities keep theta). With --allow-overlap true false, every rule is
also scored with and without overlapping entities (the component's allow_overlap).
With --time, each model's rules are also timed in turn (nlp.pipe over the scored texts,
best of 3 passes, one thread): the cost of the rule itself.

    python benchmarks/bench_relations.py ade --folds 0-9 --max-steps 1000 --workdir /tmp/rel_ade
    python benchmarks/relations_threshold.py ade /tmp/rel_ade --folds 0-9 --thresholds 0.85 0.5 0

theta applies to the raw ranking scores (margins m+ 2.5, m- 0.5), which reach it only
late in training; the table shows how much recall a short budget leaves under it. The
test split is the one scored, so this is a sensitivity analysis, not a way to choose
theta (choose it on a dev set: --split dev). Writes benchmarks/results/relations_<dataset><suffix>_threshold.md.
"""

import argparse
import os

# One thread for the numeric libraries, set before they load, as the other benchmarks.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

import spacy
from bench_relations import (
    DATASETS,
    F1_COLUMNS,
    KEY,
    ROOT,
    fold_corpus,
    headline,
    parse_folds,
    read_scored_docs,
    relation_scores,
)
from paths import display_command
from spacy.language import Language


def load_model(path: Path, workdir: Path) -> Language:
    if not path.is_dir():
        raise SystemExit(f"No trained model at {path}: run bench_relations.py with --workdir {workdir}")
    return spacy.load(path)


def set_rule(nlp: Language, rule: Tuple, saved_overlap: bool) -> None:
    """Set a (decision, theta, relation theta, allow_overlap) rule on the component."""
    decision, theta, relation_theta, overlap = rule
    cfg = nlp.get_pipe(KEY).cfg
    cfg["decision"], cfg["threshold"] = decision, cfg["threshold"] if theta is None else theta
    cfg["relation_threshold"] = relation_theta
    cfg["allow_overlap"] = saved_overlap if overlap is None else overlap


def rule_speeds(nlp: Language, rules: List[Tuple], texts: List[str], saved_overlap: bool) -> Dict[Tuple, float]:
    """Words per second of each rule, the best of 3 passes taken in turn (A, B, A, B, ...)."""
    best = {rule: 0.0 for rule in rules}
    list(nlp.pipe(texts[:64]))
    for _ in range(3):
        for rule in rules:
            set_rule(nlp, rule, saved_overlap)
            start = time.perf_counter()
            n_words = sum(len(doc) for doc in nlp.pipe(texts))
            best[rule] = max(best[rule], n_words / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=sorted(DATASETS))
    parser.add_argument("workdir", type=Path, help="The --workdir of a bench_relations.py run")
    parser.add_argument("--variants", nargs="+", default=["full"])
    parser.add_argument("--folds", default="0", help="ADE folds, e.g. 0 or 0-9")
    parser.add_argument("--split", choices=["test", "dev"], default="test", help="The --split of that run")
    parser.add_argument("--seed", type=int, default=0, help="Which of that run's seeds to rescore")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.85, 0.5, 0.0])
    parser.add_argument(
        "--relation-thresholds",
        type=float,
        nargs="+",
        default=[None],
        help="relation_threshold values to try with each theta (default: the same as theta)",
    )
    parser.add_argument("--decisions", nargs="+", choices=["score", "identification"], default=["score"])
    parser.add_argument(
        "--allow-overlap",
        nargs="+",
        choices=["true", "false"],
        default=[None],
        help="allow_overlap values to try with each rule (default: the model's own)",
    )
    parser.add_argument("--time", action="store_true", help="Also time each rule (words/s, in turn)")
    parser.add_argument("--suffix", default="", help="Appended to the output name, e.g. _all-MiniLM-L6-v2")
    parser.add_argument("--output-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    folds = parse_folds(args.dataset, args.folds)
    average = DATASETS[args.dataset]["average"]
    overlaps = [None if value is None else value == "true" for value in args.allow_overlap]
    rules = []
    if "score" in args.decisions:
        rules += [
            ("score", theta, rel, overlap)
            for theta in args.thresholds
            for rel in args.relation_thresholds
            for overlap in overlaps
        ]
    if "identification" in args.decisions:
        rules += [("identification", None, None, overlap) for overlap in overlaps]
    rows = {(variant, rule): [] for variant in args.variants for rule in rules}
    for variant in args.variants:
        for fold in folds:
            run = f"{args.dataset}_{fold}_{args.split}_seed{args.seed}"
            nlp = load_model(args.workdir / variant / run / "model-last", args.workdir)
            references = read_scored_docs(fold_corpus(args.workdir, args.dataset, fold) / args.split, nlp.vocab)
            saved_overlap = nlp.get_pipe(KEY).cfg["allow_overlap"]
            texts = [doc.text for doc in references]
            speeds = rule_speeds(nlp, rules, texts, saved_overlap) if args.time else {}
            for rule in rules:
                set_rule(nlp, rule, saved_overlap)
                scores = relation_scores(nlp.pipe(texts), references)
                row = headline(
                    {"scores": scores, "train_seconds": 0.0, "words_per_second": speeds.get(rule, 0.0)}, average
                )
                rows[variant, rule].append(row)
                cells = ", ".join(f"{c} {row[c]:.2f}" for c in F1_COLUMNS)
                decision, theta, relation_theta, _ = rule
                described = f"{decision} theta {theta} / {relation_theta}, allow_overlap {nlp.get_pipe(KEY).cfg['allow_overlap']}"
                print(f"{variant} fold {fold} {described}: {cells}", flush=True)
    dropped = ("train s",) if args.time else ("train s", "words/s")
    columns = [c for c in next(iter(rows.values()))[0] if c not in dropped]
    lines = [
        f"# bioner_relations on {args.dataset}: scores by prediction rule ({average} averages, "
        f"mean over folds {folds}; {args.split} split" + (", not for choosing theta)" if args.split == "test" else ")"),
        "",
        "| variant | decision | theta | relation theta | allow_overlap | " + " | ".join(columns) + " |",
        "|" + "---|" * (len(columns) + 5),
    ]
    for (variant, (decision, theta, relation_theta, overlap)), fold_rows in rows.items():
        means = [statistics.fmean(row[c] for row in fold_rows) for c in columns]
        cells = " | ".join(
            f"{mean:.0f}" if column == "words/s" else f"{mean:.2f}" for column, mean in zip(columns, means)
        )
        thetas = " | ".join("" if value is None else f"{value:g}" for value in (theta, relation_theta))
        overlap_cell = "(saved)" if overlap is None else str(overlap).lower()
        lines.append(f"| {variant} | {decision} | {thetas} | {overlap_cell} | {cells} |")
    lines += ["", f"Command: `{display_command(['benchmarks/relations_threshold.py', *sys.argv[1:]], args.workdir)}`"]
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / f"relations_{args.dataset}{args.suffix}_threshold.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
