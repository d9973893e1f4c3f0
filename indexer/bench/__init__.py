"""Retrieval-quality benchmark: datasets, the evaluation protocol and the report."""
