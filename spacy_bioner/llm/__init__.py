"""VANER building blocks: a Llama-family decoder as a bidirectional token encoder with
LoRA, instruction templates, and Dense Bioentity Recognition (DBR) samples.

The heavy libraries (torch, transformers, peft, gguf, safetensors, scikit-learn) are
imported lazily through :func:`require`, so ``import spacy_bioner`` never needs them.
"""

import importlib
from types import ModuleType

LLM_EXTRA = "pip install spacy-bioner[llm]"


def require(module: str) -> ModuleType:
    """Import `module`, or raise an ImportError saying which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"The LLM tagger needs the Python package {module.split('.')[0]!r}, which is not "
            f"installed ({err}). Install the extra: {LLM_EXTRA}"
        ) from err
