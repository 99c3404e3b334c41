"""Readers and writers between corpus formats and spaCy Docs."""
from .iob import CorpusFormatError, read_iob, write_iob

__all__ = ["CorpusFormatError", "read_iob", "write_iob"]
