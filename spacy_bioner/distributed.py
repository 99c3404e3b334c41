"""Annotation on a Dask cluster: chunks of documents go to the workers, each worker
loads the pipeline once, and the results are written in input order, so the output is
the same as a single-process run. Needs the `distributed` extra (dask[distributed])."""

from collections import deque
from functools import lru_cache
from itertools import islice
from typing import Any, Deque, Dict, Iterable, List, Optional, Tuple

import spacy

from .annotate import InputRecord, Summary, Writer, doc_annotations, pending_records


def _require_dask():
    try:
        from dask import distributed
    except ImportError:
        raise ImportError("Annotating on a Dask cluster needs dask: pip install 'spacy-bioner[distributed]'") from None
    return distributed


@lru_cache(maxsize=2)
def _load(model: str):
    return spacy.load(model)


def annotate_chunk(model: str, texts: List[str], batch_size: int) -> List[Tuple[Dict[str, Any], int]]:
    """Runs on a worker: annotations and word count of each text."""
    nlp = _load(model)
    return [(doc_annotations(doc), len(doc)) for doc in nlp.pipe(texts, batch_size=batch_size)]


def local_cluster(n_workers: int):
    """A Dask client on a cluster of `n_workers` single-threaded worker processes on this machine."""
    distributed = _require_dask()
    cluster = distributed.LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    return distributed.Client(cluster)


def dask_client(address: str):
    """A Dask client: on `local:N` workers of this machine (see :func:`local_cluster`),
    or connected to the scheduler at `address`."""
    if address.startswith("local:"):
        return local_cluster(int(address.split(":", 1)[1]))
    return _require_dask().Client(address)


def annotate_on_cluster(
    client,
    model: str,
    records: Iterable[InputRecord],
    writer: Writer,
    summary: Summary,
    chunk_size: int = 256,
    batch_size: int = 64,
    max_pending: Optional[int] = None,
    progress: Optional[Any] = None,
) -> Summary:
    """Annotate the pending records on the cluster behind `client`.

    model: a path or package name every worker can load. At most `max_pending` chunks
    (default: two per worker) are in flight, so memory stays bounded on any corpus size.
    """
    max_pending = max_pending or 2 * max(len(client.scheduler_info()["workers"]), 1)
    todo = pending_records(records, writer, summary)
    in_flight: Deque[Tuple[List[InputRecord], Any]] = deque()

    def write_oldest() -> None:
        chunk, future = in_flight.popleft()
        for record, (annotations, n_words) in zip(chunk, future.result()):
            writer.write(record, annotations)
            summary.n_annotated += 1
            summary.n_words += n_words
            if progress is not None:
                progress.update(1)

    while True:
        chunk = list(islice(todo, chunk_size))
        if not chunk:
            break
        in_flight.append((chunk, client.submit(annotate_chunk, model, [r.text for r in chunk], batch_size, pure=False)))
        if len(in_flight) >= max_pending:
            write_oldest()
    while in_flight:
        write_oldest()
    return summary
