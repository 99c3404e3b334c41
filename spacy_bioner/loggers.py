"""A training logger that keeps the members' dev-set predictions at every evaluation,
the raw material of the Meta filter (Verma, Bergler & Tahaei 2023: predictions from every epoch, because
a well-trained model makes too few mistakes to learn from)."""

from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import DocBin
from spacy.training.loggers import console_logger
from spacy.util import registry

LoggerSetup = Callable[[Language, IO, IO], Tuple[Callable[[Optional[Dict[str, Any]]], None], Callable[[], None]]]
STEP_PREFIX = "step_"


def logged_steps(directory: Path) -> List[Tuple[int, Path]]:
    """The (step, path) of every step_<N>.spacy the logger wrote in `directory`, by
    step; other files are ignored."""
    found = []
    for path in directory.glob(f"{STEP_PREFIX}*.spacy"):
        number = path.stem[len(STEP_PREFIX) :]
        if number.isdigit():
            found.append((int(number), path))
    return sorted(found)


@registry.loggers("spacy_bioner.DevPredictionsLogger.v1")
def dev_predictions_logger(dev_path: str, output_dir: str, logger: Optional[LoggerSetup] = None) -> LoggerSetup:
    """Run the pipeline over the dev corpus at each evaluation and write the predicted
    docs (all span groups with their attrs, doc.ents) to OUTPUT_DIR/step_<N>.spacy, in
    corpus order. Doc.user_data is not written: a transformer keeps its output there
    (doc._.trf_data), which would make each file hundreds of megabytes.

    logger: the logger to wrap for console output (default spacy.ConsoleLogger.v1).
    """
    base = logger or console_logger(progress_bar=False)

    def setup(nlp: Language, stdout: IO, stderr: IO):
        log_step, finalize = base(nlp, stdout, stderr)
        target = Path(output_dir)
        target.mkdir(parents=True, exist_ok=True)

        def step(info: Optional[Dict[str, Any]]) -> None:
            log_step(info)
            if info is None or info.get("score") is None:
                return
            references = DocBin().from_disk(dev_path).get_docs(nlp.vocab)
            predictions = nlp.pipe(doc.text for doc in references)
            DocBin(docs=predictions).to_disk(target / f"{STEP_PREFIX}{info['step']:07d}.spacy")

        return step, finalize

    return setup
