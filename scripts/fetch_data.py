"""Fetch a corpus into assets/: copy it from a local mirror directory when one is given
and holds it (CI uses ../shared/data), else download it from its public source."""
import shutil
import sys
import urllib.request
from pathlib import Path

import typer

NER_URL = "https://raw.githubusercontent.com/cambridgeltl/MTL-Bioinformatics-2016/master/data/{name}-IOB/{split}.tsv"
NER_SPLITS = ("train", "devel", "test")


def main(
    name: str = typer.Argument(..., help="Corpus folder name, e.g. NCBI-disease or BC5CDR."),
    dest: Path = typer.Argument(..., help="Directory to write train/devel/test.tsv to."),
    mirror: str = typer.Option("", help="Local mirror with ner/<name>/<split>.tsv; empty to download."),
) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    source = Path(mirror) / "ner" / name if mirror else None
    for split in NER_SPLITS:
        target = dest / f"{split}.tsv"
        if source is not None and (source / f"{split}.tsv").is_file():
            shutil.copyfile(source / f"{split}.tsv", target)
            print(f"copied {source / f'{split}.tsv'} -> {target}")
            continue
        url = NER_URL.format(name=name, split=split)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                target.write_bytes(response.read())
        except OSError as err:
            sys.exit(f"Could not download {url} ({err}); pass --mirror DIR with ner/{name}/{split}.tsv")
        print(f"downloaded {url} -> {target}")


if __name__ == "__main__":
    typer.run(main)
