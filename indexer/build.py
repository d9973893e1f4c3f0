"""Build orchestration: read → embed (cached) → train or load the encoder → encode → write.

Reading is streamed twice: the first pass validates and embeds (embeddings spill to a scratch
file, so memory is bounded by the batch size), the second writes shards with the codes. All
output goes to a staging directory that is renamed into place only when complete.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

from hashindex import __version__
from hashindex.backends import BACKENDS, DEFAULT_FAISS_BACKEND, FAISS_BACKENDS, check_backend
from hashindex.codes import check_bits
from hashindex.config import ModelConfig, TrainConfig
from hashindex.diagnostics import code_diagnostics
from hashindex.encoding import encode_codes
from hashindex.errors import HashIndexError
from hashindex.faults import fault_point
from hashindex.model_io import load_model, read_model_config, save_model
from hashindex.models import DEFAULT_VARIANT, check_variant, create_model
from hashindex.store.layout import ENCODER_DIR, FAISS_DIR, PRECOMPUTED_MODEL, TABLE_DIR
from hashindex.store.manifest import write_manifest
from hashindex.store.publish import Staging, check_target, path_error
from hashindex.training import model_config_for, train
from indexer.cache import EmbeddingCache, default_cache_dir, embed_with_cache
from indexer.documents import ColumnOptions, DocumentStream
from indexer.embedder import DEFAULT_MODEL, Embedder
from indexer.readers import open_reader
from indexer.shard_writer import ShardWriter

SCRATCH_DIR = "_scratch"


@dataclass(frozen=True)
class BuildConfig:
    input: str
    out: str
    format: str | None = None
    columns: ColumnOptions = ColumnOptions()
    model: str = DEFAULT_MODEL
    variant: str = DEFAULT_VARIANT
    bits: int = 64
    backend: str = DEFAULT_FAISS_BACKEND
    shard_rows: int = 100_000
    batch_rows: int = 8_192
    embed_batch_size: int = 64
    store_embeddings: bool = False
    substring_index: bool = True
    encoder: str | None = None
    overwrite: bool = False
    cache_dir: str | None = None
    use_cache: bool = True
    show_progress: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class BuildReport:
    out: Path
    documents: int = 0
    skipped: int = 0
    embedded: int = 0  # texts the model actually embedded (the rest came from the cache)
    removed_leftovers: list[tuple[Path, int]] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)


class StageClock:
    def __init__(self):
        self.seconds: dict[str, float] = {}

    def add(self, stage: str, started: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started


def check_paths(config: BuildConfig) -> tuple[Path, Path]:
    source = Path(config.input)
    if not source.exists():
        raise HashIndexError(f"input {config.input} does not exist")
    try:  # unreadable input fails now, not after the text model has loaded
        if source.is_dir():
            os.listdir(source)
        else:
            open(source, "rb").close()
    except OSError as error:
        raise path_error(error, f"input {config.input}") from None
    target = Path(config.out).absolute()
    check_target(target, config.overwrite, [source], shown=config.out)
    return source.resolve(), target


def build_index(
    config: BuildConfig,
    train_config: TrainConfig | None = None,
    model_config: ModelConfig | None = None,
    embedder: Embedder | None = None,
) -> BuildReport:
    """Build the index described by `config`; returns what was done and how long it took."""
    train_config = train_config or TrainConfig(show_progress=config.show_progress)
    check_bits(config.bits)
    check_variant(config.variant)
    check_backend(config.backend, FAISS_BACKENDS)
    if config.shard_rows < 1:
        raise HashIndexError(f"--shard-rows {config.shard_rows} must be at least 1")
    source, target = check_paths(config)
    reader = open_reader(source, config.format)
    stream = DocumentStream(reader, config.columns)
    precomputed = config.columns.embedding_column is not None
    if embedder is None and not precomputed:
        embedder = Embedder(config.model, batch_size=config.embed_batch_size)
    model_name = PRECOMPUTED_MODEL if precomputed else embedder.name
    encoder_model = check_encoder(config, model_name)
    if encoder_model is None and embedder is not None:
        check_model_config(config, model_config, text_dimension(config, embedder))

    report = BuildReport(out=target)
    staging = Staging(target)
    with staging as folder:
        report.removed_leftovers = staging.removed
        clock = StageClock()
        scratch = folder / SCRATCH_DIR
        scratch.mkdir()
        count, dim, schema = embed_pass(config, stream, embedder, scratch, clock, report)
        embeddings = np.memmap(scratch / "embeddings.f32", dtype=np.float32, mode="r",
                               shape=(count, dim))

        started = time.perf_counter()
        if encoder_model is not None:
            model = encoder_model
            if model.config.input_dim != dim:
                raise HashIndexError(
                    f"--encoder {config.encoder} expects embeddings of dimension "
                    f"{model.config.input_dim}, but the input's are {dim}"
                )
        else:
            result = train(sample_rows(embeddings, train_config), config.variant, config.bits,
                           train_config, model_config)
            model, report.history = result.model, result.history
        clock.add("train", started)

        started = time.perf_counter()
        codes = np.concatenate([
            encode_codes(model, np.asarray(embeddings[s : s + 65_536]))
            for s in range(0, count, 65_536)
        ]) if count else np.zeros((0, model.config.bits // 8), np.uint8)
        clock.add("encode", started)

        started = time.perf_counter()
        shards = write_pass(config, stream, folder, schema, codes, embeddings, clock)
        save_model(model, folder / ENCODER_DIR, extra={"embedding_model": model_name})
        BACKENDS["table"].build(codes, model.config.bits, config.substring_index).save(
            folder / TABLE_DIR)
        fault_point("table")
        BACKENDS[config.backend].build(codes, model.config.bits).save(folder / FAISS_DIR)
        del embeddings
        shutil.rmtree(scratch)
        clock.add("write", started)

        report.diagnostics = code_diagnostics(codes)
        report.stage_seconds = clock.seconds
        write_manifest(folder, manifest_for(config, train_config, model, model_name, dim,
                                            shards, report, schema))
        staging.publish()
    return report


def open_cache(config: BuildConfig, embedder) -> EmbeddingCache | None:
    if not config.use_cache:
        return None
    return EmbeddingCache(Path(config.cache_dir) if config.cache_dir else default_cache_dir(),
                          embedder.name)


def text_dimension(config: BuildConfig, embedder) -> int:
    """The text model's embedding dimension, from the cache when it holds any of its vectors:
    a rebuild whose texts are all cached never loads the model."""
    cache = open_cache(config, embedder)
    cached = cache.dimension() if cache is not None else None
    if cache is not None:
        cache.close()
    return cached or embedder.dimension


def check_model_config(config: BuildConfig, model_config: ModelConfig | None, dim: int) -> None:
    """Make the code model once before any document is read, so that a bad --option fails in
    a second instead of after the embedding pass."""
    create_model(model_config_for(model_config, config.variant, config.bits, dim))


def check_encoder(config: BuildConfig, model_name: str):
    """Load --encoder and check it was trained on embeddings from the same model."""
    if config.encoder is None:
        return None
    saved = read_model_config(config.encoder)
    trained_on = saved.get("embedding_model")
    if trained_on and trained_on != model_name:
        raise HashIndexError(
            f"--encoder {config.encoder} was trained on embeddings from {trained_on!r}, but this "
            f"build uses {model_name!r}; pass --model {trained_on} or train a new encoder"
        )
    return load_model(config.encoder)


def embed_pass(config, stream, embedder, scratch, clock, report):
    """First pass: validate every batch, embed it (or take its embeddings), spill to scratch."""
    seen_ids: dict[str, int] = {}
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
                for offset, doc_id in enumerate(batch.ids):
                    if doc_id in seen_ids:
                        raise HashIndexError(
                            f"{stream.path}: duplicate id {doc_id!r} (documents {seen_ids[doc_id]} "
                            f"and {count + offset + 1}); ids in --id-column must be unique"
                        )
                    seen_ids[doc_id] = count + offset + 1
                schemas.append((count + 1, batch.metadata.schema))
                started = time.perf_counter()
                if batch.embeddings is not None:
                    vectors = batch.embeddings
                else:
                    vectors, computed = embed_with_cache(batch.texts, embedder, cache)
                    report.embedded += computed
                clock.add("embed", started)
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
    if count == 0:
        skipped = f" ({report.skipped} empty rows skipped)" if report.skipped else ""
        raise HashIndexError(f"{stream.path}: no documents to index{skipped}")
    report.documents = count
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


def write_pass(config, stream, staging, schema, codes, embeddings, clock):
    """Second pass: re-read the documents and write them with their codes into shards."""
    writer = ShardWriter(staging, schema, codes.shape[1],
                         embeddings.shape[1] if config.store_embeddings else None,
                         config.shard_rows)
    row = 0
    bar = tqdm(total=len(codes), desc="write", unit="doc", disable=not config.show_progress)
    for batch in stream.batches(config.batch_rows):
        end = row + len(batch.ids)
        writer.write(batch.ids, batch.texts, batch.metadata, codes[row:end],
                     np.asarray(embeddings[row:end]) if config.store_embeddings else None)
        bar.update(end - row)
        row = end
    bar.close()
    return writer.close()


def manifest_for(config, train_config, model, model_name, dim, shards, report, schema) -> dict:
    from datetime import datetime, timezone

    import faiss
    import pyarrow
    import torch

    return {
        "hashindex_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {"torch": torch.__version__, "faiss": faiss.__version__,
                     "pyarrow": pyarrow.__version__, "numpy": np.__version__},
        "embedding_model": {"name": model_name, "dimension": dim},
        "variant": model.config.variant,
        "bits": model.config.bits,
        "backend": config.backend,
        "documents": report.documents,
        "skipped_empty": report.skipped,
        "distinct_codes": report.diagnostics["distinct_codes"],
        "store_embeddings": config.store_embeddings,
        "metadata_columns": [f.name for f in schema],
        "shards": shards,
        "build": json.loads(json.dumps(config.to_dict(), default=str)),
        "train": train_config.to_dict() if config.encoder is None else None,
        "model": model.config.to_dict(),
        "stage_seconds": {k: round(v, 3) for k, v in report.stage_seconds.items()},
    }
