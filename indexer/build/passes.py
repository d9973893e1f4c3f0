"""The build's passes over the documents: embed (validating and spilling embeddings to a
scratch file, so memory is bounded by the batch), train on a sample, encode, write shards.

Reading is streamed twice: the first pass embeds, the second writes the shards with the codes.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

from hashindex.code_encoder import embed_for, encode_embedded
from hashindex.embedding.cache import embed_with_cache
from hashindex.encoding import encode_codes
from hashindex.errors import HashIndexError
from hashindex.faults import fault_point
from hashindex.segments.adding import UniqueIds
from hashindex.training import TrainConfig
from indexer.build.checks import open_cache

ENCODE_ROWS = 65_536
ID_HINT = "ids in --id-column must be unique"  # the builds' duplicate-id message ends so
TOKEN_ROWS = 1_024  # a sequence variant's texts embedded to tokens at once: 1 024 × 32 × 384 × 4 B


def embed_pass(run, scratch) -> tuple[int, int, pa.Schema]:
    """First pass: validate every batch, embed it (or take its embeddings), spill to scratch.
    Returns (documents, dimension, the metadata columns' schema)."""
    config, stream, embedder, clock, report = (run.config, run.stream, run.embedder, run.clock,
                                               run.report)
    seen_ids = UniqueIds(str(stream.path), ID_HINT)
    schemas: list[pa.Schema] = []
    cache = open_cache(config, embedder) if embedder is not None else None
    count, dim = 0, None
    bar = tqdm(desc="read+embed", unit="doc", disable=not config.show_progress)
    try:
        with open(scratch / "embeddings.f32", "wb") as spill:
            batches = stream.batches(config.batch_rows)
            while True:
                started = time.perf_counter()
                batch = next(batches, None)
                clock.add("read", started)
                if batch is None:
                    break
                report.skipped += batch.skipped
                seen_ids.add(batch.ids, count + 1)
                schemas.append((count + 1, batch.metadata.schema))
                if run.on_batch is not None:
                    run.on_batch(batch, count + 1)
                started = time.perf_counter()
                if batch.embeddings is not None:
                    vectors = batch.embeddings
                else:
                    vectors, computed = embed_with_cache(batch.texts, embedder, cache)
                    report.embedded += computed
                clock.add("embed", started)
                sample = run.token_sample
                if sample is not None and not sample.full:
                    sample.add(embedder, batch.texts)
                if dim is not None and vectors.shape[1] != dim:
                    raise HashIndexError(f"{stream.path}: embedding dimension changed mid-file")
                dim = vectors.shape[1]
                spill.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
                count += len(vectors)
                bar.update(len(vectors))
                fault_point("embed")
    finally:
        bar.close()
        if cache is not None:
            cache.close()
        if hasattr(embedder, "close"):
            embedder.close()  # its worker processes, if any
    if count == 0:
        skipped = f" ({report.skipped} empty rows skipped)" if report.skipped else ""
        raise HashIndexError(f"{stream.path}: no documents to index{skipped}")
    report.documents = count
    report.truncated = getattr(embedder, "truncated", 0)
    if report.truncated:  # the length, only then: reading it loads the model
        report.max_tokens = embedder.max_tokens
    return count, dim, unify_metadata(schemas, stream.path)


def unify_metadata(schemas: list[tuple[int, pa.Schema]], path) -> pa.Schema:
    """One schema for every batch's metadata columns, or an error naming the column whose type
    changes and the first document where it does."""
    try:
        return pa.unify_schemas([s for _, s in schemas], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    first_types: dict[str, tuple[int, pa.DataType]] = {}
    for row, schema in schemas:
        for item in schema:
            if pa.types.is_null(item.type):
                continue
            seen = first_types.setdefault(item.name, (row, item.type))
            try:
                pa.unify_schemas([pa.schema([pa.field(item.name, seen[1])]), pa.schema([item])],
                                 promote_options="permissive")
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                raise HashIndexError(
                    f"{path}: column {item.name!r} holds {seen[1]} from document {seen[0]} but "
                    f"{item.type} from document {row} on; give every value of a column the "
                    "same type"
                ) from None
    raise HashIndexError(f"{path}: the metadata columns' types change within the file")


def sample_rows(embeddings: np.ndarray, config: TrainConfig) -> np.ndarray:
    """The training set: every row, or a seeded sample of max_train_docs rows."""
    if len(embeddings) <= config.max_train_docs:
        return np.asarray(embeddings)
    rng = np.random.default_rng(config.seed)
    return np.asarray(embeddings[np.sort(rng.choice(len(embeddings), config.max_train_docs,
                                                    replace=False))])


def encode(model, embeddings: np.ndarray) -> np.ndarray:
    """uint8 codes of every row of the (memory-mapped) embeddings, a block at a time."""
    if not len(embeddings):
        return np.zeros((0, model.config.bits // 8), np.uint8)
    encoder = model.export_encoder()
    return np.concatenate([encode_codes(encoder, np.asarray(embeddings[s : s + ENCODE_ROWS]))
                           for s in range(0, len(embeddings), ENCODE_ROWS)])


class TokenSample:
    """The token sequences of the input's first `capacity` documents, packed for training a
    sequence variant (models/sequence.py): capacity × (max_tokens + 1) × d × 4 bytes."""

    def __init__(self, capacity: int, max_tokens: int):
        self.capacity, self.max_tokens = capacity, max_tokens
        self.rows: list[np.ndarray] = []
        self.count = 0

    @property
    def full(self) -> bool:
        return self.count >= self.capacity

    def add(self, embedder, texts: list[str]) -> None:
        from hashindex.models.sequence import pack

        texts = texts[: self.capacity - self.count]
        if texts:
            self.rows.append(pack(*embedder.embed_tokens(texts, self.max_tokens)))
            self.count += len(texts)

    def packed(self) -> np.ndarray:
        return np.concatenate(self.rows)


def encode_write_pass(run, writer, encoder) -> np.ndarray:
    """Second pass for a sequence variant: re-read the documents, embed each batch's token
    sequences, encode and write them (never holding more than a batch of tokens); the codes."""
    config, stream, embedder = run.config, run.stream, run.embedder
    codes = []
    bar = tqdm(desc="tokens+encode+write", unit="doc", disable=not config.show_progress)
    for batch in stream.batches(config.batch_rows):
        part = np.concatenate([  # tokens of TOKEN_ROWS texts at a time, not of the batch
            encode_embedded(encoder, embed_for(embedder, batch.texts[s : s + TOKEN_ROWS],
                                               encoder.max_tokens))
            for s in range(0, len(batch.texts), TOKEN_ROWS)])
        writer.write(batch.ids, batch.texts, batch.metadata, part)
        codes.append(part)
        bar.update(len(part))
    bar.close()
    return np.concatenate(codes)


def write_pass(run, writer, codes) -> None:
    """Second pass: re-read the documents and write them with their codes into the segment's
    shards (a SegmentWriter)."""
    config, stream = run.config, run.stream
    row = 0
    bar = tqdm(total=len(codes), desc="write", unit="doc", disable=not config.show_progress)
    for batch in stream.batches(config.batch_rows):
        end = row + len(batch.ids)
        writer.write(batch.ids, batch.texts, batch.metadata, codes[row:end])
        bar.update(end - row)
        row = end
    bar.close()


