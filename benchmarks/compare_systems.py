"""Train several pipeline variants on equal terms and tabulate their test scores.

Every variant is trained with `spacy train` from its config with the same data, steps
and seeds (model-best is selected on the dev set, never on test), then scored on the
test set with the package's strict entity scorer. Rows give the mean and spread over
the seeds. Speed is measured once all are trained: the first seed's models are loaded
in one process and timed in turn (A, B, ..., A, B, ...), best of three passes, on one
thread; a single pass per system on a shared machine measures the machine's load.

    python benchmarks/compare_systems.py corpus/NCBI-disease metrics/weighting \
        --variant "none=configs/tagger.cfg components.bioner_tagger.model.output=softmax" \
        --variant "welt=configs/tagger.cfg components.bioner_tagger.model.output=softmax components.bioner_tagger.scheme=welt" \
        --steps 4000 --seed 0 --seed 1 --seed 2 --jobs 2
"""

import json
import math
import os

# One thread for the numeric libraries, set before they load: timings then compare like
# with like, and parallel trainings (which inherit it) do not fight over the cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import spacy
import typer
from spacy.cli._util import parse_config_overrides
from spacy.language import Language
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.util import dict_to_dot, load_config

from spacy_bioner.scoring import score_entities


def train_settings(
    overrides: List[str], corpus: Path, steps: int, seed: int, dev_file: str = "devel.spacy"
) -> Dict[str, str]:
    """The config settings a variant's training gets: its data, steps and seed, then the
    variant's own `section.key=value` overrides (as `spacy train` options)."""
    settings = {
        "paths.train": str(corpus / "train.spacy"),
        "paths.dev": str(corpus / dev_file),
        "training.max_steps": str(steps),
        "system.seed": str(seed),
    }
    for override in overrides:
        key, value = override.split("=", 1)
        settings[key] = value
    return settings


def train(
    config: str,
    overrides: List[str],
    corpus: Path,
    output: Path,
    steps: int,
    seed: int,
    gpu_id: int = -1,
    dev_file: str = "devel.spacy",
) -> float:
    """Run `spacy train` and return its wall-clock time in seconds."""
    command = [sys.executable, "-m", "spacy", "train", config, "--output", str(output), "--gpu-id", str(gpu_id)]
    for key, value in train_settings(overrides, corpus, steps, seed, dev_file).items():
        command += [f"--{key}", value]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def config_mismatches(model: Path, config: str, settings: Dict[str, str]) -> List[str]:
    """The settings of `config` with `settings` applied (as `spacy train` applies them)
    that differ in the config saved with `model`, as 'section.key: saved X, expected Y'."""
    expected = load_config(config, overrides=parse_config_overrides([f"--{k}={v}" for k, v in settings.items()]))
    saved = dict_to_dot(load_config(model / "config.cfg"))
    return [
        f"{key}: saved {saved.get(key, '(missing)')!r}, expected {value!r}"
        for key, value in dict_to_dot(expected).items()
        if saved.get(key, "(missing)") != value
    ]


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


def interleaved_speeds(
    models: Dict[str, Path], texts: List[str], rounds: int = 3, batch_size: int = 64
) -> Dict[str, float]:
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


def mean_sd(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def dev_score(model: Path) -> float:
    """The dev-set entity F1 that `spacy train` recorded for the saved model."""
    meta = json.loads((model / "meta.json").read_text(encoding="utf8"))
    return float(meta["performance"].get("ents_f") or 0.0)


def test_scores(model: Path, test_path: Path) -> Dict[str, object]:
    """Strict test P/R/F of the saved model on the raw test texts."""
    nlp = spacy.load(model)
    references = list(DocBin().from_disk(test_path).get_docs(nlp.vocab))
    predictions = nlp.pipe((doc.text for doc in references), batch_size=256)
    return score_entities([Example(pred, ref) for pred, ref in zip(predictions, references)])


def summarise(name: str, config: str, runs: List[Dict[str, object]]) -> Dict[str, object]:
    """One row per variant: mean and spread over its seeds."""
    row: Dict[str, object] = {"system": name, "config": config, "seeds": [run["seed"] for run in runs], "runs": runs}
    for key in ("ents_p", "ents_r", "ents_f", "dev_f"):
        row[key], row[f"{key}_sd"] = mean_sd([float(run[key]) for run in runs])
    # A reused model has no train time; a mean over the others would pass for the row's.
    times = [run["train_seconds"] for run in runs]
    row["train_seconds"], row["train_seconds_sd"] = (None, None) if None in times else mean_sd(times)
    return row


def markdown_table(rows: List[Dict[str, object]]) -> str:
    lines = [
        "| system | dev F1 | test P | test R | test F1 (± sd) | train s | words/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        speed = row.get("words_per_second")
        lines.append(
            f"| {row['system']} | {100 * row['dev_f']:.2f} | {100 * row['ents_p']:.2f} | {100 * row['ents_r']:.2f} | "
            f"{100 * row['ents_f']:.2f} ± {100 * row['ents_f_sd']:.2f} | "
            + (f"{row['train_seconds']:.0f} | " if row["train_seconds"] is not None else "- | ")
            + (f"{speed:.0f} |" if speed else "- |")
        )
    return "\n".join(lines)


def main(
    corpus: Path = typer.Argument(..., help="Directory with train.spacy and the dev and test files."),
    output: Path = typer.Argument(..., help="Output prefix: writes OUTPUT.md and OUTPUT.json."),
    variant: List[str] = typer.Option(..., help="'name=config.cfg [section.key=value ...]', repeatable."),
    steps: int = typer.Option(4000, help="Training steps for every variant."),
    seed: List[int] = typer.Option([0], help="Random seed; repeat for several (every variant gets every seed)."),
    jobs: int = typer.Option(1, help="Trainings run at once (each single-threaded)."),
    speed_rounds: int = typer.Option(3, help="Passes per system for the speed comparison (best kept)."),
    models: Optional[Path] = typer.Option(None, help="Directory for the trained models (default: OUTPUT/)."),
    gpu_id: int = typer.Option(-1, help="GPU for training (-1: CPU); scoring and timing stay on the CPU."),
    dev_file: str = typer.Option("devel.spacy", help="The dev file in CORPUS (model-best is chosen on it)."),
    test_file: str = typer.Option("test.spacy", help="The test file in CORPUS."),
    reuse: bool = typer.Option(
        False,
        help="Score a variant's model-best already in MODELS instead of training it again; its saved config must "
        "match the variant's config, data, steps and seed (an error names any difference). Its train time is then "
        "not reported.",
    ),
) -> None:
    """Train every variant with every seed (model-best selected on dev), score it on
    test, and time the first seed's models against each other in one process."""
    specs = []
    for spec in variant:
        name, _, rest = spec.partition("=")
        config, *overrides = rest.split()
        specs.append((name, rest, config, overrides))
    models = models or output
    jobs_list = [(name, rest, config, overrides, s) for s in seed for name, rest, config, overrides in specs]

    def run(job) -> Dict[str, object]:
        name, rest, config, overrides, s = job
        model_dir = models / f"{name}_seed{s}"
        best = model_dir / "model-best"
        if reuse and best.is_dir():
            mismatches = config_mismatches(best, config, train_settings(overrides, corpus, steps, s, dev_file))
            if mismatches:
                raise SystemExit(
                    f"--reuse: {best} was not trained as variant {name!r} with seed {s} "
                    f"({'; '.join(mismatches[:5])}); delete it or run without --reuse"
                )
            seconds = None
        else:
            seconds = train(config, overrides, corpus, model_dir, steps, s, gpu_id, dev_file)
        return {
            "system": name,
            "seed": s,
            "train_seconds": seconds,
            "dev_f": dev_score(best),
            **test_scores(best, corpus / test_file),
        }

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        runs = list(pool.map(run, jobs_list))
    rows = [summarise(name, rest, [r for r in runs if r["system"] == name]) for name, rest, _, _ in specs]
    texts = [doc.text for doc in DocBin().from_disk(corpus / test_file).get_docs(spacy.blank("en").vocab)]
    speeds = interleaved_speeds(
        {name: models / f"{name}_seed{seed[0]}" / "model-best" for name, *_ in specs},
        texts,
        rounds=speed_rounds,
        batch_size=256,
    )
    for row in rows:
        row["words_per_second"] = speeds[row["system"]]
    table = markdown_table(rows)
    print(table)
    output.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"Corpus: {corpus.as_posix()}, {steps} steps, seeds {', '.join(map(str, seed))} (model-best on dev). "
        f"Test F1 is the mean over the seeds ± the sample standard deviation. Speed: `nlp.pipe` over the test texts, "
        f"batch 256, one thread, every system's seed-{seed[0]} model loaded in one process and timed in turn, "
        f"best of {speed_rounds} passes. train s: wall time of `spacy train`, {jobs} at once"
        + (" ('-': at least one seed's existing model was scored, --reuse)." if reuse else ".")
    )
    Path(f"{output}.md").write_text(f"{header}\n\n{table}\n", encoding="utf8")
    Path(f"{output}.json").write_text(json.dumps(rows, indent=2), encoding="utf8")
    print(f"\nWrote {output}.md and {output}.json")


if __name__ == "__main__":
    typer.run(main)
