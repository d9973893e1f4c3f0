"""The text model's front: Embedder, what every caller makes. It checks the settings, holds
the one-process TextModel (text_model.py: loading, the runtime, tokens, pooling), sends large
calls to worker processes (pool.py) and says what it runs (EmbeddingSpec, the cache's key).

The environment variable HASHINDEX_TEXT_MODEL=module:attribute puts another text model in its
place (factory.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hashindex.embedding.export import EXPORT_METHOD
from hashindex.embedding.factory import TextModelFactory
from hashindex.embedding.padding import BATCH_TOKENS, length_sorted_batches, pad_columns
from hashindex.embedding.runtimes import (
    DEFAULT_RUNTIME,
    check_embedding_settings,
    resolve_quantization,
)
from hashindex.embedding.spec import (
    DEFAULT_MODEL,
    PACKAGED_MODELS,
    EmbeddingSpec,
    canonical_model_name,
    resolve_model_path,
)
from hashindex.embedding.text_model import PADDED_CHUNK, TextModel

__all__ = ["BATCH_TOKENS", "DEFAULT_MODEL", "PACKAGED_MODELS", "PADDED_CHUNK", "Embedder",
           "EmbeddingSpec", "TextModel", "canonical_model_name", "length_sorted_batches",
           "pad_columns", "resolve_model_path"]


class _Setting:
    """An Embedder setting held by its TextModel, read and set there (one copy of each)."""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, embedder, owner=None):
        return self if embedder is None else getattr(embedder.text_model, self.name)

    def __set__(self, embedder, value) -> None:
        setattr(embedder.text_model, self.name, value)


class Embedder(metaclass=TextModelFactory):
    """Unit-norm float32 embeddings of texts. Texts are length-sorted inside each call so a
    batch pads little; the vectors come back in the order given. A text's vector does not
    depend on its batch in any runtime offered (runtimes.py). HASHINDEX_TEXT_MODEL, when set,
    makes another text model in its place (factory.py)."""

    (name, batch_size, batch_tokens, device, backend, quantize, threads, pin_threads, cache_dir,
     calibration_texts, model_file, expected_sha256, requested_tokens, export_method
     ) = (_Setting() for _ in range(14))

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int = 64, device: str = "cpu",
                 backend: str = DEFAULT_RUNTIME, quantize: str = "none",
                 threads: int | None = None, cache_dir: Path | None = None,
                 calibration_texts: list[str] | None = None, calibration: str = "",
                 model_file: Path | bytes | None = None, expected_sha256: str = "",
                 max_tokens: int = 0, workers: int = 1, pin_threads: bool = True,
                 lean: bool = False, batch_tokens: int = BATCH_TOKENS,
                 export_method: str = EXPORT_METHOD):
        check_embedding_settings(backend, quantize, device, workers)
        cores = max(1, os.cpu_count() or 1)
        self.text_model = TextModel(
            canonical_model_name(model), batch_size=batch_size, batch_tokens=batch_tokens,
            device=device, backend=backend, quantize=resolve_quantization(backend, quantize),
            threads=threads or max(1, cores // workers),  # workers × threads = cores
            pin_threads=pin_threads, cache_dir=cache_dir, calibration_texts=calibration_texts,
            model_file=(model_file if isinstance(model_file, (bytes, type(None)))
                        else Path(model_file)),
            expected_sha256=expected_sha256, requested_tokens=max_tokens,
            export_method=export_method,
            lean=lean and workers == 1)  # a pool's workers run sentence-transformers
        self.workers = workers
        self.calibration = calibration
        self._pool = None
        self._pooled_cut = 0  # texts the workers cut

    @classmethod
    def from_spec(cls, spec: EmbeddingSpec, **kwargs) -> Embedder:
        return cls(spec.model, backend=spec.backend, quantize=spec.quantize,
                   calibration=spec.calibration, expected_sha256=spec.model_sha256,
                   max_tokens=spec.max_tokens, export_method=spec.export_method, **kwargs)

    @property
    def truncated(self) -> int:
        """Texts longer than the model's max sequence length, so far (here and in workers)."""
        return self.text_model.truncated + self._pooled_cut

    @property
    def _model(self):
        """The loaded sentence-transformers model, or None (not loaded, or the lean path)."""
        return self.text_model._model

    def _load(self):
        return self.text_model.load()

    @property
    def spec(self) -> EmbeddingSpec:
        """What this embedder runs, for the manifest. An export already on disk is checksummed
        from the file beside it: a rebuild whose texts are all cached loads no model."""
        return EmbeddingSpec(self.name, self.backend, self.quantize, self.calibration,
                             self.text_model.checksum(), self.requested_tokens,
                             self.export_method)

    @property
    def cache_name(self) -> str:
        """The embedding cache's key, known without loading the model: other runtimes and
        calibrations give other numbers, so other entries (torch keeps the plain model name
        its entries always had)."""
        if self.backend == "torch":
            return self.name
        from hashindex.embedding.export import texts_digest

        name = f"{self.name}@{self.backend}-{self.quantize}"
        name += f"-{texts_digest(self.calibration_texts or [])}" if self.quantize == "int8" else ""
        return name + (f"-{self.export_method}" if self.export_method else "")

    @property
    def exported_file(self) -> Path | None:
        """The exported model file in use, made if it is not yet (None for torch)."""
        return self.text_model.exported_file

    @property
    def max_tokens(self) -> int:
        """Where texts are cut (the model's max sequence length unless set)."""
        return self.text_model.max_tokens

    @property
    def dimension(self) -> int:
        return self.text_model.dimension

    def _worker_pool(self):
        """The worker processes, started once; they load the export this process made."""
        if self._pool is None:
            from hashindex.embedding.pool import EmbedderPool

            self._pool = EmbedderPool(Embedder, self.worker_settings(self.threads), self.workers)
        return self._pool

    def worker_settings(self, threads: int) -> dict:
        """Embedder(**settings) in another process embeds as this one does: the export made
        (once, here) and checked by its checksum, the same runtime, calibration and length."""
        spec = self.spec  # exports before a worker loads it
        return {"model": self.name, "batch_size": self.batch_size, "backend": self.backend,
                "quantize": self.quantize, "threads": threads, "cache_dir": self.cache_dir,
                "calibration_texts": self.calibration_texts,
                "model_file": self.model_file or self.exported_file,
                "expected_sha256": spec.model_sha256, "max_tokens": self.requested_tokens,
                "pin_threads": False, "batch_tokens": self.batch_tokens,
                "export_method": self.export_method}

    def close(self) -> None:
        """Stop the worker processes, if any."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def embed_chunks(self, chunks: list[list[str]]):
        """The vectors of each chunk, in order, as each is done: with workers, every chunk
        goes whole to the next free worker (so the caller can commit one while others run)."""
        if self.workers > 1 and self.text_model.lean_model() is None and len(chunks) > 1:
            for vectors, truncated in self._worker_pool().embed_chunks(chunks):
                self._pooled_cut += truncated
                yield vectors
        else:
            for chunk in chunks:
                yield self.embed(chunk)

    def embed(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Unit-norm float32 embeddings (n, dim), in the order of `texts`: with workers, a
        call of more than a batch is shared among them (pool.py)."""
        model = self.text_model
        if model.lean_model() is None and self.workers > 1 and len(texts) > self.batch_size:
            out = np.empty((len(texts), model.dimension), dtype=np.float32)
            order = np.concatenate(model.batches(texts))
            vectors, truncated = self._worker_pool().embed([texts[i] for i in order],
                                                           self.batch_size)
            out[order] = vectors
            self._pooled_cut += truncated
            return out
        return model.embed(texts, show_progress)

    def embed_tokens(self, texts: list[str], max_tokens: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pooled unit-norm (n, d), token embeddings (n, max_tokens, d) zero-padded, token
        counts (n,)): what the text model computes before pooling, for the sequence variants.
        In this process only (a worker pool returns pooled vectors alone); every runtime."""
        return self.text_model.embed_tokens(texts, max_tokens)
