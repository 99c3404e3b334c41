"""The `bioner` command line (also `python -m spacy_bioner`)."""
import time
from collections import Counter
from enum import Enum
from pathlib import Path
from typing import Dict, List, Optional

import spacy
import srsly
import typer
from spacy.tokens import DocBin

from .annotate import INPUT_FORMATS, OUTPUT_FORMATS, Summary, Writer, annotate_records, guess_input_format, iter_inputs
from .corpora import CorpusFormatError, read_iob, read_spert, write_iob, write_spert
from .corpora.iob import doc_to_tags
from .corpora.spert import DEFAULT_SPANS_KEY
from .evaluation import errors_html, evaluate_examples, format_table, predict_examples
from .relations import get_relations, set_relations
from .weights import SCHEMES, class_weights

app = typer.Typer(help="spacy-bioner: biomedical NER and relation extraction for spaCy.", no_args_is_help=True)


class TagFormat(str, Enum):
    iob = "iob"
    iobes = "iobes"
    spert = "spert"


def _fail(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _read_docs(path: Path, nlp) -> List:
    """Docs from a .spacy file or an IOB/IOBES TSV file."""
    if path.suffix == ".spacy":
        if not path.is_file():
            _fail(f"No such file: {path}")
        return list(DocBin().from_disk(path).get_docs(nlp.vocab))
    try:
        docs, _ = read_iob(path, nlp.vocab)
    except (CorpusFormatError, FileNotFoundError, UnicodeDecodeError) as err:
        _fail(str(err))
    return docs


@app.command()
def convert(
    tag_format: TagFormat = typer.Argument(..., metavar="FORMAT", help="Format of the other side: iob or iobes (TSV), or spert (JSON)."),
    input_path: Path = typer.Argument(..., metavar="INPUT", help="TSV or SpERT JSON file, or a .spacy file."),
    output_path: Path = typer.Argument(..., metavar="OUTPUT", help=".spacy file, or a TSV / JSON file when INPUT is .spacy."),
    lang: str = typer.Option("en", help="Language of the blank pipeline whose vocab the docs use."),
    spans_key: str = typer.Option(DEFAULT_SPANS_KEY, help="spert: span group of the entities (e.g. the relation component's name)."),
    types: Optional[Path] = typer.Option(None, help="spert: SpERT types file; relation types marked symmetric are stored in both directions (and written once)."),
) -> None:
    """Convert IOB/IOBES TSV or SpERT JSON (entities and relations) to a spaCy DocBin
    (one doc per sentence or record), or back."""
    nlp = spacy.blank(lang)
    if tag_format == TagFormat.spert:
        _convert_spert(input_path, output_path, nlp, spans_key, _symmetric_relations(types) if types else set())
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
        docs, repairs = read_iob(input_path, nlp.vocab)
    except (CorpusFormatError, FileNotFoundError, UnicodeDecodeError) as err:
        _fail(str(err))
    output_path.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs).to_disk(output_path)
    n_ents = sum(len(doc.ents) for doc in docs)
    typer.echo(f"Wrote {len(docs)} sentences, {n_ents} entities to {output_path}")
    if repairs:
        typer.echo(f"Repaired {repairs} I-/E- tags that did not continue an entity (read as the start of a new one)")


def _symmetric_relations(path: Path) -> set:
    """The relation types a SpERT types file marks `"symmetric": true`."""
    if not path.is_file():
        _fail(f"No such types file: {path}")
    relations = srsly.read_json(path).get("relations", {})
    return {name for name, info in relations.items() if info.get("symmetric")}


def _convert_spert(input_path: Path, output_path: Path, nlp, spans_key: str, symmetric: set) -> None:
    """SpERT JSON -> DocBin (relations kept as user data), or DocBin -> SpERT JSON.
    Symmetric relations are stored in both directions and written once."""
    output_path.parent.mkdir(parents=True, exist_ok=True)
    if input_path.suffix == ".spacy":
        docs = _read_docs(input_path, nlp)
        for doc in docs:
            seen, kept = set(), []
            for relation in get_relations(doc):
                key = (relation.label, *sorted([(relation.head.start, relation.head.end), (relation.tail.start, relation.tail.end)]))
                if relation.label not in symmetric or key not in seen:
                    kept.append(relation)
                    seen.add(key)
            set_relations(doc, kept)
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
        relations = get_relations(doc)
        reverse = [(r.tail, r.head, r.label, r.score) for r in relations if r.label in symmetric]
        known = {(r.head.start, r.head.end, r.tail.start, r.tail.end, r.label) for r in relations}
        set_relations(doc, relations + [r for r in reverse if (r[0].start, r[0].end, r[1].start, r[1].end, r[2]) not in known])
    DocBin(docs=docs, store_user_data=True).to_disk(output_path)
    n_ents = sum(len(doc.spans[spans_key]) for doc in docs)
    n_rels = sum(len(doc._.relations) for doc in docs)
    typer.echo(f"Wrote {len(docs)} documents, {n_ents} entities (doc.spans[{spans_key!r}]), {n_rels} relations to {output_path}")


def tag_counts(docs) -> Dict[str, int]:
    """Token-level IOB2 tag counts of the docs' entities."""
    counts: Counter = Counter()
    for doc in docs:
        counts.update(tag for _, tag in doc_to_tags(doc))
    return dict(sorted(counts.items(), key=lambda item: (item[0] != "O", item[0][2:], item[0])))


@app.command()
def weights(
    input_path: Path = typer.Argument(..., metavar="INPUT", help="Training data: IOB TSV or .spacy."),
    scheme: str = typer.Option("welt", help="Scheme to mark with * in the table."),
    beta: float = typer.Option(0.9, help="ENS beta."),
    strength: float = typer.Option(1.0, help="Weight strength (exponent)."),
) -> None:
    """Print the tag counts of a corpus and its class weights under every scheme."""
    if scheme not in SCHEMES:
        _fail(f"Unknown scheme {scheme!r}; valid schemes: {', '.join(SCHEMES)}")
    counts = tag_counts(_read_docs(input_path, spacy.blank("en")))
    if not counts:
        _fail(f"{input_path} has no tokens")
    table = {name: class_weights(counts, name, beta, strength) for name in SCHEMES}
    headers = ["tag", "count"] + [f"{name}{'*' if name == scheme else ''}" for name in SCHEMES]
    rows = [[tag, str(n)] + [f"{table[name][tag]:.4f}" for name in SCHEMES] for tag, n in counts.items()]
    widths = [max(len(row[i]) for row in rows + [headers]) for i in range(len(headers))]
    for row in [headers] + rows:
        typer.echo("  ".join(cell.rjust(width) if i else cell.ljust(width) for i, (cell, width) in enumerate(zip(row, widths))))
    typer.echo(f"(ens with beta={beta}; strength={strength}; * = --scheme)")


@app.command()
def evaluate(
    model: str = typer.Argument(..., help="Pipeline: a directory or an installed package name."),
    data: Path = typer.Argument(..., help="Gold data: .spacy, or IOB/IOBES TSV."),
    output: Path = typer.Option(None, help="Write the scores and error counts to this JSON file."),
    html: Path = typer.Option(None, help="Write an HTML page listing every error in context."),
    spans_key: str = typer.Option(None, help="Evaluate this span group instead of doc.ents."),
    batch_size: int = typer.Option(256, help="Batch size for nlp.pipe."),
    dataset: Optional[str] = typer.Option(None, help="Mark the docs as this dataset's, with the entity types of the gold data (the LLM tagger then tags only those, with that dataset's instruction)."),
) -> None:
    """Strict P/R/F per entity type and error categories (each error counted once);
    relation P/R/F (strict and boundaries) when the gold data has relations."""
    nlp = _load_pipeline(model)
    references = _read_docs(data, nlp)
    examples = predict_examples(nlp, references, batch_size, dataset, spans_key)
    results = evaluate_examples(examples, spans_key, spans_key)
    typer.echo(format_table(results))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(output, results)
        typer.echo(f"\nWrote {output}")
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(errors_html(examples, spans_key, spans_key), encoding="utf8")
        typer.echo(f"Wrote {html}")


def _load_pipeline(model: str):
    try:
        return spacy.load(model)
    except OSError as err:
        _fail(f"Cannot load pipeline {model!r}: {err}")


@app.command()
def annotate(
    model: str = typer.Argument(..., help="Pipeline: a directory or an installed package name."),
    input_path: Path = typer.Argument(..., metavar="INPUT", help="Text file (a doc per line), JSONL (id, text), PubTator, or a directory of .txt files."),
    output_path: Path = typer.Argument(..., metavar="OUTPUT", help="JSONL or PubTator file, or a directory for BRAT."),
    input_format: str = typer.Option("auto", help=f"auto or one of: {', '.join(INPUT_FORMATS)}."),
    output_format: str = typer.Option("jsonl", help=f"One of: {', '.join(OUTPUT_FORMATS)}."),
    batch_size: int = typer.Option(64, help="Documents per nlp.pipe batch."),
    n_process: int = typer.Option(1, help="Processes on this machine."),
    max_chars: int = typer.Option(1_000_000, help="Longer documents are reported as bad and skipped."),
    dask: Optional[str] = typer.Option(None, help="Run on Dask: a scheduler address, or local:N for N local workers."),
) -> None:
    """Annotate a corpus, resuming after the ids already in OUTPUT. Bad documents are
    reported and counted, never fatal."""
    from tqdm import tqdm

    fmt = guess_input_format(input_path) if input_format == "auto" else input_format
    if fmt not in INPUT_FORMATS or output_format not in OUTPUT_FORMATS:
        _fail(f"Unknown format: input {fmt!r} (valid: {', '.join(INPUT_FORMATS)}), output {output_format!r} (valid: {', '.join(OUTPUT_FORMATS)})")
    if not input_path.exists():
        _fail(f"No such input: {input_path}")
    writer = Writer(output_path, output_format)
    summary = Summary()
    start = time.perf_counter()
    records = iter_inputs(input_path, fmt, max_chars)
    with tqdm(unit="doc", desc="annotating", disable=None) as progress:
        try:
            if dask is None:
                annotate_records(_load_pipeline(model), records, writer, summary, batch_size, n_process, progress)
            else:
                _annotate_on_dask(dask, model, records, writer, summary, batch_size, progress)
        except CorpusFormatError as err:
            _fail(str(err))
        finally:
            writer.close()
    summary.seconds = time.perf_counter() - start
    for doc_id, problem in summary.bad:
        typer.secho(f"skipped {doc_id}: {problem}", fg=typer.colors.YELLOW, err=True)
    rate = summary.n_annotated / summary.seconds if summary.seconds else 0.0
    typer.echo(
        f"annotated {summary.n_annotated} documents ({summary.n_words} words) in {summary.seconds:.1f} s "
        f"({rate:.1f} docs/s); {summary.n_resumed} already in the output; {len(summary.bad)} bad documents skipped"
    )


def _annotate_on_dask(address: str, model: str, records, writer: Writer, summary: Summary, batch_size: int, progress) -> None:
    from .distributed import annotate_on_cluster, local_cluster

    if address.startswith("local:"):
        client = local_cluster(int(address.split(":", 1)[1]))
    else:
        from dask.distributed import Client

        client = Client(address)
    with client:
        annotate_on_cluster(client, model, records, writer, summary, batch_size=batch_size, progress=progress)


@app.command()
def visualize(
    model: str = typer.Argument(..., help="Pipeline: a directory or an installed package name."),
    source: str = typer.Argument(..., metavar="TEXT|DATA", help="A text, or a file: .spacy, IOB TSV, or plain text (a doc per line)."),
    output: Path = typer.Option(Path("bioner.html"), help="HTML file to write."),
    limit: int = typer.Option(50, help="At most this many documents."),
) -> None:
    """An HTML page (displaCy) with the entities, span groups and relation arcs."""
    from .visualize import render_page

    nlp = _load_pipeline(model)
    path = Path(source)
    if len(source) < 4096 and path.is_file():
        if path.suffix in (".spacy", ".tsv", ".iob", ".conll"):
            texts = [doc.text for doc in _read_docs(path, nlp)]
        else:
            texts = [line for line in path.read_text(encoding="utf8", errors="replace").splitlines() if line.strip()]
    else:
        texts = [source]
    docs = list(nlp.pipe(texts[:limit]))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_page(docs, title=f"{model}: {len(docs)} documents"), encoding="utf8")
    typer.echo(f"Wrote {output} ({len(docs)} documents)")


@app.command("meta-data")
def meta_data(
    predictions: Path = typer.Argument(..., help="Directory of dev-set predictions (step_*.spacy) from spacy_bioner.DevPredictionsLogger.v1."),
    gold_dev: Path = typer.Argument(..., help="The gold dev corpus the predictions were made on (.spacy)."),
    gold_train: Path = typer.Argument(..., help="The gold training corpus (.spacy): its entities are added as correct."),
    output_dir: Path = typer.Argument(..., help="Writes train.spacy and dev.spacy for the filter here."),
    sources: str = typer.Option(..., help="Comma-separated span group keys of the members (or 'ents')."),
    extra_features: bool = typer.Option(False, help="Prepend the vote pattern and member scores (then gold training entities are left out, having no votes)."),
    heldout: float = typer.Option(0.15, help="Fraction held out for the filter's early stopping."),
    min_step: int = typer.Option(1, help="Use the evaluations from this step on. The default leaves out step 0, spaCy's evaluation of the untrained pipeline, whose predictions are noise (an untrained span classifier proposes nearly every candidate span)."),
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
        _fail(f"None of the {len(logged)} evaluations in {predictions} is at step {min_step} or later (--min-step): the last is {logged[-1][1].name}")
    gold = list(DocBin().from_disk(gold_dev).get_docs(vocab))
    samples = []
    try:
        for step in steps:
            samples += filter_samples(DocBin().from_disk(step).get_docs(vocab), gold, keys, extra_features)
    except ValueError as err:
        _fail(f"{step}: {err}")
    n_dev_predictions = len(samples)
    if not extra_features:
        samples += gold_samples(DocBin().from_disk(gold_train).get_docs(vocab))
    n_train, n_dev = write_filter_corpus(samples, vocab, output_dir, heldout, seed)
    n_keep = sum(correct for _, correct in samples)
    typer.echo(
        f"{len(steps)} evaluations (from step {min_step}), {n_dev_predictions} member predictions, {len(samples) - n_dev_predictions} gold "
        f"training entities; {n_keep} KEEP / {len(samples) - n_keep} DROP -> {output_dir}/train.spacy ({n_train}), dev.spacy ({n_dev})"
    )
