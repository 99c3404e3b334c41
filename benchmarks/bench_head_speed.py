"""What the `bioner_tagger` head (Linear + CRF Viterbi + marginals) costs at inference,
against the CNN tok2vec alone and against spaCy's `ner` on the same tok2vec.

    nice -n 10 python benchmarks/bench_head_speed.py [--updates 300] [--sentences 1000] \
        [--batch-size 256] [--output crf] [--tagging iob] [--work /tmp/bioner_head_speed] \
        [--name head_speed]

One pipeline holds a CNN `tok2vec` (spaCy's `ner` default) and two listeners, a
`bioner_tagger` and spaCy's `ner`, trained together on NCBI-disease train for a few
hundred updates (enough for realistic scores; saved under --work and reused by later
runs, so before/after timings of a code change use the same weights). Three systems are
timed in one process, over the first --sentences test sentences, batch --batch-size,
one thread (torch; thinc's blis is single-threaded): `tok2vec` (the others disabled), `tok2vec + bioner_tagger` and
`tok2vec + ner`, in turn (A, B, C, A, B, C, ...) after a warm-up, best of --rounds.
The head's cost is ``1 - wps(tok2vec + head) / wps(tok2vec)``, its share of pipeline
time over the tok2vec alone. Writes benchmarks/results/<name>.{md,json}.
"""

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path
from typing import Dict, List

import spacy
import torch
from paths import display_command
from spacy.language import Language
from spacy.training import Example
from spacy.util import minibatch
from thinc.api import Config

from spacy_bioner.components.common import DEFAULT_CNN_TOK2VEC
from spacy_bioner.corpora import read_iob

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ner" / "NCBI-disease"
RESULTS = ROOT / "benchmarks" / "results"
LISTENER = {"@architectures": "spacy.Tok2VecListener.v1", "width": 96, "upstream": "*"}
SYSTEMS = {
    "tok2vec": ["tok2vec"],
    "tok2vec + bioner_tagger": ["tok2vec", "bioner_tagger"],
    "tok2vec + ner": ["tok2vec", "ner"],
}


def build(output: str, tagging: str) -> Language:
    """A CNN tok2vec with a bioner_tagger and a spaCy ner listening to it."""
    nlp = spacy.blank("en")
    tok2vec = Config().from_str("[model]\n" + DEFAULT_CNN_TOK2VEC)["model"]["tok2vec"]
    nlp.add_pipe("tok2vec", config={"model": tok2vec})
    tagger = {"@architectures": "spacy_bioner.Tagger.v1", "output": output, "tok2vec": LISTENER}
    scheme = "none" if output == "crf" else "welt"
    nlp.add_pipe("bioner_tagger", config={"model": tagger, "scheme": scheme, "tagging": tagging, "set_ents": False})
    nlp.add_pipe(
        "ner",
        config={
            "model": {
                "@architectures": "spacy.TransitionBasedParser.v2",
                "state_type": "ner",
                "extra_state_tokens": False,
                "hidden_width": 64,
                "maxout_pieces": 2,
                "use_upper": True,
                "tok2vec": LISTENER,
            }
        },
    )
    return nlp


def trained(path: Path, output: str, tagging: str, updates: int, seed: int = 0) -> Language:
    """The pipeline saved at `path`, trained for `updates` batches of 32 first if absent."""
    if path.exists():
        return spacy.load(path)
    spacy.util.fix_random_seed(seed)
    nlp = build(output, tagging)
    docs, _ = read_iob(DATA / "train.tsv", nlp.vocab)
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in docs]
    optimizer = nlp.initialize(lambda: examples[:500])
    random.seed(seed)
    done, start = 0, time.perf_counter()
    while done < updates:
        random.shuffle(examples)
        for batch in minibatch(examples, 32):
            losses = nlp.update(batch, sgd=optimizer, drop=0.1)
            done += 1
            if done % 50 == 0:
                rate = done / (time.perf_counter() - start)
                print(f"update {done}: {rate:.1f} updates/s, losses {losses}", flush=True)
            if done == updates:
                break
    path.parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(path)
    return nlp


def interleaved(nlp: Language, texts: List[str], batch_size: int, rounds: int) -> Dict[str, float]:
    """Best words/s of each system over `rounds` passes taken in turn."""
    best = dict.fromkeys(SYSTEMS, 0.0)
    for names in SYSTEMS.values():
        list(nlp.pipe(texts[:batch_size], batch_size=batch_size, disable=[n for n in nlp.pipe_names if n not in names]))
    for _ in range(rounds):
        for system, names in SYSTEMS.items():
            disable = [name for name in nlp.pipe_names if name not in names]
            start = time.perf_counter()
            n_words = sum(len(doc) for doc in nlp.pipe(texts, batch_size=batch_size, disable=disable))
            best[system] = max(best[system], n_words / (time.perf_counter() - start))
    return best


def markdown(results: Dict) -> str:
    base = results["words_per_second"]["tok2vec"]
    lines = [
        "# Inference cost of the tagger head (CNN tok2vec, NCBI-disease)",
        "",
        f"`bioner_tagger` output {results['output']}, tagging {results['tagging']}. "
        f"{results['sentences']} test sentences, batch {results['batch_size']}, best of {results['rounds']} passes "
        f"taken in turn, one thread; {results['machine']}. The machine is shared (other jobs may run at the "
        "same time): compare the rows of one run, not runs with each other.",
        "",
        "| system | words/s | head share of time over tok2vec |",
        "|---|---:|---:|",
    ]
    for system, wps in results["words_per_second"].items():
        share = "" if system == "tok2vec" else f"{1 - wps / base:.1%}"
        lines.append(f"| {system} | {wps:,.0f} | {share} |")
    lines += ["", f"Command: `{results['command']}`", ""]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    path = args.work / f"pipeline-{args.output}-{args.tagging}-{args.updates}"
    nlp = trained(path, args.output, args.tagging, args.updates)
    docs, _ = read_iob(DATA / "test.tsv", nlp.vocab)
    texts = [doc.text for doc in docs[: args.sentences]]
    speeds = interleaved(nlp, texts, args.batch_size, args.rounds)
    base = speeds["tok2vec"]
    results = {
        "sentences": len(texts),
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "updates": args.updates,
        "output": args.output,
        "tagging": args.tagging,
        "machine": f"{platform.processor() or platform.machine()}, CPU, 1 thread",
        "command": display_command(sys.argv, args.work),
        "words_per_second": speeds,
        "head_share": {system: 1 - wps / base for system, wps in speeds.items() if system != "tok2vec"},
    }
    print(markdown(results))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf8")
    (RESULTS / f"{args.name}.md").write_text(markdown(results), encoding="utf8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", choices=["crf", "softmax"], default="crf")
    parser.add_argument("--tagging", choices=["iob", "iobes"], default="iob")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bioner_head_speed"))
    parser.add_argument("--name", default="head_speed")
    main(parser.parse_args())
