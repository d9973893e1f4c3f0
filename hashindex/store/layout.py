"""The index directory's layout: every name a writer, a reader, `info` or a benchmark uses.

```
INDEX/
  manifest.json     what the index holds and how it was made (manifest.py)
  encoder/          the trained autoencoder: config.json + model.safetensors (model_io.py)
  shards/           part-NNNNN.parquet: id, text, metadata, code[, embedding] (shards.py)
  table/            sorted code keys + row ids[, substring index] (hashindex/table/)
  faiss/            the FAISS binary index of the manifest's backend + its id map
```
"""

from __future__ import annotations

from pathlib import Path

MANIFEST_FILE = "manifest.json"
ENCODER_DIR = "encoder"
SHARDS_DIR = "shards"
TABLE_DIR = "table"
FAISS_DIR = "faiss"
# Every top-level entry an index may hold: a folder with anything else is not ours to replace.
INDEX_ENTRIES = frozenset({MANIFEST_FILE, ENCODER_DIR, SHARDS_DIR, TABLE_DIR, FAISS_DIR})
# The embedding-model name recorded for an index built from precomputed embeddings.
PRECOMPUTED_MODEL = "precomputed"


def shard_file(number: int) -> str:
    return f"{SHARDS_DIR}/part-{number:05d}.parquet"


def files_under(manifest: dict, folder: str) -> int:
    """Bytes of the manifest's files under `folder` (e.g. TABLE_DIR)."""
    return sum(f["bytes"] for path, f in manifest.get("files", {}).items()
               if path.startswith(folder + "/"))


def foreign_entries(root: Path) -> list[str]:
    """Top-level names under `root` that an index never holds."""
    return sorted(p.name for p in root.iterdir() if p.name not in INDEX_ENTRIES)
