"""Removing the causal mask of a decoder, so that every position attends to every
non-padding position (VANER, after LS-LLaMA), in training and in inference.

Nothing in `transformers` is copied or patched. Two public mechanisms are combined:

1. :func:`attention_mask` turns the (batch, length) padding mask into a 4D additive
   mask (batch, 1, length, length) that allows every non-padding key. Llama-family
   models use a 4D mask as given (``masking_utils`` returns custom 4D masks unchanged;
   so did the older ``_update_causal_mask``), for the eager and SDPA attention alike.
2. :func:`make_bidirectional` sets ``is_causal = False`` on every attention module and
   on the config; flash-attention kernels take no 4D mask and read this flag instead
   (they get the 2D padding mask).
"""

from typing import Any

from . import require


def make_bidirectional(model: Any) -> int:
    """Mark the attention modules of `model` as non-causal; returns how many there are."""
    n_modules = 0
    for module in model.modules():
        if hasattr(module, "is_causal"):
            module.is_causal = False
            n_modules += 1
    if n_modules == 0:
        raise ValueError(f"{type(model).__name__} has no attention module with an `is_causal` flag to turn off")
    model.config.is_causal = False
    return n_modules


def attention_mask(model: Any, padding_mask: Any, bidirectional: bool) -> Any:
    """The attention mask to pass to `model` for a (batch, length) mask of 1 (token) and
    0 (padding): unchanged for causal attention (the model adds the causal mask) and for
    flash attention; else a 4D additive mask, 0 where a key may be attended and the
    dtype's minimum at padding keys, in the dtype of the model's hidden states."""
    torch = require("torch")
    implementation = getattr(model.config, "_attn_implementation", None) or ""
    if not bidirectional or implementation.startswith("flash"):
        return padding_mask
    dtype = model.get_input_embeddings().weight.dtype
    batch, length = padding_mask.shape
    blocked = (padding_mask == 0)[:, None, None, :].expand(batch, 1, length, length)
    mask = torch.zeros((batch, 1, length, length), dtype=dtype, device=padding_mask.device)
    return mask.masked_fill(blocked, torch.finfo(dtype).min)
