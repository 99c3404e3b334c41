"""Train several pipeline variants on equal terms and tabulate their test scores.

Every variant is trained with `spacy train` from its config with the same data, seed and
number of steps (model-best is selected on the dev set), then evaluated on the test set
with the package's strict entity scorer, and timed with `nlp.pipe` over the test texts.

    python scripts/compare_systems.py corpus/NCBI-disease metrics/weighting \
        --variant "none=configs/tagger.cfg components.bioner_tagger.scheme=none" \
        --variant "welt=configs/tagger.cfg" --steps 4000
"""
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

import spacy
import typer
from spacy.language import Language
from spacy.tokens import DocBin
from spacy.training import Example

from spacy_bioner.scoring import score_entities


def train(config: str, overrides: List[str], corpus: Path, output: Path, steps: int, seed: int) -> float:
    """Run `spacy train` and return its wall-clock time in seconds."""
    command = [
        sys.executable, "-m", "spacy", "train", config, "--output", str(output),
        "--paths.train", str(corpus / "train.spacy"), "--paths.dev", str(corpus / "devel.spacy"),
        "--training.max_steps", str(steps), "--system.seed", str(seed),
    ]
    for override in overrides:
        key, value = override.split("=", 1)
        command += [f"--{key}", value]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def timed_predictions(model: Path, test_path: Path, batch_size: int) -> Tuple[Language, List[Example], float]:
    """The loaded pipeline, its predictions on the raw test texts (as in `spacy evaluate`), paired
    with the references, and words per second of `nlp.pipe` after a warm-up batch."""
    nlp = spacy.load(model)
    references = list(DocBin().from_disk(test_path).get_docs(nlp.vocab))
    texts = [doc.text for doc in references]
    list(nlp.pipe(texts[:64], batch_size=batch_size))
    start = time.perf_counter()
    predictions = list(nlp.pipe(texts, batch_size=batch_size))
    seconds = time.perf_counter() - start
    n_words = sum(len(doc) for doc in predictions)
    return nlp, [Example(pred, ref) for pred, ref in zip(predictions, references)], n_words / seconds


def interleaved_speeds(models: Dict[str, Path], texts: List[str], rounds: int = 3, batch_size: int = 64) -> Dict[str, float]:
    """Words per second of `nlp.pipe` for each pipeline, the best of `rounds` passes taken
    in turn (system A, B, ..., A, B, ...), so that every system meets the same machine
    load; on a shared machine, timings taken minutes apart are not comparable."""
    pipelines = {name: spacy.load(path) for name, path in models.items()}
    best = {name: 0.0 for name in models}
    for nlp in pipelines.values():
        list(nlp.pipe(texts[:64], batch_size=batch_size))
    for _ in range(rounds):
        for name, nlp in pipelines.items():
            start = time.perf_counter()
            n_words = sum(len(doc) for doc in nlp.pipe(texts, batch_size=batch_size))
            best[name] = max(best[name], n_words / (time.perf_counter() - start))
    return best


def evaluate(model: Path, test_path: Path, batch_size: int) -> Dict[str, object]:
    """Strict test P/R/F and words per second."""
    _, examples, words_per_second = timed_predictions(model, test_path, batch_size)
    return {**score_entities(examples), "words_per_second": words_per_second}


def markdown_table(rows: List[Dict[str, object]]) -> str:
    lines = [
        "| system | P | R | F1 | train s | words/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['system']} | {100 * row['ents_p']:.2f} | {100 * row['ents_r']:.2f} | "
            f"{100 * row['ents_f']:.2f} | {row['train_seconds']:.0f} | {row['words_per_second']:.0f} |"
        )
    return "\n".join(lines)


def main(
    corpus: Path = typer.Argument(..., help="Directory with train/devel/test.spacy."),
    output: Path = typer.Argument(..., help="Output prefix: writes OUTPUT.md and OUTPUT.json; models under OUTPUT/."),
    variant: List[str] = typer.Option(..., help="'name=config.cfg [section.key=value ...]', repeatable."),
    steps: int = typer.Option(4000, help="Training steps for every variant."),
    seed: int = typer.Option(0, help="Random seed for every variant."),
    batch_size: int = typer.Option(256, help="nlp.pipe batch size for the speed measurement."),
) -> None:
    rows = []
    for spec in variant:
        name, _, rest = spec.partition("=")
        config, *overrides = rest.split()
        model_dir = output / name
        seconds = train(config, overrides, corpus, model_dir, steps, seed)
        row = {"system": name, "config": rest, "steps": steps, "seed": seed, "train_seconds": seconds}
        row.update(evaluate(model_dir / "model-best", corpus / "test.spacy", batch_size))
        rows.append(row)
        print(markdown_table(rows), flush=True)
    table = markdown_table(rows)
    output.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{output}.md").write_text(f"Test set: {corpus}, {steps} steps, seed {seed}\n\n{table}\n", encoding="utf8")
    Path(f"{output}.json").write_text(json.dumps(rows, indent=2), encoding="utf8")
    print(f"\nWrote {output}.md and {output}.json")


if __name__ == "__main__":
    typer.run(main)
