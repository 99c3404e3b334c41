"""Benchmark: `bioner_spans` vs spaCy's `spancat` (n-grams of 1..32 tokens) vs
`bioner_tagger`, all on the CNN tok2vec of configs/tagger.cfg, the same training steps
and seed. Strict P/R/F1 on the test set (overlaps allowed: each system's span group
against the gold entities), words/second with `nlp.pipe`, and the peak memory that
processing one 2,000-token doc allocates (tracemalloc). Writes
benchmarks/results/spans_<corpus>.md/.json.

The nested check (`--nested`) trains `bioner_spans` and `bioner_tagger` on ADE fold 0
(SpERT JSON, 120 overlapping entity pairs in all; the tagger learns from the longest
non-overlapping selection), scores both against all gold entities, and counts how many
gold entities that overlap another one each system recovers. Writes
benchmarks/results/spans_nested_ade.md/.json.

    python benchmarks/bench_spans.py NCBI-disease BC5CDR --steps 1500
    python benchmarks/bench_spans.py --nested --steps 1500
    python benchmarks/bench_spans.py NCBI-disease --suffix _variants --systems bioner_spans_none ...

Converted corpora and trained models go under --work (default /tmp), never the repo.
"""

import json
import shlex
import tracemalloc
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import spacy
import typer
from compare_systems import timed_predictions, train
from paths import display_path
from spacy.tokens import Doc, DocBin

from spacy_bioner.corpora import read_iob, read_spert
from spacy_bioner.scoring import score_entities

ROOT = Path(__file__).resolve().parents[1]

# The paper's SpanPred (linear classifier over [u_b; u_e]); configs/spans.cfg itself is
# the bioner_spans_mlp_spert recipe.
PAPER = ["components.bioner_spans.model.hidden_size=0", 'components.bioner_spans.model.representation=["boundary"]']
# name -> (config, extra overrides, span group with the predictions)
SYSTEMS = {
    "bioner_spans": ("configs/spans.cfg", PAPER, "bioner_spans"),
    "spancat": ("benchmarks/configs/spancat.cfg", [], "sc"),
    "bioner_tagger": ("configs/tagger.cfg", [], "bioner_tagger"),
}
# Settings of bioner_spans worth comparing (run with --systems NAME).
VARIANTS = {
    "bioner_spans_none": ("configs/spans.cfg", PAPER + ["components.bioner_spans.scheme=none"], "bioner_spans"),
    "bioner_spans_neg100": (
        "configs/spans.cfg",
        PAPER + ["components.bioner_spans.negatives_per_doc=100"],
        "bioner_spans",
    ),
    "bioner_spans_mlp": (
        "configs/spans.cfg",
        ["components.bioner_spans.model.hidden_size=128", 'components.bioner_spans.model.representation=["boundary"]'],
        "bioner_spans",
    ),
    "bioner_spans_mlp_spert": ("configs/spans.cfg", [], "bioner_spans"),
}
NESTED_SYSTEMS = ("bioner_spans", "bioner_tagger")
GOLD_KEY = "bioner_spans"
MEMORY_DOC_TOKENS = 2000
SPLITS = ("train", "devel", "test")


def write_docbins(splits: Dict[str, List[Doc]], directory: Path) -> None:
    """train/devel/test.spacy with the gold entities also in doc.spans["sc"] (spancat's
    gold) and, when the docs have no group of their own, in doc.spans[GOLD_KEY]."""
    directory.mkdir(parents=True, exist_ok=True)
    for split, docs in splits.items():
        for doc in docs:
            gold = doc.spans[GOLD_KEY] if GOLD_KEY in doc.spans else doc.ents
            doc.spans["sc"] = list(gold)
            doc.spans[GOLD_KEY] = list(gold)
        DocBin(docs=docs).to_disk(directory / f"{split}.spacy")


def long_text(texts: Sequence[str], nlp, n_tokens: int) -> str:
    """Test texts joined until the doc has at least n_tokens tokens."""
    chosen, total = [], 0
    for text in texts:
        chosen.append(text)
        total += len(nlp.make_doc(text))
        if total >= n_tokens:
            break
    return " ".join(chosen)


def peak_memory_mib(nlp, text: str) -> float:
    """Peak memory allocated while processing one doc (after a warm-up call)."""
    nlp(text)
    tracemalloc.start()
    nlp(text)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def overlapping_recall(pairs: Sequence[Tuple[set, set]]) -> Tuple[int, int]:
    """(recovered, total) gold entities that overlap another gold entity of their doc."""
    recovered = total = 0
    for predicted, gold in pairs:
        nested = {a for a in gold for b in gold if a != b and a[0] < b[1] and b[0] < a[1]}
        total += len(nested)
        recovered += len(nested & predicted)
    return recovered, total


def evaluate(model: Path, test_path: Path, pred_key: str, batch_size: int = 256) -> Dict[str, object]:
    nlp, examples, words_per_second = timed_predictions(model, test_path, batch_size)
    scores = score_entities(examples, pred_key=pred_key, gold_key=GOLD_KEY, prefix="ents")
    entity_sets = [
        (
            {(s.start_char, s.end_char, s.label_) for s in eg.predicted.spans.get(pred_key, [])},
            {(s.start_char, s.end_char, s.label_) for s in eg.reference.spans[GOLD_KEY]},
        )
        for eg in examples
    ]
    recovered, n_overlapping = overlapping_recall(entity_sets)
    memory_text = long_text([eg.reference.text for eg in examples], nlp, MEMORY_DOC_TOKENS)
    return {
        **scores,
        "words_per_second": words_per_second,
        "memory_doc_tokens": len(nlp.make_doc(memory_text)),
        "peak_memory_mib": peak_memory_mib(nlp, memory_text),
        "overlapping_recovered": recovered,
        "overlapping_gold": n_overlapping,
    }


def run_systems(
    corpus: Path,
    names: Sequence[str],
    output: Path,
    steps: int,
    seed: int,
    eval_frequency: int,
    workdir: Optional[Path] = None,
) -> List[Dict[str, object]]:
    """Paths under workdir show as <workdir>/... in the recorded commands."""
    rows = []
    for name in names:
        config, overrides, pred_key = {**SYSTEMS, **VARIANTS}[name]
        overrides = overrides + [f"training.eval_frequency={eval_frequency}"]
        command = (
            f"python -m spacy train {config} --output {display_path(output / name, workdir)} "
            f"--paths.train {display_path(corpus / 'train.spacy', workdir)} "
            f"--paths.dev {display_path(corpus / 'devel.spacy', workdir)} --training.max_steps {steps} --system.seed {seed} "
            + " ".join(f"--{key} {shlex.quote(value)}" for key, value in (o.split("=", 1) for o in overrides))
        )
        print(command, flush=True)
        seconds = train(config, overrides, corpus, output / name, steps, seed)
        row = {"system": name, "command": command, "steps": steps, "seed": seed, "train_seconds": seconds}
        row.update(evaluate(output / name / "model-best", corpus / "test.spacy", pred_key))
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "ents_per_type"}), flush=True)
    return rows


def markdown_table(rows: List[Dict[str, object]], nested: bool = False) -> str:
    header = "| system | P | R | F1 | words/s | peak MiB (2,000-token doc) | train s |"
    rule = "|---|---:|---:|---:|---:|---:|---:|"
    if nested:
        header += " overlapping gold recovered |"
        rule += "---:|"
    lines = [header, rule]
    for row in rows:
        line = (
            f"| {row['system']} | {100 * row['ents_p']:.2f} | {100 * row['ents_r']:.2f} | {100 * row['ents_f']:.2f} | "
            f"{row['words_per_second']:.0f} | {row['peak_memory_mib']:.1f} | {row['train_seconds']:.0f} |"
        )
        if nested:
            line += f" {row['overlapping_recovered']} / {row['overlapping_gold']} |"
        lines.append(line)
    return "\n".join(lines)


def write_results(rows: List[Dict[str, object]], name: str, title: str, nested: bool = False) -> None:
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows, nested)
    (results / f"{name}.md").write_text(f"{title}\n\n{table}\n", encoding="utf8")
    (results / f"{name}.json").write_text(json.dumps(rows, indent=2), encoding="utf8")
    print(f"\n{title}\n\n{table}\n\nWrote benchmarks/results/{name}.md and .json", flush=True)


def main(
    corpora: Optional[List[str]] = typer.Argument(None, help="NER corpora under DATA/ner, e.g. NCBI-disease BC5CDR."),
    nested: bool = typer.Option(False, help="Run the nested check on ADE fold 0 instead."),
    systems: List[str] = typer.Option(
        list(SYSTEMS), help=f"Systems to run (repeatable); also the variants {', '.join(VARIANTS)}."
    ),
    data: Path = typer.Option(ROOT.parent / "shared" / "data", help="Mirror directory with ner/ and re/."),
    work: Path = typer.Option(Path("/tmp/bioner_spans_bench"), help="Converted corpora and trained models."),
    steps: int = typer.Option(1500, help="Training steps for every system."),
    seed: int = typer.Option(0),
    eval_frequency: int = typer.Option(300, help="Dev evaluation every N steps (model-best selection)."),
    suffix: str = typer.Option("", help="Appended to the results file names (e.g. _variants)."),
) -> None:
    nlp = spacy.blank("en")
    if nested:
        train_docs = read_spert(data / "re" / "ade" / "ade_split_0_train.json", nlp.vocab, spans_key=GOLD_KEY)
        n_dev = len(train_docs) // 10
        splits = {
            "train": train_docs[n_dev:],
            "devel": train_docs[:n_dev],
            "test": read_spert(data / "re" / "ade" / "ade_split_0_test.json", nlp.vocab, spans_key=GOLD_KEY),
        }
        corpus = work / "ade_split_0"
        write_docbins(splits, corpus)
        names = [name for name in systems if name in NESTED_SYSTEMS]
        rows = run_systems(corpus, names, work / "models" / "ade_split_0", steps, seed, eval_frequency, work)
        title = (
            f"ADE fold 0 (test {len(splits['test'])} sentences; dev: first 10% of the fold's train), "
            f"{steps} steps, seed {seed}; strict P/R/F1 against all gold entities, overlaps allowed"
        )
        write_results(rows, f"spans_nested_ade{suffix}", title, nested=True)
        return
    for name in corpora or ["NCBI-disease", "BC5CDR"]:
        splits = {split: read_iob(data / "ner" / name / f"{split}.tsv", nlp.vocab)[0] for split in SPLITS}
        corpus = work / name
        write_docbins(splits, corpus)
        rows = run_systems(corpus, systems, work / "models" / name, steps, seed, eval_frequency, work)
        title = f"{name} test set, {steps} training steps, seed {seed}, CNN tok2vec (configs/tagger.cfg), CPU"
        write_results(rows, f"spans_{name}{suffix}", title)


if __name__ == "__main__":
    typer.run(main)
