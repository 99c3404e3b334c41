"""Soak test: stream generated documents through a pipeline and watch throughput and
memory. Writes benchmarks/results/soak.md and soak.json (or --output PREFIX).

    python benchmarks/soak.py                       # 100,000 documents, rows every 10,000
    python benchmarks/soak.py --model PIPELINE      # an existing pipeline instead

Without --model, a small CNN `bioner_tagger` (the default tok2vec, softmax + WeLT) is trained
briefly on the first --train-sentences sentences of NCBI-disease's train.tsv, in a
separate process (its memory peak is not the soak's), and loaded. The
documents are generated from a seed, so every run sees the same stream: NCBI-disease
test sentences (one to five per document), word salad of the corpus vocabulary mixed
with odd Unicode (emoji, combining marks, right-to-left and zero-width characters,
control characters), random code points, empty and whitespace-only documents, and every
--long-every-th document a long one of up to --max-chars characters (the first exactly
that long, and never two in one batch, so the first chunk already holds the costliest
batch a later chunk can bring: peak memory after it can only grow through a leak).

Every --every documents (default: a tenth of them) a row is printed: documents done,
documents and words per second for the chunk, current RSS and peak RSS of this process
(stdlib only: /proc/self/statm and resource.getrusage). The run passes when the peak RSS
at the end exceeds the peak RSS after the first chunk by at most --max-growth-mib; the
exit status is 1 otherwise. Each chunk runs inside `nlp.memory_zone()` (spaCy >= 3.8),
which frees the strings and lexemes the chunk's documents added to the vocabulary;
--no-memory-zone shows the growth without it.
"""

import json
import multiprocessing
import platform
import random
import resource
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import spacy
import typer
from paths import display_arg, display_command
from spacy.language import Language
from spacy.training import Example
from spacy.util import minibatch

from spacy_bioner.corpora.iob import read_iob, read_tagged_sentences

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
ODD = [
    "\u200b",
    "\u200d",
    "\u202e",
    "\u2066",
    "\ufeff",
    "\u00ad",
    "\u0301",
    "\u20dd",
    "😀",
    "🧬",
    "👩‍🔬",
    "𝔘𝔫𝔦",
    "漢字",
    "کلمه",
    "α-synuclein",
    "IL-2",
    "\t",
    "\x00",
    "\x1b[31m",
    "\x7f",
    "\u2028",
    "\r\n",
    "  ",
    "ﬁ",
    "Å",
]


def peak_rss_mib() -> float:
    """Peak resident set size of this process (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def rss_mib() -> Optional[float]:
    """Current resident set size (Linux); None where /proc is missing."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * resource.getpagesize() / (1024 * 1024)


def default_pipeline(path: Path, data: Path, n_sentences: int, epochs: int, seed: int) -> None:
    """Train the default pipeline in a spawned process and save it to `path`, so that
    training's memory peak is not counted as the soak's."""
    process = multiprocessing.get_context("spawn").Process(
        target=train_tagger, args=(path, data, n_sentences, epochs, seed)
    )
    process.start()
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"training the default pipeline failed (exit code {process.exitcode})")


def train_tagger(path: Path, data: Path, n_sentences: int, epochs: int, seed: int) -> None:
    """bioner_tagger with its default CNN tok2vec and the softmax output with WeLT
    weights (the setting of the committed results), trained on the first NCBI-disease
    sentences and saved to `path`."""
    spacy.util.fix_random_seed(seed)
    nlp = spacy.blank("en")
    nlp.add_pipe("bioner_tagger", config={"model": {"output": "softmax"}, "scheme": "welt"})
    references, _ = read_iob(data / "ner" / "NCBI-disease" / "train.tsv", nlp.vocab)
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in references[:n_sentences]]
    optimizer = nlp.initialize(lambda: examples)
    rng = random.Random(seed)
    for epoch in range(epochs):
        rng.shuffle(examples)
        losses: Dict[str, float] = {}
        for batch in minibatch(examples, 32):
            nlp.update(batch, sgd=optimizer, losses=losses)
        print(f"epoch {epoch + 1}/{epochs}: loss {losses['bioner_tagger']:.2f}", flush=True)
    nlp.to_disk(path)


def generate(sentences: List[str], n_docs: int, long_every: int, max_chars: int, seed: int) -> Iterator[str]:
    """The document stream. Every `long_every`-th document (from the 8th on) is long, the
    first of them exactly `max_chars` characters; `long_every` above the batch size puts
    at most one in a batch, so the first chunk already holds the costliest batch."""
    rng = random.Random(seed)
    words = sorted({word for sentence in sentences for word in sentence.split()})
    for i in range(n_docs):
        if i % long_every == 7:
            yield _long(rng, sentences, max_chars if i == 7 else max_chars // 10, max_chars)
            continue
        kind = rng.random()
        if kind < 0.02:
            yield ""
        elif kind < 0.04:
            yield rng.choice([" ", "\n", "\t \n", "\u3000", "\r\n\r\n"])
        elif kind < 0.65:
            yield " ".join(rng.choice(sentences) for _ in range(rng.randint(1, 5)))
        elif kind < 0.85:
            pieces = [rng.choice(words) if rng.random() < 0.8 else rng.choice(ODD) for _ in range(rng.randint(1, 60))]
            yield "".join(piece + rng.choice([" ", " ", " ", "", "\n"]) for piece in pieces)
        else:
            yield "".join(_code_point(rng) for _ in range(rng.randint(1, 400)))


def _code_point(rng: random.Random) -> str:
    """A random character of the Basic Multilingual Plane or beyond, never a surrogate."""
    while True:
        code = rng.randint(0, 0x2FFFF) if rng.random() < 0.9 else rng.randint(0, 0x10FFFF)
        if not 0xD800 <= code <= 0xDFFF:
            return chr(code)


def _long(rng: random.Random, sentences: List[str], low: int, high: int) -> str:
    length = rng.randint(low, high)
    parts: List[str] = []
    size = 0
    while size < length:
        parts.append(rng.choice(sentences))
        size += len(parts[-1]) + 1
    return " ".join(parts)[:length]


def main(
    model: Optional[str] = typer.Option(None, help="Pipeline to load; default: train a small CNN bioner_tagger."),
    docs: int = typer.Option(100_000, help="Documents to stream."),
    every: int = typer.Option(0, help="A row every N documents (0: a tenth of --docs)."),
    batch_size: int = typer.Option(64, help="nlp.pipe batch size."),
    max_chars: int = typer.Option(50_000, help="Length of the longest generated documents."),
    long_every: int = typer.Option(500, help="Every N-th document is long (a tenth of --max-chars up to it)."),
    max_growth_mib: float = typer.Option(64.0, help="Allowed peak RSS growth from the first chunk to the end."),
    memory_zone: bool = typer.Option(True, help="Run each chunk inside nlp.memory_zone() (spaCy >= 3.8)."),
    train_sentences: int = typer.Option(300, help="Default pipeline: NCBI-disease training sentences."),
    epochs: int = typer.Option(5, help="Default pipeline: training epochs."),
    seed: int = typer.Option(0),
    data: Path = typer.Option(DATA, help="Mirror directory with ner/NCBI-disease/."),
    output: Path = typer.Option(ROOT / "benchmarks" / "results" / "soak", help="Writes OUTPUT.md and OUTPUT.json."),
) -> None:
    command = display_command(["benchmarks/soak.py", *sys.argv[1:]])
    every = every or max(docs // 10, 1)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if model is None:
            default_pipeline(Path(tmp) / "pipeline", data, train_sentences, epochs, seed)
        nlp = spacy.load(model or Path(tmp) / "pipeline")
    setup_seconds = time.perf_counter() - start
    sentences = [" ".join(s.tokens) for s in read_tagged_sentences(data / "ner" / "NCBI-disease" / "test.tsv")]
    use_zone = memory_zone and hasattr(nlp, "memory_zone")
    if long_every <= batch_size:
        raise typer.BadParameter(f"--long-every ({long_every}) must exceed --batch-size ({batch_size})")
    stream = generate(sentences, docs, long_every, max_chars, seed)
    rows = []
    print(f"{'docs':>8} {'docs/s':>8} {'words/s':>9} {'RSS MiB':>8} {'peak MiB':>9}", flush=True)
    done = 0
    while done < docs:
        chunk = list(islice(stream, min(every, docs - done)))
        tick = time.perf_counter()
        n_words = n_ents = 0
        if use_zone:
            with nlp.memory_zone():
                n_words, n_ents = _annotate(nlp, chunk, batch_size)
        else:
            n_words, n_ents = _annotate(nlp, chunk, batch_size)
        seconds = time.perf_counter() - tick
        done += len(chunk)
        row = {
            "docs": done,
            "chunk_seconds": seconds,
            "docs_per_second": len(chunk) / seconds,
            "words_per_second": n_words / seconds,
            "entities": n_ents,
            "rss_mib": rss_mib(),
            "peak_rss_mib": peak_rss_mib(),
        }
        rows.append(row)
        rss = f"{row['rss_mib']:.0f}" if row["rss_mib"] is not None else "n/a"
        print(
            f"{done:>8} {row['docs_per_second']:>8.0f} {row['words_per_second']:>9.0f} {rss:>8} {row['peak_rss_mib']:>9.0f}",
            flush=True,
        )
    growth = rows[-1]["peak_rss_mib"] - rows[0]["peak_rss_mib"]
    passed = growth <= max_growth_mib
    rss_growth = None if rows[0]["rss_mib"] is None else rows[-1]["rss_mib"] - rows[0]["rss_mib"]
    result = {
        "command": command,
        "model": display_arg(model)
        if model
        else f"bioner_tagger (default CNN, softmax + WeLT), {train_sentences} NCBI-disease train sentences x {epochs} epochs",
        "docs": docs,
        "every": every,
        "batch_size": batch_size,
        "max_chars": max_chars,
        "long_every": long_every,
        "memory_zone": use_zone,
        "seed": seed,
        "setup_seconds": setup_seconds,
        "total_seconds": time.perf_counter() - start,
        "peak_growth_mib": growth,
        "rss_growth_mib": rss_growth,
        "max_growth_mib": max_growth_mib,
        "passed": passed,
        "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}, spaCy {spacy.__version__}",
        "rows": rows,
    }
    write_results(output, result)
    verdict = "PASS" if passed else "FAIL"
    print(
        f"{verdict}: peak RSS grew {growth:.1f} MiB after the first chunk (bound {max_growth_mib:.0f} MiB); results in {output}.md"
    )
    if not passed:
        raise typer.Exit(code=1)


def _annotate(nlp: Language, texts: List[str], batch_size: int):
    n_words = n_ents = 0
    for doc in nlp.pipe(texts, batch_size=batch_size):
        n_words += len(doc)
        n_ents += len(doc.ents)
    return n_words, n_ents


def write_results(output: Path, result: dict) -> None:
    zone = "each chunk in nlp.memory_zone()" if result["memory_zone"] else "no memory zone"
    lines = [
        f"Command: `{result['command']}`",
        "",
        f"Model: {result['model']}; {result['docs']:,} generated documents (seed {result['seed']}; every "
        f"{result['long_every']}th long, up to {result['max_chars']:,} characters), batch size {result['batch_size']}, "
        f"{zone}; {result['machine']}.",
        "",
        "| docs | docs/s | words/s | RSS MiB | peak RSS MiB |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        rss = f"{row['rss_mib']:.0f}" if row["rss_mib"] is not None else "n/a"
        lines.append(
            f"| {row['docs']:,} | {row['docs_per_second']:.0f} | {row['words_per_second']:.0f} | {rss} | {row['peak_rss_mib']:.0f} |"
        )
    verdict = "passed" if result["passed"] else "FAILED"
    lines += [
        "",
        f"Peak RSS growth after the first chunk: {result['peak_growth_mib']:.1f} MiB (bound {result['max_growth_mib']:.0f} MiB): "
        f"{verdict}"
        + (f"; RSS growth {result['rss_growth_mib']:+.1f} MiB" if result["rss_growth_mib"] is not None else "")
        + f". Setup (training in a separate process, loading) {result['setup_seconds']:.0f} s, total {result['total_seconds']:.0f} s.",
    ]
    output.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{output}.md").write_text("\n".join(lines) + "\n", encoding="utf8")
    Path(f"{output}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")


if __name__ == "__main__":
    typer.run(main)
