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

from hashindex.errors import HashIndexError
from hashindex.segments.adding import Adding, check_columns_fit
from hashindex.segments.writer import IndexWriter
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
from indexer.build.passes import embed_pass, encode_write_pass, write_pass
from indexer.build.skeleton import BuildRun
from indexer.documents import ColumnOptions, DocumentStream, column_options
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
    # The build's columns with these fields changed (the command line's flags): read from the
    # manifest by the add's writer, so the caller need not read it; not with `columns`.
    column_changes: dict | None = None

    def __post_init__(self):
        """Each argument's kind, where it enters (see BuildConfig)."""
        if self.columns is not None:
            object.__setattr__(self, "columns", column_options(self.columns, "AddConfig"))
        if self.column_changes is not None:
            column_options(self.column_changes, "AddConfig")  # the fields and their kinds
            if self.columns is not None:
                raise HashIndexError("AddConfig: give columns or column_changes, not both")
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
    the same commit). What the index holds (encoder, text model, columns) comes from the
    writer, which reads the manifest once; `embedder` replaces the index's text model (tests)."""
    check_argument("add_documents", "config", config, ((AddConfig,), "an AddConfig"))
    source = check_input(config.input)
    with IndexWriter(config.index) as writer:
        adding = writer.adding()
        columns = config.columns or ColumnOptions.of_build(adding.build_columns,
                                                           **(config.column_changes or {}))
        columns = check_columns(config, columns, adding.precomputed)
        stream = DocumentStream(open_reader(source, config.format), columns)
        if not adding.precomputed and embedder is None:
            embedder = adding.text_model()
        build = BuildConfig(input=str(source), out=str(config.index), columns=columns,
                            batch_rows=config.batch_rows, cache_dir=config.cache_dir,
                            use_cache=config.use_cache, show_progress=config.show_progress)
        run = BuildRun(build, None, stream, None if adding.precomputed else embedder,
                       StageClock(), BuildReport(Path(config.index)))
        replaced: list[np.ndarray] = []

        def check_batch(batch, first):
            check_metadata(batch, adding, source)
            if stream.options.id_column is None:
                raise HashIndexError(
                    f"{stream.path}: no id column (a column named id, or --id-column); an add "
                    "needs ids, or its row numbers would collide with the index's")
            replaced.append(adding.replaced_rows(batch.ids, upsert=config.upsert,
                                                 where=str(stream.path), first=first))

        run.on_batch = check_batch
        segment = writer.new_segment(adding.metadata_schema)
        count, dim, _ = embed_pass(run, writer.scratch(segment))
        started = time.perf_counter()
        embeddings = np.memmap(writer.scratch(segment) / "embeddings.f32", dtype=np.float32,
                               mode="r", shape=(count, dim))
        encoder = adding.encoder
        if encoder.reads_tokens:  # a sequence variant: codes from a pass over tokens
            codes = encode_write_pass(run, segment, encoder)
        else:
            codes = np.concatenate([
                encoder.encode(np.asarray(embeddings[s : s + ENCODE_ROWS]))
                for s in range(0, count, ENCODE_ROWS)])
        run.clock.add("encode", started)
        started = time.perf_counter()
        if not encoder.reads_tokens:
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
        if config.columns is None and config.column_changes is None:
            return replace(columns, embedding_column=None)  # the build's, not asked for
        raise HashIndexError(f"index {config.index} embeds text with its own model; drop "
                             "--embedding-column and let it embed the input's text")
    return columns


def check_metadata(batch, adding: Adding, source) -> None:
    """The input's metadata columns must be among the index's (a missing one is stored as
    null) and its precomputed embeddings of the index's dimension."""
    check_columns_fit(batch.metadata.column_names, adding.metadata_schema, str(source))
    dimension = adding.dimension
    if batch.embeddings is not None and batch.embeddings.shape[1] != dimension:
        raise HashIndexError(
            f"{source}: embeddings of dimension {batch.embeddings.shape[1]}, but the index "
            f"holds {dimension}-dimensional ones; add embeddings from the index's model")
