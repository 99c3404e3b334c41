"""Score every member and every combination (union, majority, meta) on a test set,
like Table 1 of Verma, Bergler & Tahaei 2023, and write OUTPUT.md / OUTPUT.json.

    python scripts/evaluate_ensembles.py training/ensemble/members/model-best \
        corpus/NCBI-disease/test.spacy metrics/ensemble_NCBI-disease \
        --members tagger_softmax,tagger_crf,spans --meta-filter training/ensemble/filter/model-best \
        --meta-filter-votes training/ensemble/filter_votes/model-best

The members run once over the test texts; each combination then votes over their span
groups. words/s is for the whole pipeline: the members' pass plus the combination. A
filter trained with the vote pattern and member scores (`bioner meta-data
--extra-features`) gives the row meta+votes, beside meta, to show whether they help.
"""

import itertools
import json
import time
from pathlib import Path
from typing import List, Optional

import spacy
import typer
from spacy.tokens import DocBin
from spacy.training import Example

from spacy_bioner.components.ensemble import Ensemble
from spacy_bioner.scoring import score_entities


def main(
    members_model: Path = typer.Argument(..., help="Pipeline with the member components (set_ents = false)."),
    test: Path = typer.Argument(..., help="Gold test corpus (.spacy)."),
    output: Path = typer.Argument(..., help="Output prefix."),
    members: str = typer.Option(..., help="Comma-separated span group keys of the members."),
    meta_filter: Optional[Path] = typer.Option(None, help="Trained filter pipeline for the meta row."),
    meta_filter_votes: Optional[Path] = typer.Option(
        None, help="Filter trained with vote features, for the meta+votes row."
    ),
) -> None:
    nlp = spacy.load(members_model)
    references = list(DocBin().from_disk(test).get_docs(nlp.vocab))
    start = time.perf_counter()
    predicted = list(nlp.pipe(doc.text for doc in references))
    members_seconds = time.perf_counter() - start
    n_words = sum(len(doc) for doc in predicted)
    keys = [key.strip() for key in members.split(",")]
    filters = {
        name: (spacy.load(path), extra_features)
        for name, path, extra_features in [("meta", meta_filter, False), ("meta+votes", meta_filter_votes, True)]
        if path is not None
    }

    rows: List[dict] = []

    def add_row(name: str, key: str, extra_seconds: float) -> None:
        scores = score_entities([Example(p, r) for p, r in zip(predicted, references)], pred_key=key)
        rows.append(
            {
                "system": name,
                "p": scores["ents_p"],
                "r": scores["ents_r"],
                "f": scores["ents_f"],
                "words_per_second": n_words / (members_seconds + extra_seconds),
            }
        )
        print(f"{name}: P {scores['ents_p']:.4f} R {scores['ents_r']:.4f} F {scores['ents_f']:.4f}", flush=True)

    for key in keys:
        add_row(key, key, 0.0)
    combos = [
        (mode, group)
        for size in range(2, len(keys) + 1)
        for group in itertools.combinations(keys, size)
        for mode in ("union", "majority")
    ]
    combos += [(name, tuple(keys)) for name in filters]
    for mode, group in combos:
        name = f"{mode}({' + '.join(group)})"
        filter_nlp, extra_features = filters.get(mode, (None, False))
        ensemble = Ensemble(
            nlp.vocab,
            "ensemble",
            sources=list(group),
            mode="meta" if filter_nlp else mode,
            set_ents=False,
            extra_features=extra_features,
        )
        if filter_nlp is not None:
            ensemble.set_filter(filter_nlp)
        start = time.perf_counter()
        ensemble.set_annotations(predicted)
        add_row(name, "ensemble", time.perf_counter() - start)

    lines = [
        f"Test set: {test}; members from {members_model}",
        "",
        "| system | P | R | F1 | words/s |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['system']} | {100 * r['p']:.2f} | {100 * r['r']:.2f} | {100 * r['f']:.2f} | {r['words_per_second']:.0f} |"
        for r in rows
    ]
    output.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{output}.md").write_text("\n".join(lines) + "\n", encoding="utf8")
    Path(f"{output}.json").write_text(json.dumps(rows, indent=2), encoding="utf8")
    print("\n".join(lines))


if __name__ == "__main__":
    typer.run(main)
