"""Benchmark: spaCy's `ner` vs `bioner_tagger` (scheme none, welt; CRF output), all on
the same CNN tok2vec, the same training steps and seed. Writes
benchmarks/results/tagger_<corpus>.md/.json.

    python benchmarks/bench_tagger.py NCBI-disease --steps 4000
"""
import subprocess
import sys
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = [
    "spacy_ner=benchmarks/configs/spacy_ner.cfg",
    "bioner_tagger_none=configs/tagger.cfg components.bioner_tagger.scheme=none",
    "bioner_tagger_welt=configs/tagger.cfg components.bioner_tagger.scheme=welt",
    "bioner_tagger_crf=configs/tagger.cfg components.bioner_tagger.scheme=none components.bioner_tagger.model.output=crf",
]


def main(
    corpus: str = typer.Argument("NCBI-disease"),
    data: Path = typer.Option(ROOT.parent / "shared" / "data", help="Mirror directory with ner/<corpus>/."),
    steps: int = typer.Option(4000),
    seed: int = typer.Option(0),
) -> None:
    corpus_dir = ROOT / "corpus" / corpus
    for split in ("train", "devel", "test"):
        command = [sys.executable, "-m", "spacy_bioner", "convert", "iob", str(data / "ner" / corpus / f"{split}.tsv"), str(corpus_dir / f"{split}.spacy")]
        subprocess.run(command, check=True, cwd=ROOT)
    command = [sys.executable, "scripts/compare_systems.py", str(corpus_dir), f"benchmarks/results/tagger_{corpus}"]
    command += [arg for spec in VARIANTS for arg in ("--variant", spec)]
    command += ["--steps", str(steps), "--seed", str(seed)]
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


if __name__ == "__main__":
    typer.run(main)
