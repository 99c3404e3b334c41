"""Print the entity scores of a `spacy evaluate` JSON file as a per-type table."""
import json
import sys
from pathlib import Path


def main(path: str) -> None:
    scores = json.loads(Path(path).read_text(encoding="utf8"))
    keys = sorted(key[: -len("_per_type")] for key in scores if key.endswith("_per_type") and scores[key])
    if not keys:
        sys.exit(f"{path} has no per-type entity scores")
    for prefix in keys:
        print(f"\n{prefix}: strict entity-level scores (%)")
        print(f"{'type':<24}{'P':>8}{'R':>8}{'F1':>8}")
        for label, prf in sorted(scores[f"{prefix}_per_type"].items()):
            print(f"{label:<24}{100 * prf['p']:>8.2f}{100 * prf['r']:>8.2f}{100 * prf['f']:>8.2f}")
        overall = (scores[f"{prefix}_p"], scores[f"{prefix}_r"], scores[f"{prefix}_f"])
        print(f"{'ALL (micro)':<24}" + "".join(f"{100 * value:>8.2f}" for value in overall))


if __name__ == "__main__":
    main(sys.argv[1])
