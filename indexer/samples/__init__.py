"""Bundled sample data (see README.md in this folder for its source and licence)."""

from pathlib import Path

SAMPLE_PATH = Path(__file__).resolve().parent / "stdlib_docs.jsonl"


def bundled_sample_texts() -> list[str]:
    """The sample's texts, in file order."""
    import json

    return [json.loads(line)["text"] for line in SAMPLE_PATH.read_text().splitlines() if line]
