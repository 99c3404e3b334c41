"""The LLM tagger's torch module. A module of its own, imported only when a model is
built or loaded (it imports torch), and defined at module level so that a pipeline
holding it can be pickled (as nlp.pipe(n_process=...) does where processes are spawned)."""

from typing import Any

import torch

from .bidirectional import attention_mask


class TokenTagger(torch.nn.Module):
    """Backbone (with adapters) -> dropout -> linear, at every position."""

    def __init__(self, backbone: Any, hidden_size: int, n_tags: int, dropout: float, bidirectional: bool) -> None:
        super().__init__()
        self.backbone = backbone
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(hidden_size, n_tags)
        self.bidirectional = bidirectional

    def forward(self, input_ids: Any, mask: Any) -> Any:
        base = self.backbone.get_base_model()
        hidden = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask(base, mask, self.bidirectional)
        ).last_hidden_state
        return self.head(self.dropout(hidden.to(self.head.weight.dtype)))
