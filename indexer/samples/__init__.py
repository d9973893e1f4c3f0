"""Bundled sample data (see README.md in this folder for its source and licence)."""

from pathlib import Path

SAMPLE_PATH = Path(__file__).resolve().parent / "stdlib_docs.jsonl"


def bundled_sample_records() -> list[dict]:
    """The sample's records (id, text, module), in file order."""
    import json

    return [json.loads(line) for line in SAMPLE_PATH.read_text().splitlines() if line]


def bundled_sample_texts() -> list[str]:
    """The sample's texts, in file order."""
    return [record["text"] for record in bundled_sample_records()]
