"""spaCy pipeline components (one file per factory)."""
