"""Loading a Hugging Face Llama-family decoder and its tokenizer: from a hub name, a local
model directory, or a GGUF file (de-quantized by `transformers`, which needs `gguf`).

`name` may be a hub name ("meta-llama/Llama-2-7b-hf"), a directory, or the path of a
.gguf file; `gguf_file` names the GGUF file inside the directory (or hub repository).
Missing local weights raise FileNotFoundError naming the path.
"""

from pathlib import Path
from typing import Any, Optional, Tuple

from thinc.util import get_torch_default_device

from . import require

_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")


def split_source(name: str, gguf_file: Optional[str] = None) -> Tuple[str, Optional[str]]:
    """(directory or hub name, GGUF file name or None); a .gguf path in `name` is split."""
    if gguf_file is None and name.endswith(".gguf"):
        path = Path(name).expanduser()
        return str(path.parent), path.name
    if gguf_file is not None and Path(gguf_file).is_absolute():
        return str(Path(gguf_file).parent), Path(gguf_file).name
    return name, gguf_file


def is_local(name: str) -> bool:
    """Whether `name` means a local path rather than a hub name."""
    return Path(name).expanduser().exists() or name.startswith(("/", ".", "~")) or name.endswith(".gguf")


def check_local_weights(directory: str, gguf_file: Optional[str], weights: bool = True) -> None:
    """Raise FileNotFoundError naming the path when a local model (with `weights`: and its
    weights) is missing."""
    path = Path(directory).expanduser()
    if gguf_file is not None:
        if not (path / gguf_file).is_file():
            raise FileNotFoundError(f"No GGUF file at {path / gguf_file}")
        return
    if not path.is_dir():
        raise FileNotFoundError(f"No model directory at {path}")
    has_weights = (path / "config.json").is_file() and any(any(path.glob(p)) for p in _WEIGHT_PATTERNS)
    if weights and not has_weights:
        raise FileNotFoundError(f"No model weights (config.json and *.safetensors or *.bin) in {path}")


def resolve_device(device: str) -> str:
    """'auto' is the GPU spaCy runs on (`spacy.require_gpu`, `--gpu-id`), as
    spacy-transformers places its models; else the first CUDA GPU if there is one,
    else the CPU."""
    torch = require("torch")
    if device == "auto":
        spacy_device = get_torch_default_device()
        if spacy_device.type != "cpu":
            return str(spacy_device)
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str, device: str) -> Any:
    """A torch dtype from its name; 'auto' is bfloat16 on a GPU that supports it, else float32."""
    torch = require("torch")
    if dtype == "auto":
        on_gpu = device.startswith("cuda") and torch.cuda.is_available()
        return torch.bfloat16 if on_gpu and torch.cuda.is_bf16_supported() else torch.float32
    value = getattr(torch, dtype, None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"Unknown dtype {dtype!r}: use float32, bfloat16, float16 or auto")
    return value


def _from_pretrained(loader: Any, name: str, gguf_file: Optional[str], weights: bool = True, **kwargs: Any) -> Any:
    """`loader.from_pretrained`, with a clear error for a missing local path or a hub name
    that cannot be fetched."""
    directory, gguf_file = split_source(name, gguf_file)
    if is_local(directory):
        check_local_weights(directory, gguf_file, weights)
        directory = str(Path(directory).expanduser())
    if gguf_file is not None:
        require("gguf")
        kwargs["gguf_file"] = gguf_file
    try:
        return loader.from_pretrained(directory, **kwargs)
    except OSError as err:
        if is_local(directory):
            raise
        raise OSError(
            f"Could not load {name!r} from the Hugging Face hub ({err}). Without a hub, give a local "
            "model directory or a GGUF file instead (see scripts/install_models.py)."
        ) from err


def load_tokenizer(name: str, gguf_file: Optional[str] = None) -> Any:
    """The (fast) tokenizer of a model; a padding token is set when the model has none."""
    transformers = require("transformers")
    tokenizer = _from_pretrained(transformers.AutoTokenizer, name, gguf_file, weights=False)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def load_backbone(
    name: str,
    gguf_file: Optional[str] = None,
    *,
    dtype: str = "float32",
    device: str = "cpu",
    load_in_4bit: bool = False,
    attn_implementation: str = "sdpa",
    use_safetensors: Optional[bool] = None,
) -> Any:
    """The decoder without its language-model head (`AutoModel`), on `device` in `dtype`,
    or quantized to 4-bit NF4 with bitsandbytes (CUDA only). use_safetensors: True
    refuses weights in any other format (as for a base packed into a pipeline)."""
    torch = require("torch")
    transformers = require("transformers")
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    kwargs = {"torch_dtype": torch_dtype, "attn_implementation": attn_implementation}
    if use_safetensors is not None:
        kwargs["use_safetensors"] = use_safetensors
    if load_in_4bit:
        if not torch.cuda.is_available() or not device.startswith("cuda"):
            raise RuntimeError("load_in_4bit = true needs a CUDA GPU (device cuda or auto); set load_in_4bit = false")
        require("bitsandbytes")
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch_dtype,
            bnb_4bit_use_double_quant=True,
        )
        kwargs["device_map"] = {"": device}
    model = _from_pretrained(transformers.AutoModel, name, gguf_file, **kwargs)
    return model if load_in_4bit else model.to(device)
