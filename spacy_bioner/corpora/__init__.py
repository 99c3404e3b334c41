"""Readers and writers between corpus formats and spaCy Docs."""

from .brat import read_brat, read_brat_dir
from .iob import CorpusFormatError, read_iob, write_iob
from .spert import read_spert, write_spert

__all__ = ["CorpusFormatError", "read_brat", "read_brat_dir", "read_iob", "read_spert", "write_iob", "write_spert"]
