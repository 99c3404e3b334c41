"""The LLM tagger's network as a Thinc model: a Llama-family decoder with its causal
mask removed, LoRA adapters (peft), dropout and a linear layer over the final hidden
states, inside a PyTorch shim, so that `spacy train` updates it with the Thinc optimizer.

Only parameters with gradients reach the optimizer: the LoRA matrices and the head (the
base weights are frozen). Thinc's Adam.v1 with L2_is_weight_decay = true and a float
learn_rate is AdamW with a constant learning rate, as in VANER.

Input: a :class:`Batch` of padded token ids. Output: (batch, length, 3) logits as a numpy
array; the component computes the loss (these arrays are small) and passes back their
gradient. The backbone is loaded by `initialize()` (from the settings) or by
:func:`load_llm` (from a saved pipeline); weights are saved with safetensors only.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy
import srsly
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, PyTorchShim
from thinc.types import Floats3d

from . import require
from .backbone import load_backbone, load_tokenizer
from .bidirectional import make_bidirectional
from .instructions import N_TAGS

BASE_FILE = "base.json"


@dataclass
class Batch:
    """Right-padded token ids and their padding mask (1 token, 0 padding)."""

    input_ids: numpy.ndarray
    mask: numpy.ndarray


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int) -> Batch:
    length = max(len(seq) for seq in sequences)
    input_ids = numpy.full((len(sequences), length), pad_id, dtype="int64")
    mask = numpy.zeros((len(sequences), length), dtype="int64")
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return Batch(input_ids, mask)


@registry.architectures("spacy_bioner.LLMTagger.v1")
def build_llm_tagger_model(
    name: str,
    gguf_file: Optional[str] = None,
    dtype: str = "float32",
    device: str = "auto",
    attn_implementation: str = "sdpa",
    bidirectional: bool = True,
    load_in_4bit: bool = False,
    lora_r: int = 16,
    lora_alpha: int = 32,
    lora_dropout: float = 0.1,
    lora_targets: Union[str, List[str]] = "all-linear",
    head_dropout: float = 0.1,
    max_length: int = 128,
) -> Model[Batch, Floats3d]:
    """VANER's tagger network. The backbone is loaded when the model is initialized.

    name, gguf_file: a hub name, a local model directory or a .gguf path, and the GGUF
        file inside the directory (see spacy_bioner.llm.backbone).
    dtype, device: torch dtype ("float32", "bfloat16", "float16", "auto") and device
        ("cpu", "cuda", "cuda:1", "auto").
    attn_implementation: "sdpa" or "eager" (or "flash_attention_2" where installed).
    bidirectional: remove the causal mask (VANER); false keeps the decoder causal.
    load_in_4bit: NF4 quantization of the frozen base (bitsandbytes, CUDA only).
    lora_*: LoRA rank, alpha, dropout and target modules ("all-linear" or names).
    head_dropout: dropout before the linear head.
    max_length: tokens per window, instruction included.
    """
    settings = {key: value for key, value in locals().items()}
    for setting in ("lora_r", "max_length"):
        if not isinstance(settings[setting], int) or settings[setting] < 1:
            raise ValueError(f"{setting} must be a positive integer; got {settings[setting]!r}")
    for setting in ("lora_dropout", "head_dropout"):
        if not 0.0 <= settings[setting] < 1.0:
            raise ValueError(f"{setting} must be in [0, 1); got {settings[setting]!r}")
    return Model(
        "llm_tagger",
        forward,
        init=init,
        attrs={"settings": settings, "tokenizer": None, "base": {"name": name, "gguf_file": gguf_file}},
    )


def forward(model: Model, batch: Batch, is_train: bool):
    torch = require("torch")
    shim = model.shims[0]
    device = shim.device
    inputs = ArgsKwargs(
        args=(),
        kwargs={
            "input_ids": torch.as_tensor(batch.input_ids, device=device),
            "mask": torch.as_tensor(batch.mask, device=device),
        },
    )
    output, torch_backprop = shim(inputs, is_train)
    logits = output.detach().float().cpu().numpy()

    def backprop(d_logits: Floats3d) -> Batch:
        grad = torch.as_tensor(d_logits, dtype=output.dtype, device=output.device)
        torch_backprop(ArgsKwargs(args=(output,), kwargs={"grad_tensors": grad}))
        return batch

    return logits, backprop


def init(model: Model, X: Any = None, Y: Any = None) -> None:
    """Load the base model and tokenizer named in the settings, with new adapters and head."""
    settings = model.attrs["settings"]
    backbone = _load_base(settings, settings["name"], settings["gguf_file"])
    tokenizer = load_tokenizer(settings["name"], settings["gguf_file"])
    attach(model, backbone, tokenizer)


def _load_base(
    settings: Dict[str, Any], name: str, gguf_file: Optional[str], use_safetensors: Optional[bool] = None
) -> Any:
    return load_backbone(
        name,
        gguf_file,
        dtype=settings["dtype"],
        device=settings["device"],
        load_in_4bit=settings["load_in_4bit"],
        attn_implementation=settings["attn_implementation"],
        use_safetensors=use_safetensors,
    )


def _token_tagger_class() -> type:
    """The torch module, imported on first use so that importing this file needs no torch."""
    require("torch")
    from .tagger_module import TokenTagger

    return TokenTagger


def attach(
    model: Model, backbone: Any, tokenizer: Any, adapter_dir: Optional[Path] = None, head_file: Optional[Path] = None
) -> None:
    """Put a loaded backbone into the Thinc model: LoRA adapters (new, or from
    `adapter_dir`), the head (new, or from `head_file`), the causal mask removed if
    configured, all inside a PyTorch shim."""
    peft = require("peft")
    settings = model.attrs["settings"]
    if settings["bidirectional"]:
        make_bidirectional(backbone)
    if settings["load_in_4bit"]:
        backbone = peft.prepare_model_for_kbit_training(backbone, use_gradient_checkpointing=False)
    if adapter_dir is None:
        config = peft.LoraConfig(
            r=settings["lora_r"],
            lora_alpha=settings["lora_alpha"],
            lora_dropout=settings["lora_dropout"],
            target_modules=settings["lora_targets"],
            bias="none",
        )
        backbone = peft.get_peft_model(backbone, config)
    else:
        backbone = peft.PeftModel.from_pretrained(backbone, str(adapter_dir), is_trainable=True)
    device = next(backbone.parameters()).device
    module = _token_tagger_class()(
        backbone,
        backbone.get_base_model().config.hidden_size,
        N_TAGS,
        settings["head_dropout"],
        settings["bidirectional"],
    )
    module.head.to(device)
    if head_file is not None:
        safetensors_torch = require("safetensors.torch")
        module.head.load_state_dict(safetensors_torch.load_file(str(head_file), device=str(device)))
    model.attrs["tokenizer"] = tokenizer
    model._shims = [PyTorchShim(module)]


def save_llm(model: Model, path: Path, pack_base_model: bool) -> None:
    """Write the adapters, the head, the tokenizer and the base model's identity (and,
    with `pack_base_model`, the base weights) under `path`, with safetensors only."""
    safetensors_torch = require("safetensors.torch")
    module = model.shims[0]._model
    path.mkdir(parents=True, exist_ok=True)
    module.backbone.save_pretrained(str(path / "adapter"), safe_serialization=True, save_embedding_layers=False)
    head = {key: value.detach().cpu().contiguous() for key, value in module.head.state_dict().items()}
    safetensors_torch.save_file(head, str(path / "head.safetensors"), metadata={"format": "pt"})
    model.attrs["tokenizer"].save_pretrained(str(path / "tokenizer"))
    if pack_base_model:
        _pack_base(model, path / "base")
    srsly.write_json(path / BASE_FILE, {**model.attrs["base"], "packed": pack_base_model})


def _pack_base(model: Model, path: Path) -> None:
    """The base weights without adapters, de-quantized: a 4-bit base is reloaded from its
    source at full precision on the CPU, any other is taken from memory."""
    safetensors_torch = require("safetensors.torch")
    base = model.shims[0]._model.backbone.get_base_model()
    if getattr(base, "is_loaded_in_4bit", False):
        settings = {**model.attrs["settings"], "load_in_4bit": False, "device": "cpu"}
        if settings["dtype"] == "auto":
            settings["dtype"] = "float32"
        full = _load_base(settings, model.attrs["base"]["name"], model.attrs["base"]["gguf_file"])
        full.save_pretrained(str(path), safe_serialization=True)
        return
    state = {
        key.replace(".base_layer.", "."): value.detach().cpu().contiguous()
        for key, value in base.state_dict().items()
        if "lora_" not in key
    }
    path.mkdir(parents=True, exist_ok=True)
    base.config.save_pretrained(str(path))
    safetensors_torch.save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})


def load_llm(model: Model, path: Path) -> None:
    """Restore what :func:`save_llm` wrote; an unpacked base is loaded from its source."""
    base_file = path / BASE_FILE
    if not base_file.is_file():
        raise FileNotFoundError(f"No {BASE_FILE} in {path}: not a saved LLM tagger")
    identity = srsly.read_json(base_file)
    settings = model.attrs["settings"]
    _require_safetensors(path, ["head.safetensors", "adapter/adapter_model.safetensors"])
    if identity["packed"]:
        _require_safetensors(path, ["base/*.safetensors"])
        backbone = _load_base(settings, str(path / "base"), None, use_safetensors=True)
    else:
        backbone = _load_base(settings, identity["name"], identity["gguf_file"])
    tokenizer = load_tokenizer(str(path / "tokenizer"))
    model.attrs["base"] = {"name": identity["name"], "gguf_file": identity["gguf_file"]}
    attach(model, backbone, tokenizer, adapter_dir=path / "adapter", head_file=path / "head.safetensors")


def _require_safetensors(path: Path, patterns: Sequence[str]) -> None:
    """A FileNotFoundError naming the first of the safetensors files (glob patterns under
    `path`) that is missing: the weights of a saved tagger are read from safetensors
    only, never from a pickle-based checkpoint a library would fall back to."""
    for pattern in patterns:
        if not any(path.glob(pattern)):
            raise FileNotFoundError(
                f"No {pattern} in {path}: a saved LLM tagger's weights are read from safetensors "
                "files only (other weight files, e.g. pickled .bin checkpoints, are never loaded)"
            )
