"""Adding documents to a living index: the build's readers, columns, embedding cache and
passes, the index's own text model and trained encoder (no retraining), one new segment
committed as one generation (hashindex/segments/writer.py).

    report = add_documents(AddConfig(index="my-index", input="new.jsonl"))
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from hashindex.engine import HashIndex
from hashindex.errors import HashIndexError
from hashindex.segments.writer import IndexWriter, check_columns_fit
from hashindex.store.layout import PRECOMPUTED_MODEL
from hashindex.validation import (
    FLAG,
    INTEGER,
    OPTIONAL_PATH,
    OPTIONAL_TEXT,
    PATH,
    check_argument,
    check_arguments,
)
from indexer.build.checks import check_input
from indexer.build.config import BuildConfig, BuildReport, StageClock
from indexer.build.local import BuildRun
from indexer.build.passes import embed_pass, encode_write_pass, write_pass
from indexer.documents import ColumnOptions, DocumentStream, column_options, name_rows
from indexer.readers import open_reader

ENCODE_ROWS = 65_536


@dataclass(frozen=True)
class AddConfig:
    """What to add where. Columns default to the ones the index was built with."""

    index: str
    input: str
    format: str | None = None  # None: by extension
    columns: ColumnOptions | None = None  # None: the build's
    upsert: bool = False  # replace documents whose id is already in the index
    batch_rows: int = 8_192
    cache_dir: str | None = None
    use_cache: bool = True
    show_progress: bool = True

    def __post_init__(self):
        """Each argument's kind, where it enters (see BuildConfig)."""
        if self.columns is not None:
            object.__setattr__(self, "columns", column_options(self.columns, "AddConfig"))
        check_arguments("AddConfig", vars(self), {
            "index": PATH, "input": PATH, "format": OPTIONAL_TEXT, "upsert": FLAG,
            "batch_rows": INTEGER, "cache_dir": OPTIONAL_PATH, "use_cache": FLAG,
            "show_progress": FLAG})
        if self.batch_rows < 1:
            raise HashIndexError(f"AddConfig: batch_rows={self.batch_rows} must be at least 1")


@dataclass
class AddReport:
    index: Path
    added: int = 0
    replaced: int = 0  # documents of the same id the add replaced (--upsert)
    embedded: int = 0  # texts the model embedded (the rest came from the cache)
    skipped: int = 0
    segment: str = ""
    generation: int = 0
    merged: int = 0  # small segments the merge policy then merged into one (0: none)
    stage_seconds: dict = field(default_factory=dict)


def add_documents(config: AddConfig, *, embedder=None) -> AddReport:
    """Embed, encode and write INPUT's documents as a new segment of the index, and commit.
    Ids already in the index are an error unless `upsert` (then the old versions are deleted in
    the same commit). `embedder` replaces the index's text model (tests)."""
    check_argument("add_documents", "config", config, ((AddConfig,), "an AddConfig"))
    source = check_input(config.input)
    with IndexWriter(config.index) as writer:
        index = HashIndex.open(config.index)
        manifest = writer.manifest
        columns = config.columns or ColumnOptions(**{
            k: v for k, v in manifest.build.get("columns", {}).items()
            if k in ColumnOptions.__dataclass_fields__})
        precomputed = manifest.embedding_model == PRECOMPUTED_MODEL
        columns = check_columns(config, columns, precomputed)
        stream = DocumentStream(open_reader(source, config.format), columns)
        if not precomputed and embedder is None:
            embedder = index.embedder(for_documents=True)
        build = BuildConfig(input=str(source), out=str(config.index), columns=columns,
                            batch_rows=config.batch_rows, cache_dir=config.cache_dir,
                            use_cache=config.use_cache, show_progress=config.show_progress)
        run = BuildRun(build, None, stream, None if precomputed else embedder, StageClock(),
                       BuildReport(Path(config.index)))
        replaced: list[np.ndarray] = []
        index_schema = writer.metadata_schema()

        def check_batch(batch, first):
            check_metadata(batch, index_schema, index.dimension, source)
            replaced.append(existing_rows(writer, batch, first, stream, config.upsert))

        run.on_batch = check_batch
        segment = writer.new_segment()
        count, dim, _ = embed_pass(run, writer.scratch(segment))
        started = time.perf_counter()
        embeddings = np.memmap(writer.scratch(segment) / "embeddings.f32", dtype=np.float32,
                               mode="r", shape=(count, dim))
        if index.encoder.reads_tokens:  # a sequence variant: codes from a pass over tokens
            codes = encode_write_pass(run, segment, index.encoder)
        else:
            codes = np.concatenate([
                index.encoder.encode(np.asarray(embeddings[s : s + ENCODE_ROWS]))
                for s in range(0, count, ENCODE_ROWS)])
        run.clock.add("encode", started)
        started = time.perf_counter()
        if not index.encoder.reads_tokens:
            write_pass(run, segment, codes)
        rows = np.unique(np.concatenate(replaced)) if replaced else np.zeros(0, np.int64)
        record = writer.commit_segment(segment, codes, embeddings, replaced=rows)
        del embeddings
        run.clock.add("write", started)
        return AddReport(Path(config.index), added=record.rows, replaced=len(rows),
                         embedded=run.report.embedded, skipped=run.report.skipped,
                         segment=record.name, generation=writer.manifest.generation,
                         merged=writer.merged.segments_before if writer.merged else 0,
                         stage_seconds={k: round(v, 3) for k, v in run.clock.seconds.items()})


def check_columns(config: AddConfig, columns: ColumnOptions, precomputed: bool
                  ) -> ColumnOptions:
    if precomputed and columns.embedding_column is None:
        raise HashIndexError(f"index {config.index} was built from precomputed embeddings: "
                             "give the input's with --embedding-column")
    if not precomputed and columns.embedding_column is not None:
        if config.columns is None:  # the build's own column, not asked for: embed the text
            return replace(columns, embedding_column=None)
        raise HashIndexError(f"index {config.index} embeds text with its own model; drop "
                             "--embedding-column and let it embed the input's text")
    return columns


def existing_rows(writer: IndexWriter, batch, first: int, stream: DocumentStream,
                  upsert: bool) -> np.ndarray:
    """The live rows holding ids of this batch: an error naming them without `upsert`;
    checked before the batch is embedded, so a mistaken add fails in seconds."""
    if stream.options.id_column is None:
        raise HashIndexError(
            f"{stream.path}: no id column (a column named id, or --id-column); an add needs "
            "ids, or its row numbers would collide with the index's")
    rows = writer.live_rows_of(batch.ids)
    if len(rows) and not upsert:
        taken = set(writer.ids_at(rows))
        where = np.array([first + i for i, doc in enumerate(batch.ids) if doc in taken])
        shown = ", ".join(repr(i) for i in sorted(taken)[:3])
        raise HashIndexError(
            f"{stream.path}: id(s) {shown} (document(s) {name_rows(where)}) are already in "
            f"index {writer.root} ({len(taken)} in this batch); pass --upsert to replace them")
    return rows


def check_metadata(batch, index_schema, dimension: int, source) -> None:
    """The input's metadata columns must be among the index's (a missing one is stored as
    null) and its precomputed embeddings of the index's dimension."""
    check_columns_fit(batch.metadata.column_names, index_schema, str(source))
    if batch.embeddings is not None and batch.embeddings.shape[1] != dimension:
        raise HashIndexError(
            f"{source}: embeddings of dimension {batch.embeddings.shape[1]}, but the index "
            f"holds {dimension}-dimensional ones; add embeddings from the index's model")
