"""The `bioner` command line (also `python -m spacy_bioner`)."""

import functools
import math
import os
import time
from enum import Enum
from pathlib import Path
from typing import Any, Callable, List, Optional

import spacy
import srsly
import typer
from spacy.tokens import DocBin

from .annotate import (
    INPUT_FORMATS,
    OUTPUT_FORMATS,
    OutputError,
    Summary,
    Writer,
    annotate_records,
    guess_input_format,
    input_fingerprint,
    iter_inputs,
)
from .corpora import CorpusFormatError, read_iob, read_spert, write_iob, write_spert
from .corpora.iob import tag_counts
from .corpora.spert import DEFAULT_SPANS_KEY, add_symmetric_reverses, drop_symmetric_reverses, symmetric_relation_types
from .evaluation import errors_html, evaluate_examples, format_table, predict_examples
from .weights import SCHEMES, weights_table

# What a TEXT|DATA argument of `bioner visualize` is read as a file for.
DATA_SUFFIXES = (".spacy", ".tsv", ".iob", ".conll", ".txt", ".jsonl", ".json")

app = typer.Typer(help="spacy-bioner: biomedical NER and relation extraction for spaCy.", no_args_is_help=True)


class TagFormat(str, Enum):
    iob = "iob"
    iobes = "iobes"
    spert = "spert"


def _fail(message: str) -> None:
    """End the command with `message` as one line on stderr and exit code 2 (a usage or
    input error)."""
    typer.secho(" ".join(message.split()), fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _clean_errors(command: Callable) -> Callable:
    """Make a file the command cannot read or write (OSError) or a malformed corpus
    (CorpusFormatError) end it with one line naming the file, instead of a traceback."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (OSError, CorpusFormatError) as err:
            _fail(str(err))

    return run


def _check(condition: Callable[[Any], bool], requirement: str) -> Callable[[Any], Any]:
    """An option callback: a usage error (exit code 2) saying what the value must be,
    at parse time, unless `condition(value)`."""

    def callback(value: Any) -> Any:
        if value is not None and not condition(value):
            raise typer.BadParameter(f"must be {requirement}, got {value}")
        return value

    return callback


def _language(lang: str) -> str:
    """Callback of --lang: a language spaCy has."""
    try:
        spacy.util.get_lang_class(lang)
    except ImportError:
        raise typer.BadParameter(f"spaCy has no language {lang!r} (a code such as en, de, xx)") from None
    return lang


def _dask_address(address: Optional[str]) -> Optional[str]:
    """Callback of --dask: `local:N` needs N >= 1 workers."""
    if address is not None and address.startswith("local:"):
        workers = address[len("local:") :]
        if not (workers.isascii() and workers.isdigit() and int(workers) >= 1):
            raise typer.BadParameter(f"local:N needs a number of workers N >= 1, got {address!r}")
    return address


def _read_docs(path: Path, nlp) -> List:
    """Docs from a .spacy file or an IOB/IOBES TSV file."""
    if path.suffix == ".spacy":
        return list(_doc_bin(path).get_docs(nlp.vocab))
    try:
        docs, _ = read_iob(path, nlp.vocab)
    except (CorpusFormatError, FileNotFoundError, UnicodeDecodeError) as err:
        _fail(str(err))
    return docs


def _doc_bin(path: Path) -> DocBin:
    """The DocBin of a .spacy file, or one line naming the file and the problem."""
    if not path.is_file():
        _fail(f"No such file: {path}")
    try:
        return DocBin().from_disk(path)
    except Exception as err:  # msgpack, zlib and spaCy errors of a damaged file
        _fail(f"{path}: not a spaCy DocBin file ({type(err).__name__}: {err})")


@app.command()
@_clean_errors
def convert(
    tag_format: TagFormat = typer.Argument(
        ..., metavar="FORMAT", help="Format of the other side: iob or iobes (TSV), or spert (JSON)."
    ),
    input_path: Path = typer.Argument(..., metavar="INPUT", help="TSV or SpERT JSON file, or a .spacy file."),
    output_path: Path = typer.Argument(
        ..., metavar="OUTPUT", help=".spacy file, or a TSV / JSON file when INPUT is .spacy."
    ),
    lang: str = typer.Option("en", callback=_language, help="Language of the blank pipeline whose vocab the docs use."),
    spans_key: str = typer.Option(
        DEFAULT_SPANS_KEY, help="spert: span group of the entities (e.g. the relation component's name)."
    ),
    types: Optional[Path] = typer.Option(
        None,
        help="spert: SpERT types file; relation types marked symmetric are stored in both directions (and written once).",
    ),
    n_sents: int = typer.Option(
        1,
        min=1,
        help="iob/iobes: sentences per doc, for files without -DOCSTART- lines (which mark the docs when present). "
        "Consecutive sentences of one abstract in one doc give document-level components their context.",
    ),
) -> None:
    """Convert IOB/IOBES TSV or SpERT JSON (entities and relations) to a spaCy DocBin
    (one doc per record, or per document or `--n-sents` sentences of a TSV file), or back."""
    if input_path.exists() and output_path.exists() and os.path.samefile(input_path, output_path):
        _fail(f"INPUT and OUTPUT are the same file ({input_path}): converting in place would overwrite the input")
    nlp = spacy.blank(lang)
    if tag_format == TagFormat.spert:
        symmetric = set()
        if types is not None:
            try:
                symmetric = symmetric_relation_types(types)
            except ValueError as err:
                _fail(f"--types {types}: {err}")
        _convert_spert(input_path, output_path, nlp, spans_key, symmetric)
        return
    if input_path.suffix == ".spacy":
        try:
            n = write_iob(_read_docs(input_path, nlp), output_path, tag_format.value)
        except ValueError as err:
            _fail(f"{input_path}: {err}")
        typer.echo(f"Wrote {n} sentences to {output_path} ({tag_format.value})")
        return
    if output_path.suffix != ".spacy":
        _fail(f"OUTPUT must end in .spacy when INPUT is a TSV file: {output_path}")
    try:
        docs, repairs = read_iob(input_path, nlp.vocab, n_sents)
    except (CorpusFormatError, FileNotFoundError, UnicodeDecodeError) as err:
        _fail(str(err))
    output_path.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs).to_disk(output_path)
    n_ents = sum(len(doc.ents) for doc in docs)
    n_sentences = sum(len(list(doc.sents)) if doc.has_annotation("SENT_START") else 1 for doc in docs)
    typer.echo(f"Wrote {len(docs)} docs ({n_sentences} sentences), {n_ents} entities to {output_path}")
    if repairs:
        typer.echo(f"Repaired {repairs} I-/E- tags that did not continue an entity (read as the start of a new one)")


def _convert_spert(input_path: Path, output_path: Path, nlp, spans_key: str, symmetric: set) -> None:
    """SpERT JSON -> DocBin (relations kept as user data), or DocBin -> SpERT JSON.
    Symmetric relations are stored in both directions and written once."""
    if input_path.suffix == ".spacy":
        docs = _read_docs(input_path, nlp)
        for doc in docs:
            drop_symmetric_reverses(doc, symmetric)
        output_path.parent.mkdir(parents=True, exist_ok=True)
        n = write_spert(docs, output_path, spans_key)
        typer.echo(f"Wrote {n} records to {output_path}")
        return
    if output_path.suffix != ".spacy":
        _fail(f"OUTPUT must end in .spacy when INPUT is a SpERT JSON file: {output_path}")
    try:
        docs = read_spert(input_path, nlp.vocab, spans_key)
    except (CorpusFormatError, FileNotFoundError, UnicodeDecodeError) as err:
        _fail(str(err))
    for doc in docs:
        add_symmetric_reverses(doc, symmetric)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs, store_user_data=True).to_disk(output_path)
    n_ents = sum(len(doc.spans[spans_key]) for doc in docs)
    n_rels = sum(len(doc._.relations) for doc in docs)
    typer.echo(
        f"Wrote {len(docs)} documents, {n_ents} entities (doc.spans[{spans_key!r}]), {n_rels} relations to {output_path}"
    )


@app.command()
@_clean_errors
def weights(
    input_path: Path = typer.Argument(..., metavar="INPUT", help="Training data: IOB TSV or .spacy."),
    scheme: str = typer.Option("welt", help="Scheme to mark with * in the table."),
    beta: float = typer.Option(
        0.9, callback=_check(lambda beta: 0 <= beta < 1, "in [0, 1)"), help="ENS beta, in [0, 1)."
    ),
    strength: float = typer.Option(
        1.0,
        callback=_check(lambda s: math.isfinite(s) and s >= 0, "a finite number >= 0"),
        help="Weight strength (exponent), >= 0.",
    ),
) -> None:
    """Print the tag counts of a corpus and its class weights under every scheme."""
    if scheme not in SCHEMES:
        _fail(f"Unknown scheme {scheme!r}; valid schemes: {', '.join(SCHEMES)}")
    counts = tag_counts(_read_docs(input_path, spacy.blank("en")))
    if not counts:
        _fail(f"{input_path} has no tokens")
    try:
        lines = weights_table(counts, scheme, beta, strength)
    except ValueError as err:
        _fail(f"{input_path}: {err}")
    for line in lines:
        typer.echo(line)
    typer.echo(f"(ens with beta={beta}; strength={strength}; * = --scheme)")


@app.command()
@_clean_errors
def evaluate(
    model: str = typer.Argument(..., help="Pipeline: a directory or an installed package name."),
    data: Path = typer.Argument(..., help="Gold data: .spacy, or IOB/IOBES TSV."),
    output: Path = typer.Option(None, help="Write the scores and error counts to this JSON file."),
    html: Path = typer.Option(None, help="Write an HTML page listing every error in context."),
    spans_key: str = typer.Option(None, help="Evaluate this span group instead of doc.ents."),
    batch_size: int = typer.Option(256, min=1, help="Batch size for nlp.pipe."),
    dataset: Optional[str] = typer.Option(
        None,
        help="Mark the docs as this dataset's, with the entity types of the gold data (the LLM tagger then tags only those, with that dataset's instruction).",
    ),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU to run on, as in spacy train (-1: the CPU)."),
) -> None:
    """Strict P/R/F per entity type and error categories (each error counted once);
    relation P/R/F (strict and boundaries) when the gold data has relations."""
    for path in (output, html):
        _output_folder(path)
    _use_gpu(gpu_id)
    nlp = _load_pipeline(model)
    references = _read_docs(data, nlp)
    examples = predict_examples(nlp, references, batch_size, dataset, spans_key)
    if spans_key is not None and examples and not any(spans_key in eg.predicted.spans for eg in examples):
        written = sorted({key for eg in examples for key in eg.predicted.spans})
        _fail(
            f"--spans-key {spans_key!r}: {model} writes no span group of that name (it writes: {', '.join(written) or 'none'})"
        )
    results = evaluate_examples(examples, spans_key, spans_key)
    typer.echo(format_table(results))
    if output is not None:
        srsly.write_json(output, results)
        typer.echo(f"\nWrote {output}")
    if html is not None:
        html.write_text(errors_html(examples, spans_key, spans_key), encoding="utf8")
        typer.echo(f"Wrote {html}")


def _use_gpu(gpu_id: int) -> None:
    """Create the models loaded from now on on GPU `gpu_id` (-1: stay on the CPU)."""
    if gpu_id >= 0:
        try:
            spacy.require_gpu(gpu_id)
        except ValueError as err:
            _fail(f"--gpu-id {gpu_id}: {err}")


def _output_folder(path: Optional[Path]) -> None:
    """Create the folder of an output file before the work, so that an unwritable path
    fails first, in one line naming it."""
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        _fail(f"Cannot write {path}: {err.strerror} ({err.filename})")


def _load_pipeline(model: str):
    """The pipeline, or one line saying why it cannot be loaded (a missing, damaged or
    tampered directory, a package that is not a pipeline)."""
    try:
        return spacy.load(model)
    except Exception as err:
        _fail(f"Cannot load pipeline {model!r}: {type(err).__name__}: {err}")


@app.command()
@_clean_errors
def annotate(
    model: str = typer.Argument(..., help="Pipeline: a directory or an installed package name."),
    input_path: Path = typer.Argument(
        ...,
        metavar="INPUT",
        help="Text file (a doc per line), JSONL (id, text), PubTator, or a directory of .txt files.",
    ),
    output_path: Path = typer.Argument(..., metavar="OUTPUT", help="JSONL or PubTator file, or a directory for BRAT."),
    input_format: str = typer.Option("auto", help=f"auto or one of: {', '.join(INPUT_FORMATS)}."),
    output_format: str = typer.Option("jsonl", help=f"One of: {', '.join(OUTPUT_FORMATS)}."),
    batch_size: int = typer.Option(64, min=1, help="Documents per nlp.pipe batch."),
    n_process: int = typer.Option(1, min=1, help="Processes on this machine (at most its number of cores)."),
    max_chars: int = typer.Option(
        1_000_000,
        min=1,
        help="Longer documents are reported as bad and skipped (of a longer line, at most 6 bytes per character are read).",
    ),
    dask: Optional[str] = typer.Option(
        None, callback=_dask_address, help="Run on Dask: a scheduler address, or local:N for N local workers."
    ),
    follow_symlinks: bool = typer.Option(
        False,
        help="dir input: also read .txt entries that are symbolic links (else they are reported as bad documents).",
    ),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU to run on, as in spacy train (-1: the CPU)."),
) -> None:
    """Annotate a corpus, resuming an OUTPUT this command wrote from the same INPUT. Bad
    documents are reported and counted, never fatal."""
    from tqdm import tqdm

    fmt = guess_input_format(input_path) if input_format == "auto" else input_format
    if fmt not in INPUT_FORMATS or output_format not in OUTPUT_FORMATS:
        _fail(
            f"Unknown format: input {fmt!r} (valid: {', '.join(INPUT_FORMATS)}), output {output_format!r} (valid: {', '.join(OUTPUT_FORMATS)})"
        )
    _check_annotate_paths(input_path, fmt, output_path)
    if gpu_id >= 0 and (n_process > 1 or dask is not None):
        _fail(
            "--gpu-id runs the pipeline in this process only: worker processes (--n-process > 1, --dask) "
            "cannot use the GPU this process holds (CUDA does not survive fork). Use --n-process 1 on the GPU, "
            "or run one annotate per GPU on a part of the input."
        )
    _use_gpu(gpu_id)
    n_process = _processes(n_process)
    run = {
        "input_format": fmt,
        "input_sha256": input_fingerprint(input_path, fmt, follow_symlinks),
        "max_chars": max_chars,
        "follow_symlinks": follow_symlinks,
    }
    # loaded before OUTPUT is touched; a remote Dask cluster's workers load their own path
    nlp = _load_pipeline(model) if dask is None or dask.startswith("local:") else None
    try:
        writer = Writer(output_path, output_format, run)
    except OutputError as err:
        _fail(str(err))
    summary = Summary()
    start = time.perf_counter()
    records = iter_inputs(input_path, fmt, max_chars, follow_symlinks)
    with writer, tqdm(unit="doc", desc="annotating", disable=None) as progress:
        try:
            if dask is None:
                annotate_records(nlp, records, writer, summary, batch_size, n_process, progress)
            else:
                from .distributed import annotate_on_cluster, dask_client

                with dask_client(dask) as client:
                    annotate_on_cluster(
                        client, model, records, writer, summary, batch_size=batch_size, progress=progress
                    )
        except OutputError as err:
            _fail(str(err))
    summary.seconds = time.perf_counter() - start
    for doc_id, problem in summary.bad:
        typer.secho(f"skipped {doc_id}: {problem}", fg=typer.colors.YELLOW, err=True)
    for doc_id in summary.duplicates:
        typer.secho(f"duplicate id {doc_id!r}: written again, as a separate document", fg=typer.colors.YELLOW, err=True)
    rate = summary.n_annotated / summary.seconds if summary.seconds else 0.0
    typer.echo(
        f"annotated {summary.n_annotated} documents ({summary.n_words} words) in {summary.seconds:.1f} s "
        f"({rate:.1f} docs/s); {summary.n_resumed} already in the output; {len(summary.bad)} bad documents skipped"
        + (f"; {len(summary.duplicates)} duplicate ids" if summary.duplicates else "")
    )


def _check_annotate_paths(input_path: Path, input_format: str, output_path: Path) -> None:
    """INPUT exists and is what its format reads (a directory, or a regular file: a FIFO
    or a device cannot be fingerprinted or resumed), and is not OUTPUT."""
    if not input_path.exists():
        _fail(f"No such input: {input_path}")
    if input_format == "dir" and not input_path.is_dir():
        _fail(f"--input-format dir needs a directory, and INPUT {input_path} is not one")
    if input_format != "dir" and not input_path.is_file():
        _fail(f"--input-format {input_format} needs a regular file, and INPUT {input_path} is not one")
    if output_path.exists() and os.path.samefile(input_path, output_path):
        _fail(f"INPUT and OUTPUT are the same: {input_path}")


def _processes(n_process: int) -> int:
    """`n_process`, at most the number of cores (more only add memory), with a warning."""
    cores = os.cpu_count() or 1
    if n_process > cores:
        typer.secho(
            f"--n-process {n_process} is more than the {cores} cores of this machine: using {cores}",
            fg=typer.colors.YELLOW,
            err=True,
        )
    return min(n_process, cores)


@app.command()
@_clean_errors
def visualize(
    model: str = typer.Argument(..., help="Pipeline: a directory or an installed package name."),
    source: str = typer.Argument(
        ..., metavar="TEXT|DATA", help="A text, or a file: .spacy, IOB TSV, or plain text (a doc per line)."
    ),
    output: Path = typer.Option(Path("bioner.html"), help="HTML file to write."),
    limit: int = typer.Option(50, min=1, help="At most this many documents."),
) -> None:
    """An HTML page (displaCy) with the entities, span groups and relation arcs."""
    from .visualize import render_page

    _output_folder(output)
    nlp = _load_pipeline(model)
    path = Path(source)
    if len(source) < 4096 and path.is_file():
        if path.suffix in (".spacy", ".tsv", ".iob", ".conll"):
            texts = [doc.text for doc in _read_docs(path, nlp)]
        else:
            texts = [line for line in path.read_text(encoding="utf8", errors="replace").splitlines() if line.strip()]
    elif not any(c.isspace() for c in source) and path.suffix.lower() in DATA_SUFFIXES:
        _fail(f"No such file: {source} (a text to visualize that looks like a file name: put it in a file)")
    else:
        texts = [source]
    docs = list(nlp.pipe(texts[:limit]))
    output.write_text(render_page(docs, title=f"{model}: {len(docs)} documents"), encoding="utf8")
    typer.echo(f"Wrote {output} ({len(docs)} documents)")


@app.command("meta-data")
@_clean_errors
def meta_data(
    predictions: Path = typer.Argument(
        ..., help="Directory of dev-set predictions (step_*.spacy) from spacy_bioner.DevPredictionsLogger.v1."
    ),
    gold_dev: Path = typer.Argument(..., help="The gold dev corpus the predictions were made on (.spacy)."),
    gold_train: Path = typer.Argument(
        ..., help="The gold training corpus (.spacy): its entities are added as correct."
    ),
    output_dir: Path = typer.Argument(..., help="Writes train.spacy and dev.spacy for the filter here."),
    sources: str = typer.Option(..., help="Comma-separated span group keys of the members (or 'ents')."),
    extra_features: bool = typer.Option(
        False,
        help="Prepend the vote pattern and member scores (then gold training entities are left out, having no votes).",
    ),
    heldout: float = typer.Option(
        0.15,
        callback=_check(lambda h: 0 < h < 1, "a fraction in (0, 1)"),
        help="Fraction held out for the filter's early stopping, in (0, 1).",
    ),
    min_step: int = typer.Option(
        1,
        min=0,
        help="Use the evaluations from this step on. The default leaves out step 0, spaCy's evaluation of the untrained pipeline, whose predictions are noise (an untrained span classifier proposes nearly every candidate span).",
    ),
    seed: int = typer.Option(0),
) -> None:
    """Build the Meta filter's training data: every member prediction on the dev set at
    every evaluation (KEEP if correct, else DROP) plus every gold training entity (KEEP)."""
    from .loggers import logged_steps
    from .meta import filter_samples, gold_samples, write_filter_corpus

    vocab = spacy.blank("en").vocab
    keys = [key.strip() for key in sources.split(",") if key.strip()]
    logged = logged_steps(predictions)
    if not logged:
        _fail(f"No step_<N>.spacy files in {predictions}: train the members with spacy_bioner.DevPredictionsLogger.v1")
    steps = [path for number, path in logged if number >= min_step]
    if not steps:
        _fail(
            f"None of the {len(logged)} evaluations in {predictions} is at step {min_step} or later (--min-step): the last is {logged[-1][1].name}"
        )
    gold = list(_doc_bin(gold_dev).get_docs(vocab))
    samples = []
    try:
        for step in steps:
            samples += filter_samples(_doc_bin(step).get_docs(vocab), gold, keys, extra_features)
    except ValueError as err:
        _fail(f"{step}: {err}")
    n_dev_predictions = len(samples)
    if not extra_features:
        samples += gold_samples(_doc_bin(gold_train).get_docs(vocab))
    n_train, n_dev = write_filter_corpus(samples, vocab, output_dir, heldout, seed)
    n_keep = sum(correct for _, correct in samples)
    typer.echo(
        f"{len(steps)} evaluations (from step {min_step}), {n_dev_predictions} member predictions, {len(samples) - n_dev_predictions} gold "
        f"training entities; {n_keep} KEEP / {len(samples) - n_keep} DROP -> {output_dir}/train.spacy ({n_train}), dev.spacy ({n_dev})"
    )
