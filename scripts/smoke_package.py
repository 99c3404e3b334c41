"""Install a packaged pipeline's wheel and tag a raw string with spacy.load in a fresh
process that never imports spacy_bioner itself (spaCy finds it via entry points)."""

import subprocess
import sys
from pathlib import Path

CHECK = (
    "import spacy, sys; nlp = spacy.load(sys.argv[1]); "
    "doc = nlp('Germline mutations in BRCA1 are a cause of familial breast and ovarian cancer.'); "
    "print(nlp.pipe_names); print([(e.text, e.label_) for e in doc.ents]); "
    "assert any(name in doc.spans for name in nlp.pipe_names), 'no component wrote its span group'"
)


def main(package_dir: str, name: str) -> None:
    wheels = sorted(Path(package_dir).glob("dist/*.whl"))
    if not wheels:
        sys.exit(f"No wheel under {package_dir}/dist: run the package step first")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheels[-1])], check=True
    )
    subprocess.run([sys.executable, "-c", CHECK, name], check=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
