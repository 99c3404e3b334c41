"""Write an ADE cross-validation fold as an IOB NER corpus, so that `bench_tagger.py`
can compare taggers on a third biomedical corpus (Drug, Adverse-Effect) that no
setting of `configs/tagger.cfg` was chosen on.

ADE has no dev split: the last --dev-share of the fold's training records (the fold
files are already shuffled) become `devel.tsv`. Overlapping entities (120 pairs in the
whole corpus) cannot all be tags: the longest of each overlap is kept, as
`bioner convert spert` does for `doc.ents`. The output is a mirror directory with
`ner/ADE/{train,devel,test}.tsv`, for `bench_tagger.py ADE --data <output>`.

    python benchmarks/ade_ner_corpus.py --fold 0 --output assets/ade_ner
"""

from pathlib import Path

import spacy
import typer

from spacy_bioner.corpora.iob import write_iob
from spacy_bioner.corpora.spert import read_spert


def main(
    data: Path = typer.Option(Path("../shared/data"), help="Mirror directory with re/ade/ (relative to the project)."),
    fold: int = typer.Option(0, min=0, max=9, help="ADE cross-validation fold."),
    output: Path = typer.Option(Path("assets/ade_ner"), help="Directory to write ner/ADE/*.tsv under."),
    dev_share: float = typer.Option(0.1, min=0.01, max=0.5, help="Share of the training records held out as dev."),
) -> None:
    vocab = spacy.blank("en").vocab
    ade = data / "re" / "ade"
    train = read_spert(ade / f"ade_split_{fold}_train.json", vocab)
    test = read_spert(ade / f"ade_split_{fold}_test.json", vocab)
    n_dev = round(len(train) * dev_share)
    splits = {"train": train[:-n_dev], "devel": train[-n_dev:], "test": test}
    target = output / "ner" / "ADE"
    target.mkdir(parents=True, exist_ok=True)
    for split, docs in splits.items():
        n_sentences = write_iob(docs, target / f"{split}.tsv")
        print(f"{target / split}.tsv: {n_sentences} sentences, {sum(len(doc.ents) for doc in docs)} entities")


if __name__ == "__main__":
    typer.run(main)
