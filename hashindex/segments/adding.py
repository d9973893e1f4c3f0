"""What an add needs of the index it changes, taken from the manifest its IndexWriter read under
the lock, never from a reader (a HashIndex would read the manifest again and open every
segment): the encoder, the text-model spec and a text model for documents, the dimension, the
build's column options, and the id checks. Every add path uses it (a file or Python source
through indexer/update.py, the service's documents through IndexWriter.add), and the builds use
its duplicate-id check, so each check is written once.

    with IndexWriter(path) as writer:
        adding = writer.adding()
        rows = adding.replaced_rows(ids, upsert=False, where="new.jsonl")
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from hashindex.code_encoder import EmbeddedBatch, encode_embedded
from hashindex.errors import HashIndexError
from hashindex.model_io import read_index_encoder
from hashindex.store.layout import EXPORTED_MODEL_FILE, PRECOMPUTED_MODEL, TEXT_MODEL_DIR
from hashindex.store.manifest import Segment
from hashindex.validation import name_rows, unit_embeddings


class UniqueIds:
    """The duplicate-id check of one input, fed batch by batch with the number of each batch's
    first document: an id seen twice is an error naming both documents. `hint` ends the message
    (what the user can do); `blank`: a blank id is an error too (documents given one by one,
    where no reader has checked them)."""

    def __init__(self, where: str = "", hint: str = "ids must be unique", *,
                 blank: bool = False):
        self.prefix = f"{where}: " if where else ""
        self.hint = hint
        self.blank = blank
        self.seen: dict[str, int] = {}

    def add(self, ids, first: int) -> None:
        seen = self.seen
        for number, doc in enumerate(ids, first):
            if self.blank and not doc.strip():
                raise HashIndexError(f"{self.prefix}document {number}: the id is empty")
            if doc in seen:
                raise HashIndexError(f"{self.prefix}duplicate id {doc!r} (documents "
                                     f"{seen[doc]} and {number}); {self.hint}")
            seen[doc] = number


def check_columns_fit(names: list[str], index_schema: pa.Schema, where: str) -> None:
    """Added documents may leave a metadata column out (stored as null), not bring new ones."""
    extra = [name for name in names if name not in index_schema.names]
    if extra:
        raise HashIndexError(
            f"{where}: column(s) {', '.join(extra)} are not among the index's metadata columns "
            f"({', '.join(index_schema.names) or 'none'}); drop them, or rebuild the index to "
            "add columns")


class Adding:
    """One add's view of the index, from the writer's manifest (read once, under the lock)."""

    def __init__(self, writer):
        """`writer`: the IndexWriter (segments/writer.py) that holds the lock; not imported
        here, so that writer.py → adding.py stays the one direction."""
        manifest = writer.manifest
        self.writer = writer
        self.dimension = manifest.dimension
        self.precomputed = manifest.embedding_model == PRECOMPUTED_MODEL
        self.build_columns = dict((manifest.build or {}).get("columns", {}))  # as recorded
        self.metadata_schema = writer.metadata_schema()
        self._encoder = None

    @property
    def encoder(self):
        """The index's trained encoder (checked against the manifest's bits), read once."""
        if self._encoder is None:
            self._encoder = read_index_encoder(self.writer.root, self.writer.manifest.bits)
        return self._encoder

    def text_spec(self):
        """The text model the index's documents were embedded with (an EmbeddingSpec)."""
        from hashindex.embedding.embedder import EmbeddingSpec

        manifest = self.writer.manifest
        if self.precomputed:
            raise HashIndexError(f"index {self.writer.root} was built from precomputed "
                                 "embeddings and has no text model; add embeddings")
        return EmbeddingSpec.from_record(manifest.embedding_model, manifest.embedding)

    def text_model(self, threads: int | None = None):
        """A text model for documents, made from the spec as a build makes it (not the lean
        query path), with the exported model the index carries, if any."""
        from hashindex.embedding.embedder import Embedder

        carried = self.writer.root / TEXT_MODEL_DIR / EXPORTED_MODEL_FILE
        model_file = carried.read_bytes() if carried.is_file() else None
        return Embedder.from_spec(self.text_spec(), model_file=model_file, lean=False,
                                  threads=threads)

    def replaced_rows(self, ids: list[str], *, upsert: bool, where: str, first: int = 0,
                      hint: str = "pass --upsert to replace them") -> np.ndarray:
        """The live rows holding these ids (an upsert deletes them in its commit); without
        `upsert` they are an error naming the ids and their documents (numbered from
        `first`), raised before anything is embedded, so a mistaken add fails in seconds."""
        writer = self.writer
        rows = writer.live_rows_of(ids)
        if len(rows) and not upsert:
            taken = set(writer.ids_at(rows))
            numbers = np.array([number for number, doc in enumerate(ids, first)
                                if doc in taken])
            shown = ", ".join(repr(i) for i in sorted(taken)[:3])
            raise HashIndexError(
                f"{where}: id(s) {shown} (document(s) {name_rows(numbers)}) are already in "
                f"index {writer.root} ({len(taken)} in this batch); {hint}")
        return rows

    def add(self, ids: list[str], texts: list[str | None], embeddings: np.ndarray,
            metadata: pa.Table | None = None, *, upsert: bool = False,
            tokens: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[Segment, int]:
        """Documents held in memory (the service's): checked, encoded and committed as one
        segment (see IndexWriter.add). Returns (the segment, documents replaced)."""
        ids = [str(i) for i in ids]
        if not ids:
            raise HashIndexError("no documents to add")
        shape = np.shape(embeddings)
        if len(shape) != 2 or shape[1] != self.dimension:
            raise HashIndexError(f"embeddings of shape {shape}; this index holds "
                                 f"{self.dimension}-dimensional ones")
        embeddings = unit_embeddings(embeddings, self.dimension, "the embeddings")
        if len(texts) != len(ids) or len(embeddings) != len(ids):
            raise HashIndexError(f"{len(ids)} ids, {len(texts)} texts and {len(embeddings)} "
                                 "embeddings: give one of each per document")
        UniqueIds(blank=True).add(ids, 0)
        metadata = metadata if metadata is not None else pa.table({})
        check_columns_fit(metadata.column_names, self.metadata_schema, "the documents")
        replaced = self.replaced_rows(ids, upsert=upsert, where="documents",
                                      hint="upsert to replace them")
        encoder = self.encoder
        if encoder.reads_tokens and tokens is None:
            raise HashIndexError("this index's codes come from token sequences: add "
                                 "documents with their text")
        codes = encode_embedded(encoder, EmbeddedBatch(  # tokens: (token embeddings, counts)
            embeddings, *(tokens if encoder.reads_tokens else ())))
        segment = self.writer.new_segment(self.metadata_schema)
        segment.write(ids, list(texts), metadata, codes)
        record = self.writer.commit_segment(segment, codes, embeddings, replaced=replaced)
        return record, len(replaced)
