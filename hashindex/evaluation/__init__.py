"""Retrieval-quality metrics: arrays in, numbers out, no I/O."""
