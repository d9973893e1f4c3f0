"""The build's text model: made from the config by one function for every engine, calibrated
for int8 on a sample first, and carried inside the index where its calibration cannot be
redone without the documents."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from hashindex.embedding.embedder import Embedder
from hashindex.store.layout import EXPORTED_MODEL_FILE, TEXT_MODEL_DIR
from indexer.build.config import BuildConfig
from indexer.documents import DocumentStream
from indexer.samples import bundled_sample_texts

CALIBRATION_WINDOW = 8_192  # documents read for the int8 calibration sample
CALIBRATION_TEXTS = 256
MIN_CALIBRATION_TEXTS = 32


def text_model(config: BuildConfig, stream: DocumentStream, given=None):
    """The embedder a build runs: `given` where the caller passes one (anything with name,
    dimension and embed(texts)), None where the input carries its embeddings, else the text
    model config.model names in its runtime, quantization, threads and workers (int8:
    calibrated now, before anything exports it)."""
    if given is not None or config.columns.embedding_column is not None:
        return given
    embedder = Embedder(config.model, batch_size=config.embed_batch_size,
                        device=config.device, backend=config.embed_backend,
                        quantize=config.quantization, threads=config.embed_threads or None,
                        cache_dir=config.cache_dir, max_tokens=config.max_tokens,
                        workers=config.embed_workers)
    if config.quantization == "int8":
        embedder.calibration_texts, embedder.calibration = calibration_sample(
            stream, config.calibrate_on_input)
    return embedder


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


def carry_text_model(embedder, folder: Path) -> None:
    """An int8 model travels inside the index (its calibration cannot be redone without the
    documents); an fp32 export is re-made anywhere and checked by its checksum."""
    if embedder is None or getattr(embedder, "quantize", "none") == "none":
        return
    (folder / TEXT_MODEL_DIR).mkdir()
    shutil.copyfile(embedder.exported_file, folder / TEXT_MODEL_DIR / EXPORTED_MODEL_FILE)
