"""What `bioner_abbreviations` adds to trained pipelines, and how large the evaluation
docs must be for it: each model is scored on the split's sentences grouped N to a doc
(`convert --n-sents N`), without and with the component appended (a model whose
pipeline already has it is scored without it by disabling it). Choose N on a dev split.

    python -m spacy train configs/tagger.cfg --output training/abbr/s0 \\
        --paths.train corpus/NCBI-disease/train.spacy --paths.dev corpus/NCBI-disease/devel.spacy --system.seed 0
    python benchmarks/bench_abbreviations.py ../shared/data/ner/NCBI-disease/devel.tsv \\
        training/abbr/s0/model-best training/abbr/s1/model-best --n-sents 1 10 20 40 --name NCBI-disease_devel

Writes benchmarks/results/abbreviations_<name>.md/.json.
"""

import argparse
import os

# One thread for the numeric libraries, set before they load, as the other benchmarks.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import json
from pathlib import Path
from typing import Dict, List

import spacy
from paths import ROOT, display_path
from spacy.training import Example

from spacy_bioner.corpora import read_iob

COMPONENT = "bioner_abbreviations"


def scores(model: Path, docs, with_component: bool) -> Dict[str, float]:
    """Strict entity P/R/F (percent) of the model on the docs' texts."""
    nlp = spacy.load(model)
    names = [name for name in nlp.pipe_names if nlp.get_pipe_meta(name).factory == COMPONENT]
    if with_component and not names:
        nlp.add_pipe(COMPONENT)
    if not with_component:
        for name in names:
            nlp.disable_pipe(name)
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in docs]
    result = nlp.evaluate(examples)
    return {key: 100 * float(result[key] or 0.0) for key in ("ents_p", "ents_r", "ents_f")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("split", type=Path, help="IOB TSV file of a dev split")
    parser.add_argument("models", type=Path, nargs="+", help="trained pipelines (e.g. model-best of several seeds)")
    parser.add_argument("--n-sents", type=int, nargs="+", default=[1, 10, 20, 40])
    parser.add_argument("--name", required=True, help="results file suffix, e.g. NCBI-disease_devel")
    args = parser.parse_args()
    vocab = spacy.blank("en").vocab
    rows: List[Dict[str, object]] = []
    for n_sents in args.n_sents:
        docs, _ = read_iob(args.split, vocab, n_sents)
        for with_component in (False, True):
            row: Dict[str, object] = {"n_sents": n_sents, "component": with_component}
            for model in args.models:
                row[display_path(model)] = scores(model, docs, with_component)
            rows.append(row)
            print(row, flush=True)
    models = [display_path(model) for model in args.models]
    header = "| sentences per doc | component | " + " | ".join(f"{m} F1 (P / R)" for m in models) + " |"
    lines = [
        f"Split: {display_path(args.split)}. Strict entity scores of each model on the split's texts, the "
        f"sentences grouped N to a doc, without and with `{COMPONENT}`.",
        "",
        "Command: `python benchmarks/bench_abbreviations.py "
        + " ".join([display_path(args.split)] + models)
        + " --n-sents "
        + " ".join(map(str, args.n_sents))
        + f" --name {args.name}`",
        "",
        header,
        "|---:|---|" + "---:|" * len(models),
    ]
    for row in rows:
        cells = [f"{row[m]['ents_f']:.2f} ({row[m]['ents_p']:.2f} / {row[m]['ents_r']:.2f})" for m in models]
        lines.append(f"| {row['n_sents']} | {'yes' if row['component'] else 'no'} | " + " | ".join(cells) + " |")
    out = ROOT / "benchmarks" / "results" / f"abbreviations_{args.name}"
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf8")
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
