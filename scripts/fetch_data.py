"""Fetch a corpus into assets/: copy it from a local mirror directory when one is given
and holds it (CI uses ../shared/data), else download it from its public source.
`kb` is the entity dictionary of the default tagger (kb/combined_entity_names.tsv): it
is merged from several public vocabularies and has no single download, so it comes
from the mirror, or from your own TSV with `name` and `type` columns."""

import shutil
import sys
import urllib.request
from pathlib import Path

import typer

NER_URL = "https://raw.githubusercontent.com/cambridgeltl/MTL-Bioinformatics-2016/master/data/{name}-IOB/{split}.tsv"
NER_SPLITS = ("train", "devel", "test")
KB_FILE = "combined_entity_names.tsv"
RE_URL = "https://lavis.cs.hs-rm.de/storage/spert/public/datasets/{name}/{file}"
RE_FILES = {
    "conll04": [f"conll04_{split}.json" for split in ("train", "dev", "test", "types")],
    "ade": ["ade_types.json"] + [f"ade_split_{fold}_{split}.json" for fold in range(10) for split in ("train", "test")],
}


def main(
    name: str = typer.Argument(
        ...,
        help="NER corpus (NCBI-disease, BC5CDR, ...), relation corpus (conll04, ade), or kb (the entity dictionary).",
    ),
    dest: Path = typer.Argument(..., help="Directory to write the corpus files to."),
    mirror: str = typer.Option("", help="Local mirror with ner/<name>/ or re/<name>/; empty to download."),
) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    if name == "kb":
        source = Path(mirror) / "kb" / KB_FILE if mirror else None
        if source is None or not source.is_file():
            sys.exit(
                f"The entity dictionary {KB_FILE} has no public download: pass --mirror DIR holding kb/{KB_FILE}, "
                "or train with --paths.dictionary YOUR.tsv (a header line naming the columns 'name' and 'type')"
            )
        shutil.copyfile(source, dest / KB_FILE)
        print(f"copied {source} -> {dest / KB_FILE}")
        return
    if name in RE_FILES:
        files = {file: RE_URL.format(name=name, file=file) for file in RE_FILES[name]}
        source = Path(mirror) / "re" / name if mirror else None
    else:
        files = {f"{split}.tsv": NER_URL.format(name=name, split=split) for split in NER_SPLITS}
        source = Path(mirror) / "ner" / name if mirror else None
    for file, url in files.items():
        target = dest / file
        if source is not None and (source / file).is_file():
            shutil.copyfile(source / file, target)
            print(f"copied {source / file} -> {target}")
            continue
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                target.write_bytes(response.read())
        except OSError as err:
            sys.exit(f"Could not download {url} ({err}); pass --mirror DIR holding {source or name}/{file}")
        print(f"downloaded {url} -> {target}")


if __name__ == "__main__":
    typer.run(main)
