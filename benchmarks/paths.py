"""Paths as the benchmark scripts write them into results files: never an absolute path
of the machine that ran them. A path inside the project becomes project-relative
(configs/spans.cfg), one under the script's work directory `<workdir>/...`, one in the
checkout's parent directory (the shared data mirror) `../...`, one in the system's
temporary directory `<tmp>/...`; anything else is left as it is.
"""

import os
import shlex
import tempfile
from pathlib import Path
from typing import Optional, Sequence, Union

ROOT = Path(__file__).resolve().parents[1]
StrPath = Union[str, "os.PathLike[str]"]


def _under(path: Path, base: Path, placeholder: str) -> Optional[str]:
    try:
        relative = path.relative_to(base)
    except ValueError:
        return None
    if relative == Path("."):
        return placeholder
    return relative.as_posix() if placeholder == "" else f"{placeholder}/{relative.as_posix()}"


def display_path(path: StrPath, workdir: Optional[StrPath] = None) -> str:
    """`path` (absolute, or relative to the current directory) as a results file shows it."""
    absolute = Path(os.path.abspath(path))
    bases = [(ROOT, ""), (ROOT.parent, ".."), (Path(os.path.abspath(tempfile.gettempdir())), "<tmp>")]
    if workdir is not None:
        bases.insert(0, (Path(os.path.abspath(workdir)), "<workdir>"))
    for base, placeholder in bases:
        shown = _under(absolute, base, placeholder)
        if shown is not None:
            return shown or "."
    return str(path)


def display_arg(arg: str, workdir: Optional[StrPath] = None) -> str:
    """One command-line argument: absolute paths (also in --opt=PATH) and the work
    directory itself go through display_path; anything else is unchanged."""
    if workdir is not None and arg == str(workdir):
        return "<workdir>"
    if arg.startswith("--") and "=" in arg:
        option, value = arg.split("=", 1)
        return f"{option}={display_arg(value, workdir)}"
    return display_path(arg, workdir) if os.path.isabs(arg) else arg


def _quote(arg: str) -> str:
    """shlex.quote, leaving a leading <workdir> or <tmp> placeholder unquoted."""
    for placeholder in ("<workdir>", "<tmp>"):
        if arg.startswith(placeholder):
            rest = arg[len(placeholder) :]
            return placeholder + (shlex.quote(rest) if rest else "")
    return shlex.quote(arg)


def display_command(argv: Sequence[str], workdir: Optional[StrPath] = None) -> str:
    """`python ARGV...` as a results file shows the command: each argument through
    display_arg, shell-quoted like shlex.join."""
    return " ".join(_quote(arg) for arg in ["python", *(display_arg(a, workdir) for a in argv)])
