"""Thinc layers and registered model architectures."""
