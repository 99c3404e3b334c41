"""Throughput of `bioner annotate`: documents and words per second with 1 and 2
processes and on a local two-worker Dask cluster, same pipeline and input. Writes
benchmarks/results/annotate.md/.json.

    python benchmarks/bench_annotate.py MODEL --n-docs 6000

The input is sentences of NCBI-disease and BC5CDR (train splits) as JSONL. Times
cover reading, annotating and writing; pipeline loading is outside the timed part for
the local runs, and worker-side loading is inside it for Dask (cluster start-up is not).
"""

import json
import tempfile
import time
from pathlib import Path

import spacy
import typer
from paths import display_arg

from spacy_bioner.annotate import Summary, Writer, annotate_records, iter_inputs
from spacy_bioner.corpora.iob import read_tagged_sentences
from spacy_bioner.distributed import annotate_on_cluster, local_cluster

ROOT = Path(__file__).resolve().parents[1]


def write_input(path: Path, data: Path, n_docs: int) -> None:
    sentences = []
    for corpus in ("NCBI-disease", "BC5CDR"):
        sentences += [" ".join(s.tokens) for s in read_tagged_sentences(data / "ner" / corpus / "train.tsv")]
    with path.open("w", encoding="utf8") as file:
        for i in range(n_docs):
            file.write(json.dumps({"id": i, "text": sentences[i % len(sentences)]}) + "\n")


def run(label: str, annotate, source: Path, output: Path) -> dict:
    summary = Summary()
    records = iter_inputs(source, "jsonl", 1_000_000)
    writer = Writer(output, "jsonl")
    start = time.perf_counter()
    annotate(records, writer, summary)
    writer.close()
    seconds = time.perf_counter() - start
    return {
        "setup": label,
        "docs": summary.n_annotated,
        "words": summary.n_words,
        "seconds": seconds,
        "docs_per_second": summary.n_annotated / seconds,
        "words_per_second": summary.n_words / seconds,
    }


def main(
    model: str = typer.Argument(...),
    n_docs: int = typer.Option(6000),
    batch_size: int = typer.Option(64),
    data: Path = typer.Option(ROOT.parent / "shared" / "data"),
) -> None:
    nlp = spacy.load(model)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "input.jsonl"
        write_input(source, data, n_docs)
        for n_process in (1, 2):
            rows.append(
                run(
                    f"{n_process} process(es)",
                    lambda r, w, s: annotate_records(nlp, r, w, s, batch_size, n_process),
                    source,
                    Path(tmp) / f"out{n_process}.jsonl",
                )
            )
            print(rows[-1], flush=True)
        with local_cluster(2) as client:
            rows.append(
                run(
                    "Dask local cluster, 2 workers",
                    lambda r, w, s: annotate_on_cluster(client, model, r, w, s, batch_size=batch_size),
                    source,
                    Path(tmp) / "dask.jsonl",
                )
            )
            print(rows[-1], flush=True)
        same = (
            (Path(tmp) / "out1.jsonl").read_text()
            == (Path(tmp) / "out2.jsonl").read_text()
            == (Path(tmp) / "dask.jsonl").read_text()
        )
    lines = [
        f"Model: {display_arg(model)}; {n_docs} documents (NCBI-disease + BC5CDR train sentences), batch size {batch_size}; outputs identical: {same}",
        "",
        "| setup | docs/s | words/s | seconds |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['setup']} | {r['docs_per_second']:.0f} | {r['words_per_second']:.0f} | {r['seconds']:.1f} |"
        for r in rows
    ]
    out = ROOT / "benchmarks" / "results" / "annotate"
    Path(f"{out}.md").write_text("\n".join(lines) + "\n", encoding="utf8")
    Path(f"{out}.json").write_text(json.dumps(rows, indent=2), encoding="utf8")
    print("\n".join(lines))


if __name__ == "__main__":
    typer.run(main)
