"""Bundled sample data (see README.md in this folder for its source and licence)."""

from pathlib import Path

SAMPLE_PATH = Path(__file__).resolve().parent / "stdlib_docs.jsonl"
