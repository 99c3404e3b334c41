"""A tiny random Llama model and a tokenizer trained in the test, saved as a Hugging Face
model directory, for the LLM tagger tests (no download)."""

from pathlib import Path

from .util import SENTENCES

EXTRA_TEXT = [
    "nephrotoxicity hepatotoxicity cardiomyopathy carcinoma leukemia",
    "If any Disease Chemical entity is mentioned in the NCBI-disease BC5CDR input , extract it . ##input :",
]


def build_tiny_llm(path: Path) -> Path:
    """Save a 2-layer LlamaModel (hidden size 32) and a small BPE tokenizer to `path`.
    The vocabulary is small, so longer words are split into several sub-tokens."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaModel, PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=160, special_tokens=specials, show_progress=False)
    backend.train_from_iterator([text for text, _ in SENTENCES] + EXTRA_TEXT, trainer)
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )
    config = LlamaConfig(
        vocab_size=backend.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
    )
    torch.manual_seed(0)
    LlamaModel(config).save_pretrained(str(path), safe_serialization=True)
    tokenizer.save_pretrained(str(path))
    return path


def llm_config(path: Path, **settings) -> dict:
    """A bioner_llm_tagger config for the tiny model (small LoRA rank, CPU)."""
    model = {"name": str(path), "device": "cpu", "lora_r": 4, "lora_alpha": 8}
    model.update(settings.pop("model", {}))
    return {"model": model, **settings}
