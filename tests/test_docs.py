"""The documentation's links and results paths point at files that exist.

Checks README.md, docs/*.md and benchmarks/README.md: every relative markdown link
resolves to an existing file or directory, a `#anchor` into a markdown file names one
of its headings (GitHub's heading ids), and every `benchmarks/results/...` path the text
mentions (links, code, prose; `{a,b}` alternatives expanded) exists. Also: the README's
first screen keeps the two commands CI runs (.ci/run)."""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LINK = re.compile(r"\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
RESULTS_PATH = re.compile(r"benchmarks/results/[^\s`'\"()\[\]<>|;,{}]*(?:\{[^}\s]*\}[^\s`'\"()\[\]<>|;,{}]*)*")
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, ...

README_COMMANDS = (
    "bash scripts/setup_env.sh && .venv/bin/python -m spacy project run all",
    "bash scripts/setup_env.sh && .venv/bin/python -m pytest",
)


def doc_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [f for f in files if f.exists()]


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, in_fence = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's id for a heading: markup removed, lower case, punctuation dropped,
    spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    ids: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        ids.add(base if n == 0 else f"{base}-{n}")
    return ids


def broken_links(path: Path) -> list[str]:
    """'file: target (why)' for every relative link in PATH that does not resolve."""
    problems = []
    for line in prose_lines(path.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            if EXTERNAL.match(target):
                continue
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path
            if not dest.exists():
                problems.append(f"{path.relative_to(ROOT)}: {target} (no such file)")
                continue
            if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                problems.append(f"{path.relative_to(ROOT)}: {target} (no heading #{anchor})")
    return problems


def expand_braces(path: str) -> list[str]:
    parts = re.split(r"\{([^}]*)\}", path)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(combo) for combo in itertools.product(*choices)]


def missing_results(path: Path) -> list[str]:
    """'file: path' for every benchmarks/results/... path PATH mentions that does not exist
    (templates with <placeholders> or [optional] parts are skipped)."""
    problems = []
    text = path.read_text(encoding="utf-8")
    for match in RESULTS_PATH.finditer(text):
        mentioned = match.group(0).rstrip(".:")
        following = text[match.end() : match.end() + 1]
        if following in ("<", "[", "*") or mentioned.endswith("_"):
            continue  # a template such as relations_<dataset>[_<encoder>].md
        for candidate in expand_braces(mentioned):
            if not (ROOT / candidate).exists():
                problems.append(f"{path.relative_to(ROOT)}: {candidate}")
    return problems


def test_the_documentation_exists():
    names = {f.relative_to(ROOT).as_posix() for f in doc_files()}
    for name in ("README.md", "benchmarks/README.md", "docs/references.md", "docs/tagger.md", "docs/relations.md"):
        assert name in names


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(path):
    assert broken_links(path) == []


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_results_paths_exist(path):
    assert missing_results(path) == []


def test_readme_first_screen_keeps_the_ci_commands():
    first_screen = "\n".join((ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:25])
    for command in README_COMMANDS:
        assert command in first_screen


def test_the_checks_catch_what_they_should(tmp_path, monkeypatch):
    """The checkers are not vacuous: a broken file link, a missing heading and a missing
    results file are all reported; a good link, a code block and a template are not."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "a.md").write_text("x\n")
    (tmp_path / "other.md").write_text("# Real heading\n\n```bash\n# not a heading\n```\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#real-heading) [ok2](benchmarks/results/a.md) [web](https://example.org/x)\n"
        "[gone](missing.md) [bad anchor](other.md#not-a-heading) [code](other.md#not-a-heading-1)\n"
        "`benchmarks/results/a.md` `benchmarks/results/{a,b}.md` benchmarks/results/x_<name>.md\n"
        "```\n[inside](code-block.md)\n```\n"
    )
    assert broken_links(page) == [
        "page.md: missing.md (no such file)",
        "page.md: other.md#not-a-heading (no heading #not-a-heading)",
        "page.md: other.md#not-a-heading-1 (no heading #not-a-heading-1)",
    ]
    assert missing_results(page) == ["page.md: benchmarks/results/b.md"]
    assert (
        slug("Choosing settings: tagger vs spaCy's `ner` (CNN, BC5CDR)")
        == "choosing-settings-tagger-vs-spacys-ner-cnn-bc5cdr"
    )
