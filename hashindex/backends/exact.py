"""An exact scan of the stored vectors: every row scored against the float query, the best
returned ranked by cosine. What a small index needs (a scan of a few thousand int8 rows costs
less than walking a graph would save) and the reference every approximate setting is tuned
against. A bare code query (no float) is answered by an exact scan of the codes instead."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hashindex.array_files import load_array
from hashindex.bitops import code_words
from hashindex.errors import HashIndexError
from hashindex.search_backend import Backend, Candidates, empty_candidates

CODES_FILE = "codes.npy"


class ExactBackend(Backend):
    name = "exact"
    exact = True
    reads_vectors = True  # the engine attaches the segment's VectorStore

    def __init__(self, bits: int, codes):
        super().__init__(bits)
        self.codes = np.asarray(codes)  # uint64 (N, W): the codes by row, as key words
        self.vectors = None

    @classmethod
    def build(cls, codes, bits, options=None, embeddings=None):
        return cls(bits, code_words(codes))

    def save(self, directory: Path) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / CODES_FILE, self.codes)
        return [directory / CODES_FILE]

    @staticmethod
    def open_files(directory: Path) -> tuple:
        return (load_array(directory / CODES_FILE, dtypes=(np.uint64,), ndim=2),)

    def nbytes(self) -> int:
        return int(self.codes.nbytes)

    def search(self, query_code, k, max_radius, options=None, embedding=None):
        """The k rows of highest score (ties by row), with their Hamming distances when a
        code is given (else 0); a code alone: the k nearest codes (ties complete)."""
        count = len(self.codes)
        if count == 0:
            return empty_candidates(True, max_radius)
        distances = None
        if query_code is not None:
            words = code_words(np.asarray(query_code, dtype=np.uint8).reshape(1, -1))
            distances = np.bitwise_count(self.codes ^ words).sum(axis=1, dtype=np.int64)
        if embedding is None:
            if distances is None:
                raise HashIndexError("the exact backend needs a float query or a code")
            return self.nearest_codes(distances, k, max_radius)
        if self.vectors is None:
            raise HashIndexError("the exact backend scans the index's stored vectors; this "
                                 "index keeps none (built with --no-store-embeddings)")
        scores = self.vectors.scores_all(embedding)
        if distances is not None and max_radius < self.bits:
            scores = np.where(distances <= max_radius, scores, -np.inf).astype(np.float32)
        top = (np.argpartition(-scores, k - 1)[:k] if k < count else np.arange(count))
        top = top[np.isfinite(scores[top])]
        top = top[np.lexsort((top, -scores[top]))]
        found = distances[top] if distances is not None else np.zeros(len(top), np.int64)
        return Candidates(top.astype(np.int64), found,
                          radius=int(found.max()) if len(found) else max_radius,
                          buckets_touched=0, documents_touched=count, exact=True,
                          scanned=True, scores=scores[top])

    def nearest_codes(self, distances, k, max_radius):
        count = len(distances)
        radius = max_radius
        if count > k:
            radius = min(max_radius, int(np.partition(distances, k - 1)[k - 1]))
        rows = np.flatnonzero(distances <= radius)
        return Candidates.ranked(rows, distances[rows], radius=radius, buckets=0,
                                 documents=count, exact=True, scanned=True)
