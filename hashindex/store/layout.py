"""The index directory's layout: every name a writer, a reader, `info` or a benchmark uses.

```
INDEX/
  manifest.json     the current generation: what the index holds, its segments, every file's
                    checksum (manifest.py); replaced by one atomic rename per commit
  write.lock        the one writer's lock (lock.py)
  writer.json       while a change is under way: who makes it and the paths it creates and
                    retires (pending.py), so that only a writer's own files are ever removed
  encoder/          the trained autoencoder: config.json + model.safetensors (model_io.py)
  text_model/       the exported int8 text model, when the build quantized one
  segments/seg-NNNNNN/         one immutable segment (hashindex/segments/):
    shards/         part-NNNNN.parquet: id, text, metadata, code (shards.py)
    table/          keys.npy, rows.npy: sorted code keys + row ids; substring_*.npy: the
                    multi-index over 16-bit substrings, when built (hashindex/table/)
    faiss/          the manifest's second backend (index.faissb + ids.npy, or the graph)
    vectors/        vectors.npy: the embeddings by row for re-ranking (int8 or float16);
                    scales.npy: int8's scale per row (hashindex/vectors.py)
    deleted-GGGGGG.npy  the segment's deleted rows as of generation G (sorted, int64)
```
Indexes of format 3 (before segments) hold one segment's folders at the top level; they open
read-only until `hashindex upgrade` moves them into segments/seg-000001.
Size accounting (what `info` and the benchmarks report) is here too.
"""

from __future__ import annotations

MANIFEST_FILE = "manifest.json"
NEXT_MANIFEST_FILE = "manifest.json.next"  # a commit's manifest before its rename
LOCK_FILE = "write.lock"
PENDING_FILE = "writer.json"  # the record of a change under way (pending.py)
NEXT_PENDING_FILE = "writer.json.next"
SEGMENTS_DIR = "segments"
ENCODER_DIR = "encoder"
SHARDS_DIR = "shards"
TABLE_DIR = "table"
FAISS_DIR = "faiss"
VECTORS_DIR = "vectors"
TEXT_MODEL_DIR = "text_model"  # the exported int8 text model an index carries
EXPORTED_MODEL_FILE = "model.onnx"
# The files a writer keeps at the top of an index beside the manifest's: its own by name.
WRITER_FILES = frozenset({MANIFEST_FILE, NEXT_MANIFEST_FILE, LOCK_FILE, PENDING_FILE,
                          NEXT_PENDING_FILE})
TABLE_FILES = ("keys.npy", "rows.npy")
SUBSTRING_FILES = ("substring_positions.npy", "substring_offsets.npy")
FAISS_INDEX_FILE = "index.faissb"
FAISS_IDS_FILE = "ids.npy"
VECTORS_FILE = "vectors.npy"
SCALES_FILE = "scales.npy"
# The embedding-model name recorded for an index built from precomputed embeddings.
PRECOMPUTED_MODEL = "precomputed"


def shard_file(number: int, folder: str = "") -> str:
    """A shard's path relative to the index root (`folder`: its segment's)."""
    return join(folder, f"{SHARDS_DIR}/part-{number:05d}.parquet")


def segment_folder(number: int) -> str:
    return f"{SEGMENTS_DIR}/seg-{number:06d}"


def segment_number(folder: str) -> int:
    """The number in a segment folder's name (segment_folder's inverse)."""
    return int(folder.rsplit("-", 1)[1])


def deletions_file(folder: str, generation: int) -> str:
    return join(folder, f"deleted-{generation:06d}.npy")


def join(folder: str, name: str) -> str:
    """A path relative to the index root; folder "" is the root itself (format 3)."""
    return f"{folder}/{name}" if folder else name


def row_id_bytes(documents: int) -> int:
    """Width of a row id in the table: uint32 below 2^32 documents, else uint64."""
    return 4 if documents < 2**32 else 8


def bytes_in(files: dict, folder: str) -> int:
    """Total bytes of the manifest's `files` inside `folder` (a top-level folder or one inside
    any segment: "table" counts every segment's table)."""
    return sum(f["bytes"] for path, f in files.items()
               if path.startswith(folder + "/") or f"/{folder}/" in path)


def table_sizes(files: dict, documents: int, bits: int) -> dict:
    """The tables' bytes, their substring indexes', and the raw codes + row ids they hold."""
    substrings = sum(f["bytes"] for path, f in files.items() if f"{TABLE_DIR}/substring_" in path)
    return {"table": bytes_in(files, TABLE_DIR),
            "substring_index": substrings,
            "raw_codes_and_rows": documents * (bits // 8 + row_id_bytes(documents))}

