"""One build, whichever engine runs it. The setup (the engine opened, the paths checked, the
input's reader, the text model, the encoder to reuse and the variant's options checked) and the
finish (the encoder saved, the text model carried, the index over the codes, the manifest, the
tuning sweep, the staging folder published) are written here once; an engine (local.py,
ray_engine.py) fills in how the documents are embedded, encoded and written."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa

from hashindex.diagnostics import code_diagnostics
from hashindex.errors import HashIndexError
from hashindex.model_io import save_model
from hashindex.models import VARIANTS, reads_tokens
from hashindex.segments.writing import SegmentSettings, SegmentWriter
from hashindex.store.layout import ENCODER_DIR, PRECOMPUTED_MODEL
from hashindex.store.manifest import write_manifest
from hashindex.store.publish import Staging
from hashindex.training import TrainConfig, train
from indexer.build.checks import (
    check_encoder,
    check_paths,
    check_variant_options,
    text_dimension,
)
from indexer.build.config import BuildConfig, BuildReport, StageClock
from indexer.build.passes import TokenSample, sample_rows
from indexer.build.record import manifest_for
from indexer.build.text_model import carry_text_model, text_model
from indexer.build.tune import resolve_backend, tune_manifest
from indexer.documents import DocumentStream
from indexer.readers import open_reader

SCRATCH_DIR = "_scratch"


@dataclass
class BuildRun:
    """One build's state, shared by its passes."""

    config: BuildConfig
    train_config: TrainConfig
    stream: DocumentStream
    embedder: object | None  # None: the input carries its embeddings
    clock: StageClock
    report: BuildReport
    on_batch: Callable | None = None  # (batch, its first document's number): before embedding
    token_sample: TokenSample | None = None  # a sequence variant's training sequences
    source: Path | None = None  # the input, resolved
    model_name: str = ""  # the text model's name (or PRECOMPUTED_MODEL), as the encoder keeps it
    encoder_model: object | None = None  # --encoder, loaded (None: one is trained)


@dataclass
class Written:
    """What an engine's encode-and-write step leaves: every document's codes (row order) and
    the segment they were written into (`shards`: written by others, a distributed build's
    tasks)."""

    codes: np.ndarray
    segment: SegmentWriter
    shards: list[dict] | None = None


class Engine:
    """What an engine fills in; the rest of a build is build() below."""

    name: ClassVar[str] = ""
    reads_tokens: ClassVar[bool] = True  # it builds the variants that read token sequences

    def open(self, config: BuildConfig) -> None:
        """Before any path is checked (the ray engine joins its cluster)."""

    def plan(self, stream: DocumentStream, config: BuildConfig) -> None:
        """The input's reader open, before the text model loads (the ray engine cuts parts)."""

    def embed(self, run: BuildRun, scratch: Path) -> tuple[np.ndarray, pa.Schema]:
        """Every document validated and embedded: float32 (documents, dimension) rows in input
        order, spilled under `scratch`, and the metadata columns' schema; sets the report's
        documents, skipped and embedded."""
        raise NotImplementedError

    def encode_write(self, run: BuildRun, folder: Path, model, embeddings: np.ndarray,
                     schema: pa.Schema) -> Written:
        """Every document encoded by `model` and written, with its code, into segment 1."""
        raise NotImplementedError

    def failures(self) -> AbstractContextManager:
        """Around the build's passes: how the engine's own failures are told."""
        return nullcontext()

    def finished(self, run: BuildRun) -> None:
        """After the index is published."""


def build(config: BuildConfig, engine: Engine, train_config: TrainConfig, embedder=None
          ) -> BuildReport:
    """Build the index `config` describes with `engine`, into a staging folder published
    atomically only when complete (store/publish.py)."""
    run = prepare(config, engine, train_config, embedder)
    with engine.failures():
        staging = Staging(run.report.out)
        with staging as folder:
            run.report.removed_leftovers = staging.removed
            scratch = folder / SCRATCH_DIR
            scratch.mkdir()
            embeddings, schema = engine.embed(run, scratch)
            run.config = resolve_backend(run.config, len(embeddings))
            model = encoder(run, embeddings)
            written = engine.encode_write(run, folder, model, embeddings, schema)
            started = time.perf_counter()
            save_model(model, folder / ENCODER_DIR, extra={"embedding_model": run.model_name})
            carry_text_model(run.embedder, folder)
            record = written.segment.finish(written.codes, embeddings,
                                            written_shards=written.shards,
                                            trained_rows=len(written.codes))
            run.clock.add("index", started)  # the table, the second backend, the vectors
            run.report.diagnostics = code_diagnostics(written.codes)
            manifest = manifest_for(run, model, model_name=run.model_name,
                                    dim=embeddings.shape[1], segments=[record], schema=schema)
            finish_manifest(run, folder, manifest, embeddings)
            del embeddings
            shutil.rmtree(scratch)
            write_manifest(folder, manifest)
            staging.publish()
    engine.finished(run)
    return run.report


def prepare(config: BuildConfig, engine: Engine, train_config: TrainConfig, embedder
            ) -> BuildRun:
    """Everything checked before a document is embedded: the paths, the text model (one
    function makes it for every engine), the encoder to reuse, the variant's options."""
    engine.open(config)
    source, target = check_paths(config)
    stream = DocumentStream(open_reader(source, config.format), config.columns)
    engine.plan(stream, config)
    precomputed = config.columns.embedding_column is not None
    embedder = text_model(config, stream, embedder)
    model_name = PRECOMPUTED_MODEL if precomputed else embedder.name
    encoder_model = check_encoder(config, model_name)
    if encoder_model is not None and encoder_model.reads_tokens and not engine.reads_tokens:
        raise HashIndexError(f"--encoder {config.encoder} reads token sequences "
                             f"({encoder_model.config.variant}); the {engine.name} engine "
                             "builds the variants that read pooled vectors: use --engine local")
    if encoder_model is None and embedder is not None:  # bad options fail before embedding
        check_variant_options(config, text_dimension(config, embedder))
    run = BuildRun(config, train_config, stream, None if precomputed else embedder,
                   StageClock(), BuildReport(target), source=source, model_name=model_name,
                   encoder_model=encoder_model)
    if reads_tokens(config.variant) and encoder_model is None:
        options = config.variant_options or VARIANTS[config.variant].options()
        run.token_sample = TokenSample(options.train_documents, options.max_tokens)
    return run


def encoder(run: BuildRun, embeddings: np.ndarray):
    """The --encoder given (checked against the input's dimension), or one trained."""
    started = time.perf_counter()
    model = run.encoder_model or train_model(run, embeddings)
    if model.config.input_dim != embeddings.shape[1]:
        raise HashIndexError(f"--encoder {run.config.encoder} expects embeddings of dimension "
                             f"{model.config.input_dim}, but the input's are "
                             f"{embeddings.shape[1]}")
    run.clock.add("train", started)
    return model


def train_model(run: BuildRun, embeddings):
    if run.token_sample is not None:  # a sequence variant trains on its token sample
        result = train(run.token_sample.packed(), run.config.variant, run.config.bits,
                       run.train_config, run.config.variant_options,
                       input_dim=embeddings.shape[1])
        run.report.history = result.history
        return result.model
    result = train(sample_rows(embeddings, run.train_config), run.config.variant,
                   run.config.bits, run.train_config, run.config.variant_options)
    run.report.history = result.history
    return result.model


def finish_manifest(run: BuildRun, folder, manifest, embeddings) -> None:
    """Tune the built index (the sweep goes into `manifest`) and record the stages' times."""
    started = time.perf_counter()
    tune_manifest(folder, manifest, embeddings, run.config.target_recall)
    if manifest.tuning:
        run.clock.add("tune", started)
    run.report.backend, run.report.tuning = manifest.backend, manifest.tuning
    run.report.stage_seconds = run.clock.seconds
    manifest.stage_seconds = {k: round(v, 3) for k, v in run.clock.seconds.items()}


def segment_settings(config: BuildConfig, bits: int) -> SegmentSettings:
    """How this build's segments (its own, and later adds') are made."""
    return SegmentSettings(bits, config.backend, dict(config.backend_options),
                           config.substring_index,
                           config.vector_dtype if config.store_embeddings else None,
                           config.shard_rows)
