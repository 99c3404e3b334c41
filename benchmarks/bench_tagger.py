"""Benchmark: spaCy's `ner` vs the default `bioner_tagger` (configs/tagger.cfg: CRF
output, dictionary features in the CNN tok2vec, parameter averaging) and the same
tagger with a softmax output and WeLT weights, all with the same tok2vec width and
depth, training steps and seeds. spaCy's `ner` runs twice: with spaCy's default
optimizer (no averaging) and with the averaging the default tagger uses. Every system
trains on single sentences; dev and test are read as documents of --doc-sents
consecutive sentences (the corpora keep each abstract's sentences in order), the
context that the default pipeline's `bioner_abbreviations` uses. Model-best is
chosen on dev; rows give the test mean ± sd over the seeds.
Writes benchmarks/results/tagger_<corpus>.md/.json.

    python benchmarks/bench_tagger.py NCBI-disease --steps 4000 --seeds 0 --seeds 1 --seeds 2 --jobs 2

A corpus outside the mirror's ner/ folder, e.g. ADE fold 0 (ade_ner_corpus.py writes it;
its sentences are unrelated, so dev and test stay one sentence per doc):

    python benchmarks/ade_ner_corpus.py --fold 0 --output assets/ade_ner
    python benchmarks/bench_tagger.py ADE --data assets/ade_ner \
        --dictionary ../shared/data/kb/combined_entity_names.tsv --doc-sents 1 --steps 4000
"""

import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import typer

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = [
    "spacy_ner=benchmarks/configs/spacy_ner.cfg",
    "spacy_ner_averages=benchmarks/configs/spacy_ner.cfg training.optimizer.use_averages=true",
    "bioner_tagger=configs/tagger.cfg",
    "bioner_tagger_welt=configs/tagger.cfg components.bioner_tagger.model.output=softmax components.bioner_tagger.scheme=welt",
]


def main(
    corpus: str = typer.Argument("NCBI-disease"),
    data: Path = typer.Option(
        Path("../shared/data"), help="Mirror directory with ner/<corpus>/ and kb/ (relative to the project)."
    ),
    dictionary: Optional[Path] = typer.Option(
        None,
        help="Entity-name TSV for the tagger's dictionary features (default: <data>/kb/combined_entity_names.tsv).",
    ),
    steps: int = typer.Option(4000),
    seeds: List[int] = typer.Option([0, 1, 2], help="Seeds; every system trains once per seed."),
    jobs: int = typer.Option(2, help="Trainings at once."),
    gpu_id: int = typer.Option(-1, help="GPU for training (-1: CPU)."),
    doc_sents: int = typer.Option(40, help="Consecutive sentences per dev and test doc (train: one each)."),
    systems: List[str] = typer.Option(
        [spec.split("=", 1)[0] for spec in VARIANTS], "--system", help="Systems to train (default: all)."
    ),
    reuse: bool = typer.Option(
        False, help="Score models already in training/bench_tagger/<corpus> instead of training them again."
    ),
) -> None:
    known = [spec.split("=", 1)[0] for spec in VARIANTS]
    if set(systems) - set(known):
        raise typer.BadParameter(f"unknown --system {sorted(set(systems) - set(known))}; choose from {known}")
    os.chdir(ROOT)  # every path below, and so in the results, is relative to the project
    corpus_dir = Path("corpus") / corpus
    # Training reads single sentences; dev and test are read as documents, as the
    # project's `convert` writes them (devel_docs.spacy, test_docs.spacy).
    for split, file_name, n_sents in (
        ("train", "train.spacy", 1),
        ("devel", "devel_docs.spacy", doc_sents),
        ("test", "test_docs.spacy", doc_sents),
    ):
        command = [
            sys.executable,
            "-m",
            "spacy_bioner",
            "convert",
            "iob",
            str(data / "ner" / corpus / f"{split}.tsv"),
            str(corpus_dir / file_name),
            "--n-sents",
            str(n_sents),
        ]
        subprocess.run(command, check=True, cwd=ROOT)
    command = [
        sys.executable,
        "benchmarks/compare_systems.py",
        str(corpus_dir),
        f"benchmarks/results/tagger_{corpus}",
        "--models",
        f"training/bench_tagger/{corpus}",
        "--dev-file",
        "devel_docs.spacy",
        "--test-file",
        "test_docs.spacy",
    ]
    dictionary_setting = f"paths.dictionary={dictionary or data / 'kb' / 'combined_entity_names.tsv'}"
    command += [
        arg
        for spec in VARIANTS
        if spec.split("=", 1)[0] in systems
        for arg in ("--variant", spec if "tagger.cfg" not in spec else f"{spec} {dictionary_setting}")
    ]
    command += ["--steps", str(steps), "--jobs", str(jobs), "--gpu-id", str(gpu_id)] + [
        arg for seed in seeds for arg in ("--seed", str(seed))
    ]
    if reuse:
        command.append("--reuse")
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


if __name__ == "__main__":
    typer.run(main)
