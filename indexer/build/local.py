"""The local build: read → embed (cached) → train or load the encoder → encode → write, into a
staging folder that is published atomically only when complete (store/publish.py)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hashindex.diagnostics import code_diagnostics
from hashindex.embedding.embedder import Embedder
from hashindex.errors import HashIndexError
from hashindex.model_io import save_model
from hashindex.models import VARIANTS, reads_tokens
from hashindex.segments.writing import SegmentSettings, SegmentWriter
from hashindex.store.layout import (
    ENCODER_DIR,
    EXPORTED_MODEL_FILE,
    PRECOMPUTED_MODEL,
    TEXT_MODEL_DIR,
    segment_folder,
)
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
from indexer.build.passes import (
    TokenSample,
    embed_pass,
    encode,
    encode_write_pass,
    sample_rows,
    write_pass,
)
from indexer.build.record import manifest_for
from indexer.build.tune import resolve_backend, tune_manifest
from indexer.documents import DocumentStream
from indexer.readers import open_reader
from indexer.samples import bundled_sample_texts

SCRATCH_DIR = "_scratch"
CALIBRATION_WINDOW = 8_192  # documents read for the int8 calibration sample
CALIBRATION_TEXTS = 256
MIN_CALIBRATION_TEXTS = 32


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


def build_index(config: BuildConfig, *, train_config: TrainConfig | None = None,
                embedder=None) -> BuildReport:
    """Build the index described by `config`; returns what was done and how long it took.
    `embedder` replaces the text model named by config.model (anything with name, dimension
    and embed(texts))."""
    if not isinstance(config, BuildConfig):
        raise HashIndexError(f"build_index: config must be a BuildConfig, not a "
                             f"{type(config).__name__} ({config!r})")
    if train_config is not None and not isinstance(train_config, TrainConfig):
        raise HashIndexError(f"build_index: train_config must be a TrainConfig or None, not a "
                             f"{type(train_config).__name__} ({train_config!r})")
    config.check()
    if config.engine == "ray":
        from indexer.build.ray_engine import build_with_ray

        return build_with_ray(config, train_config or TrainConfig(
            show_progress=config.show_progress), embedder)
    source, target = check_paths(config)
    stream = DocumentStream(open_reader(source, config.format), config.columns)
    precomputed = config.columns.embedding_column is not None
    if embedder is None and not precomputed:
        embedder = Embedder(config.model, batch_size=config.embed_batch_size,
                            device=config.device, backend=config.embed_backend,
                            quantize=config.quantization, threads=config.embed_threads or None,
                            cache_dir=config.cache_dir, max_tokens=config.max_tokens,
                            workers=config.embed_workers)
        if config.quantization == "int8":
            embedder.calibration_texts, embedder.calibration = calibration_sample(
                stream, config.calibrate_on_input)
    model_name = PRECOMPUTED_MODEL if precomputed else embedder.name
    encoder_model = check_encoder(config, model_name)
    if encoder_model is None and embedder is not None:
        check_variant_options(config, text_dimension(config, embedder))
    run = BuildRun(config, train_config or TrainConfig(show_progress=config.show_progress),
                   stream, None if precomputed else embedder, StageClock(), BuildReport(target))
    if reads_tokens(config.variant) and encoder_model is None:
        options = config.variant_options or VARIANTS[config.variant].options()
        run.token_sample = TokenSample(options.train_documents, options.max_tokens)

    staging = Staging(target)
    with staging as folder:
        run.report.removed_leftovers = staging.removed
        scratch = folder / SCRATCH_DIR
        scratch.mkdir()
        count, dim, schema = embed_pass(run, scratch)
        config = run.config = resolve_backend(config, count)
        embeddings = np.memmap(scratch / "embeddings.f32", dtype=np.float32, mode="r",
                               shape=(count, dim))
        started = time.perf_counter()
        model = encoder_model or train_model(run, embeddings)
        if model.config.input_dim != dim:
            raise HashIndexError(f"--encoder {config.encoder} expects embeddings of dimension "
                                 f"{model.config.input_dim}, but the input's are {dim}")
        run.clock.add("train", started)

        started = time.perf_counter()
        segment = SegmentWriter(folder, segment_folder(1), schema,
                                segment_settings(config, model.config.bits))
        if model.reads_tokens:  # the codes come from a second pass over the tokens
            codes = encode_write_pass(run, segment, model.export_encoder())
            run.clock.add("encode", started)
            started = time.perf_counter()
        else:
            codes = encode(model, embeddings)
            run.clock.add("encode", started)
            started = time.perf_counter()
            write_pass(run, segment, codes)
        save_model(model, folder / ENCODER_DIR, extra={"embedding_model": model_name})
        carry_text_model(run, folder)
        run.clock.add("write", started)
        started = time.perf_counter()
        record = segment.finish(codes, embeddings, trained_rows=len(codes))
        run.clock.add("index", started)  # the table, the second backend, the vectors

        run.report.diagnostics = code_diagnostics(codes)
        manifest = manifest_for(run, model, model_name=model_name, dim=dim,
                                segments=[record], schema=schema)
        finish_manifest(run, folder, manifest, embeddings)
        del embeddings
        shutil.rmtree(scratch)
        write_manifest(folder, manifest)
        staging.publish()
    return run.report


def calibration_sample(stream: DocumentStream, on_input: bool = False
                       ) -> tuple[list[str], str]:
    """Texts to calibrate int8 activation scales on: the bundled sample's first
    CALIBRATION_TEXTS (the same for every corpus, so the export is made once per model and
    machine and then taken from the cache), or with `on_input` CALIBRATION_TEXTS spread over
    the input's first batch (the bundled sample where the input has too few)."""
    if not on_input:
        sample = bundled_sample_texts()[:CALIBRATION_TEXTS]
        return sample, (f"{len(sample)} documents of the bundled calibration set "
                        "(--calibrate-on-input: this input's)")
    batch = next(stream.batches(CALIBRATION_WINDOW), None)
    texts = batch.texts if batch is not None and batch.texts else []
    if len(texts) >= MIN_CALIBRATION_TEXTS:
        picked = np.linspace(0, len(texts) - 1, min(CALIBRATION_TEXTS, len(texts))).astype(int)
        return ([texts[i] for i in picked],
                f"{len(picked)} documents from the first {len(texts)} of {stream.path}")
    sample = bundled_sample_texts()[:CALIBRATION_TEXTS]
    return sample, f"{len(sample)} documents of the bundled sample (the input has too few)"


def carry_text_model(run: BuildRun, folder) -> None:
    """An int8 model travels inside the index (its calibration cannot be redone without the
    documents); an fp32 export is re-made anywhere and checked by its checksum."""
    embedder = run.embedder
    if embedder is None or getattr(embedder, "quantize", "none") == "none":
        return
    (folder / TEXT_MODEL_DIR).mkdir()
    shutil.copyfile(embedder.exported_file, folder / TEXT_MODEL_DIR / EXPORTED_MODEL_FILE)


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
