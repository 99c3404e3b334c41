"""`bioner_ensemble`: union, majority vote or a learned Meta filter over the entity
predictions of other components (Verma, Bergler & Tahaei 2023, sections 4.4-4.7).

Members are read from span groups (`sources`; `ents` for doc.ents). In `meta` mode a
separately trained filter pipeline (a text classifier with the labels KEEP and DROP,
trained with `spacy train` on data from `bioner meta-data`) judges every prediction of
the union; it is packed into the ensemble's directory by `to_disk`.
"""

from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

import spacy
import srsly
from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import ensure_path

from ..entity_writing import write_entities
from ..meta import KEEP, marked_text, member_predictions, vote_features
from ..scoring import make_entity_scorer
from ..voting import majority_threshold, select_by_votes, tally

MODES = ("union", "majority", "meta")
FILTER_DIR = "filter"


@Language.factory(
    "bioner_ensemble",
    assigns=["doc.ents", "doc.spans"],
    default_config={
        "sources": [],
        "mode": "majority",
        "min_votes": None,
        "spans_key": None,
        "set_ents": True,
        "threshold": 0.5,
        "extra_features": False,
        "scorer": None,
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_ensemble(
    nlp: Language,
    name: str,
    sources: List[str],
    mode: str,
    min_votes: Optional[int],
    spans_key: Optional[str],
    set_ents: bool,
    threshold: float,
    extra_features: bool,
    scorer: Optional[Callable],
) -> "Ensemble":
    """Combine the predictions of the components that write the span groups `sources`.

    mode: "union" (any vote), "majority" (more than floor(n/2) of n votes), or "meta"
        (the union, filtered by the learned filter).
    min_votes: override the number of votes a prediction needs (union and majority).
    threshold: in meta mode, the filter probability of KEEP a prediction needs.
    extra_features: give the filter the vote pattern and member scores (must match
        how its training data was made).
    scorer: null: strict P/R/F of doc.ents (keys ents_p/r/f/per_type); a registered
        scorer to override it, e.g. spacy_bioner.entity_scorer.v1 with a spans_key.
    """
    return Ensemble(
        nlp.vocab,
        name,
        sources=sources,
        mode=mode,
        min_votes=min_votes,
        spans_key=spans_key,
        set_ents=set_ents,
        threshold=threshold,
        extra_features=extra_features,
        scorer=scorer,
    )


class Ensemble(Pipe):
    def __init__(
        self,
        vocab,
        name: str = "bioner_ensemble",
        *,
        sources: List[str],
        mode: str = "majority",
        min_votes: Optional[int] = None,
        spans_key: Optional[str] = None,
        set_ents: bool = True,
        threshold: float = 0.5,
        extra_features: bool = False,
        scorer: Optional[Callable] = None,
    ):
        if not sources:
            raise ValueError(f"[{name}] sources is empty: list the span group keys of the members (or 'ents')")
        if len(set(sources)) != len(sources):
            raise ValueError(f"[{name}] sources lists a key twice: {sources}")
        if mode not in MODES:
            raise ValueError(f"[{name}] unknown setting mode = {mode!r}; valid modes: {', '.join(MODES)}")
        if min_votes is not None and not 1 <= min_votes <= len(sources):
            raise ValueError(f"[{name}] min_votes = {min_votes} must be between 1 and the {len(sources)} sources")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"[{name}] threshold = {threshold} must be in [0, 1]")
        self.vocab = vocab
        self.name = name
        self.custom_scorer = scorer
        self.filter: Optional[Language] = None
        self.cfg: Dict[str, Any] = {
            "sources": list(sources),
            "mode": mode,
            "min_votes": min_votes,
            "spans_key": spans_key,
            "set_ents": set_ents,
            "threshold": threshold,
            "extra_features": extra_features,
        }

    @property
    def scorer(self) -> Callable:
        """The configured scorer, else strict P/R/F of doc.ents (keys ents_*)."""
        return self.custom_scorer or make_entity_scorer()

    @property
    def min_votes(self) -> int:
        if self.cfg["min_votes"] is not None:
            return self.cfg["min_votes"]
        return majority_threshold(len(self.cfg["sources"])) if self.cfg["mode"] == "majority" else 1

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        meta_filter: Optional[Union[str, Path]] = None,
    ) -> None:
        """Attach the trained filter pipeline (meta mode), e.g. from
        [initialize.components.<name>] meta_filter = "training/meta/model-best"."""
        if meta_filter is not None:
            self.set_filter(spacy.load(meta_filter))

    def set_filter(self, filter_nlp: Language) -> None:
        """Use `filter_nlp` (a pipeline whose doc.cats has KEEP) as the Meta filter."""
        if KEEP not in getattr(filter_nlp.get_pipe(filter_nlp.pipe_names[-1]), "labels", ()):
            raise ValueError(f"[{self.name}] the filter pipeline's last component must predict the category {KEEP!r}")
        self.filter = filter_nlp

    def __call__(self, doc: Doc) -> Doc:
        return next(iter(self.pipe([doc])))

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterable[Doc]:
        for docs in spacy.util.minibatch(stream, size=batch_size):
            self.set_annotations(docs)
            yield from docs

    def set_annotations(self, docs: List[Doc]) -> None:
        tallies = [tally(member_predictions(doc, self.cfg["sources"])) for doc in docs]
        if self.cfg["mode"] == "meta":
            kept = self._filter(docs, tallies)
        else:
            kept = [[(vote, vote.score) for vote in select_by_votes(votes, self.min_votes)] for votes in tallies]
        for doc, chosen in zip(docs, kept):
            spans = [Span(doc, v.prediction[0], v.prediction[1], label=v.prediction[2]) for v, _ in chosen]
            scores = [score for _, score in chosen]
            votes = [v.votes for v, _ in chosen]
            write_entities(
                doc,
                self.cfg["spans_key"] or self.name,
                spans,
                scores,
                self.cfg["set_ents"],
                priorities=[(n, score) for n, score in zip(votes, scores)],
                attrs={"votes": votes},
            )

    def _filter(self, docs: List[Doc], tallies) -> List[list]:
        """Keep the union's predictions whose filter probability of KEEP reaches the threshold."""
        if self.filter is None:
            raise ValueError(
                f"[{self.name}] mode = 'meta' needs a trained filter: set "
                f"[initialize.components.{self.name}] meta_filter or call set_filter()"
            )
        texts = [
            marked_text(doc, *vote.prediction, vote_features(vote) if self.cfg["extra_features"] else "")
            for doc, votes in zip(docs, tallies)
            for vote in votes
        ]
        probabilities = iter([judged.cats[KEEP] for judged in self.filter.pipe(texts)])
        kept = []
        for votes in tallies:
            judged = [(vote, next(probabilities)) for vote in votes]
            kept.append([(vote, p) for vote, p in judged if p >= self.cfg["threshold"]])
        return kept

    def to_disk(self, path, *, exclude=tuple()) -> None:
        path = ensure_path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / "cfg", self.cfg)
        if self.filter is not None:
            self.filter.to_disk(path / FILTER_DIR)

    def from_disk(self, path, *, exclude=tuple()) -> "Ensemble":
        path = ensure_path(path)
        self.cfg.update(srsly.read_json(path / "cfg"))
        if (path / FILTER_DIR).is_dir():
            self.set_filter(spacy.load(path / FILTER_DIR))
        return self

    def to_bytes(self, *, exclude=tuple()) -> bytes:
        return srsly.msgpack_dumps(
            {
                "cfg": self.cfg,
                "filter": self.filter.to_bytes() if self.filter else None,
                "filter_config": self.filter.config.to_str() if self.filter else None,
            }
        )

    def from_bytes(self, bytes_data: bytes, *, exclude=tuple()) -> "Ensemble":
        data = srsly.msgpack_loads(bytes_data)
        self.cfg.update(data["cfg"])
        if data["filter"] is not None:
            config = spacy.util.load_config_from_str(data["filter_config"])
            self.set_filter(spacy.util.load_model_from_config(config, auto_fill=True).from_bytes(data["filter"]))
        return self
