"""Render `bioner visualize` output in headless Chromium (Debian's `chromium` package)
and save a PNG, to look at what users see:

    python benchmarks/screenshot_visualize.py MODEL "Some text ." benchmarks/results/visualize.png
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import spacy

from spacy_bioner.relations import Relation
from spacy_bioner.visualize import render_page

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1200,1400",
]


def main(model: str, text: str, png: str) -> None:
    browser = shutil.which("chromium")
    if browser is None:
        sys.exit("chromium not found: apt-get install chromium")
    nlp = spacy.load(model)
    doc = nlp(text)
    ents = list(doc.ents)
    if len(ents) >= 2:  # draw one relation between the first two entities to show the arcs
        doc._.relations = [Relation(ents[1], ents[0], "related_to", 1.0)]
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "page.html"
        page.write_text(render_page([doc], title=model), encoding="utf8")
        subprocess.run(
            [browser, *FLAGS, f"--user-data-dir={tmp}/profile", f"--screenshot={Path(png).resolve()}", page.as_uri()],
            check=True,
            capture_output=True,
        )
    print(f"Wrote {png}")


if __name__ == "__main__":
    main(*sys.argv[1:])
