"""Write an ADE cross-validation fold as an IOB NER corpus, so that `bench_tagger.py`
can compare taggers on a third biomedical corpus (Drug, Adverse-Effect). Its test split
was never used to choose a setting of `configs/tagger.cfg`; its dev split was one of
the three that chose the dropout (docs/tagger.md, "Dropout").

ADE has no dev split: the training records that `bench_relations.py` holds out as the
fold's dev split (`ade_folds.hold_out_dev`, the last 10%) become `devel.tsv`.
Overlapping entities (120 pairs in the whole corpus) cannot all be tags: the longest of
each overlap is kept, as `bioner convert spert` does for `doc.ents`. The output is a mirror directory with
`ner/ADE/{train,devel,test}.tsv`, for `bench_tagger.py ADE --data <output>`.

    python benchmarks/ade_ner_corpus.py --fold 0 --output assets/ade_ner
"""

from pathlib import Path

import spacy
import typer
from ade_folds import hold_out_dev

from spacy_bioner.corpora.iob import write_iob
from spacy_bioner.corpora.spert import read_spert


def main(
    data: Path = typer.Option(Path("../shared/data"), help="Mirror directory with re/ade/ (relative to the project)."),
    fold: int = typer.Option(0, min=0, max=9, help="ADE cross-validation fold."),
    output: Path = typer.Option(Path("assets/ade_ner"), help="Directory to write ner/ADE/*.tsv under."),
) -> None:
    vocab = spacy.blank("en").vocab
    ade = data / "re" / "ade"
    train, dev = hold_out_dev(read_spert(ade / f"ade_split_{fold}_train.json", vocab))
    test = read_spert(ade / f"ade_split_{fold}_test.json", vocab)
    splits = {"train": train, "devel": dev, "test": test}
    target = output / "ner" / "ADE"
    target.mkdir(parents=True, exist_ok=True)
    for split, docs in splits.items():
        n_sentences = write_iob(docs, target / f"{split}.tsv")
        print(f"{target / split}.tsv: {n_sentences} sentences, {sum(len(doc.ents) for doc in docs)} entities")


if __name__ == "__main__":
    typer.run(main)
