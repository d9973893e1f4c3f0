"""The index directory's layout: every name a writer, a reader, `info` or a benchmark uses.

```
INDEX/
  manifest.json     what the index holds and how it was made (manifest.py)
  encoder/          the trained autoencoder: config.json + model.safetensors (model_io.py)
  shards/           part-NNNNN.parquet: id, text, metadata, code (shards.py)
  table/            keys.npy, rows.npy: sorted code keys + row ids; substring_*.npy: the
                    multi-index over 16-bit substrings, when built (hashindex/table/)
  faiss/            index.faissb: the FAISS binary index of the manifest's backend; ids.npy
  vectors/          vectors.npy: the embeddings by row for re-ranking (int8 or float16);
                    scales.npy: int8's scale per row (hashindex/vectors.py)
```
Size accounting (what `info` and the benchmarks report) is here too.
"""

from __future__ import annotations

from pathlib import Path

MANIFEST_FILE = "manifest.json"
ENCODER_DIR = "encoder"
SHARDS_DIR = "shards"
TABLE_DIR = "table"
FAISS_DIR = "faiss"
VECTORS_DIR = "vectors"
TEXT_MODEL_DIR = "text_model"  # the exported int8 text model an index carries
EXPORTED_MODEL_FILE = "model.onnx"
# Every top-level entry an index may hold: a folder with anything else is not ours to replace.
INDEX_ENTRIES = frozenset({MANIFEST_FILE, ENCODER_DIR, SHARDS_DIR, TABLE_DIR, FAISS_DIR,
                           VECTORS_DIR, TEXT_MODEL_DIR})
TABLE_FILES = ("keys.npy", "rows.npy")
SUBSTRING_FILES = ("substring_positions.npy", "substring_offsets.npy")
FAISS_INDEX_FILE = "index.faissb"
FAISS_IDS_FILE = "ids.npy"
VECTORS_FILE = "vectors.npy"
SCALES_FILE = "scales.npy"
# The embedding-model name recorded for an index built from precomputed embeddings.
PRECOMPUTED_MODEL = "precomputed"


def shard_file(number: int) -> str:
    return f"{SHARDS_DIR}/part-{number:05d}.parquet"


def row_id_bytes(documents: int) -> int:
    """Width of a row id in the table: uint32 below 2^32 documents, else uint64."""
    return 4 if documents < 2**32 else 8


def bytes_of(files: dict, prefix: str) -> int:
    """Total bytes of the manifest's `files` whose path starts with `prefix`."""
    return sum(f["bytes"] for path, f in files.items() if path.startswith(prefix))


def table_sizes(files: dict, documents: int, bits: int) -> dict:
    """The table's bytes, its substring index's, and the raw codes + row ids they hold."""
    return {"table": bytes_of(files, TABLE_DIR + "/"),
            "substring_index": bytes_of(files, f"{TABLE_DIR}/substring_"),
            "raw_codes_and_rows": documents * (bits // 8 + row_id_bytes(documents))}


def foreign_entries(root: Path) -> list[str]:
    """Top-level names under `root` that an index never holds."""
    return sorted(p.name for p in root.iterdir() if p.name not in INDEX_ENTRIES)
