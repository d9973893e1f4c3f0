"""Writing one segment: its shards, its hash table, the index's second backend over its rows,
and its vectors. The build writes its one segment this way, `add` one per call and `compact`
the merged one, so every segment of an index is made alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from hashindex.backends import BACKENDS
from hashindex.faults import fault_point
from hashindex.store.layout import FAISS_DIR, TABLE_DIR, VECTORS_DIR
from hashindex.store.manifest import IndexManifest, Segment
from hashindex.store.shard_writer import ShardWriter
from hashindex.vectors import VectorStore


@dataclass(frozen=True)
class SegmentSettings:
    """How an index's segments are made (the build's choices, kept in its manifest)."""

    bits: int
    backend: str  # the second backend built beside the table
    backend_options: dict  # its knobs (build knobs are used here)
    substring_index: bool = True
    vector_dtype: str | None = None  # int8 or float16 when embeddings are stored, else None
    shard_rows: int = 100_000

    @classmethod
    def of(cls, manifest: IndexManifest) -> SegmentSettings:
        build = manifest.build or {}
        return cls(manifest.bits, manifest.backend, dict(manifest.backend_options),
                   bool(build.get("substring_index", True)),
                   manifest.vector_dtype if manifest.store_embeddings else None,
                   int(build.get("shard_rows", 100_000)))


class SegmentWriter:
    """A new segment in root/folder: documents in (write), then its indexes (finish)."""

    def __init__(self, root: Path, folder: str, metadata_schema: pa.Schema,
                 settings: SegmentSettings):
        self.root = Path(root)
        self.folder = folder
        self.settings = settings
        self.shards = ShardWriter(self.root, metadata_schema, settings.bits // 8,
                                  settings.shard_rows, folder=folder)
        (self.root / folder).mkdir(parents=True, exist_ok=True)

    def write(self, ids: list[str], texts: list[str], metadata: pa.Table,
              codes: np.ndarray) -> None:
        self.shards.write(ids, texts, metadata, codes)

    def finish(self, codes: np.ndarray, embeddings: np.ndarray | None = None, *,
               stored_vectors: list[tuple[VectorStore, np.ndarray]] | None = None,
               origin: str = "build", trained_rows: int = 0, name: str = "",
               generation: int = 1, written_shards: list[dict] | None = None) -> Segment:
        """Write the table, the second backend and the vectors over the segment's `codes`
        (row order). `embeddings` (float32, may be memory-mapped) feed the graph backend and
        the vectors; `stored_vectors` ((store, its rows) pairs, already quantized) are copied
        as they are instead, so a compacted segment's vectors are a rebuild's, bit for bit.
        `written_shards`: the shards were written by others (a distributed build's tasks)."""
        settings, folder = self.settings, self.root / self.folder
        shards = written_shards or self.shards.close(at_least_one=True)
        table = BACKENDS["table"]
        table.backend_class().build(codes, settings.bits, table.build_options(
            substring_index=settings.substring_index)).save(folder / TABLE_DIR)
        fault_point("table")
        entry = BACKENDS[settings.backend]
        build_knobs, _ = entry.split_options(settings.backend_options)
        entry.backend_class().build(codes, settings.bits, build_knobs,
                                    embeddings=embeddings).save(folder / FAISS_DIR)
        if settings.vector_dtype is not None:
            if stored_vectors is not None:
                VectorStore.write_selected(folder / VECTORS_DIR, stored_vectors)
            else:
                VectorStore.write(folder / VECTORS_DIR, embeddings, settings.vector_dtype)
        return Segment(name=name or Path(self.folder).name, folder=self.folder, rows=len(codes),
                       shards=shards, origin=origin, trained_rows=trained_rows,
                       generation=generation)
