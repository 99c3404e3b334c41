"""spacy-bioner: biomedical entity and relation extraction as spaCy pipeline components.

Importing the package registers nothing by itself: spaCy finds the factories,
architectures, scorers and readers through the entry points in pyproject.toml.
"""

__version__ = "0.1.0"
