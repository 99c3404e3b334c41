"""`EntityPipe`: what every entity-predicting component shares, its entity types
(`labels`, `label_data`, `add_label`) and the span group it writes (`spans_key`)."""

from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from spacy.pipeline import TrainablePipe


class EntityPipe(TrainablePipe):
    """A TrainablePipe whose cfg holds "labels" (entity types) and "spans_key".

    Subclasses set `output_ref` (the model layer whose `nO` fixes the label set, None if
    labels can be added at any time), `reserved_labels` (names the model uses itself)
    and `types_only` (reject labels that look like BIO tags)."""

    output_ref: Optional[str] = "output"
    reserved_labels: Sequence[str] = ()
    types_only: bool = False

    @property
    def labels(self) -> Tuple[str, ...]:
        """The entity types."""
        return tuple(self.cfg["labels"])

    @property
    def label_data(self) -> List[str]:
        return list(self.cfg["labels"])

    @property
    def spans_key(self) -> str:
        """The configured key, else the component's (current) name."""
        return self.cfg["spans_key"] or self.name

    def output_sizes(self) -> Dict[str, int]:
        """The number of outputs of each sized output layer (by reference name) that the
        labels in cfg need; checked when a saved component is loaded. Default: none."""
        return {}

    def from_disk(self, path, *, exclude: Iterable[str] = tuple()) -> "EntityPipe":
        super().from_disk(path, exclude=exclude)
        self._check_outputs()
        return self

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "EntityPipe":
        super().from_bytes(bytes_data, exclude=exclude)
        self._check_outputs()
        return self

    def _check_outputs(self) -> None:
        """A clear error when the loaded labels do not fit the loaded model (a cfg file
        missing, edited, or from another pipeline), instead of a failure or wrong labels
        on the first document."""
        for ref, size in self.output_sizes().items():
            layer = self.model.get_ref(ref)
            if layer.has_dim("nO") is True and layer.get_dim("nO") != size:
                raise ValueError(
                    f"[{self.name}] the saved model has {layer.get_dim('nO')} outputs in its {ref!r} layer, but the "
                    f"labels in its cfg ({list(self.cfg['labels'])}) need {size}: the cfg does not belong to "
                    "the model (missing, edited, or copied from another pipeline)"
                )

    def add_label(self, label: str) -> int:
        """Add an entity type; 0 if it was there already."""
        return self._add_to("labels", label, self.output_ref)

    def _add_to(self, setting: str, label: str, output_ref: Optional[str]) -> int:
        """Add `label` to the cfg list `setting`, while the layer `output_ref` is unsized."""
        if not isinstance(label, str) or not label or label in self.reserved_labels:
            raise ValueError(f"[{self.name}] invalid label {label!r}")
        if self.types_only and "-" in label[:2]:
            raise ValueError(f"[{self.name}] invalid entity type {label!r}: give the type only, e.g. 'Disease'")
        if label in self.cfg[setting]:
            return 0
        if output_ref is not None and self.model.get_ref(output_ref).has_dim("nO"):
            raise ValueError(
                f"[{self.name}] cannot add label {label!r} after the model is initialized; "
                "list every label before training (config or `spacy init labels`)."
            )
        self.cfg[setting].append(label)
        self.vocab.strings.add(label)
        return 1
