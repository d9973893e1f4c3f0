"""The documents' embeddings by row, memory-mapped, for re-ranking candidates by cosine.

A re-rank needs only the candidates' vectors, so they sit in one matrix by row id (not in the
Parquet shards with the text): scoring C candidates is a gather of C rows and C dot products.
Two encodings: int8 with one scale per row (v ≈ scale · q, q in [-127, 127]; 1 byte per
dimension, the default) and float16 (2 bytes). Unit-norm embeddings lose almost nothing in
int8: the re-rank's recall is measured in benchmarks/results/frontier.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit, prange

from hashindex.array_files import damaged, load_array
from hashindex.errors import HashIndexError
from hashindex.store.layout import SCALES_FILE, VECTORS_FILE

VECTOR_DTYPES = ("int8", "float16")
WRITE_ROWS = 65_536


def quantize_int8(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 (n, d) → (int8 (n, d), float32 scales (n,)), per row symmetric."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    peak = np.abs(embeddings).max(axis=1)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    values = np.rint(embeddings / scales[:, None]).clip(-127, 127).astype(np.int8)
    return values, scales


class VectorStore:
    def __init__(self, vectors: np.ndarray, scales: np.ndarray | None):
        self.vectors = vectors  # (N, d) int8 or float16, usually a read-only memory map
        self.scales = scales  # (N,) float32 for int8, None for float16

    @property
    def dtype(self) -> str:
        return str(self.vectors.dtype)

    @property
    def dimension(self) -> int:
        return self.vectors.shape[1]

    def __len__(self) -> int:
        return len(self.vectors)

    @staticmethod
    def write(folder: Path, embeddings: np.ndarray, dtype: str = "int8") -> list[Path]:
        """Write the (possibly memory-mapped) float32 embeddings block by block."""
        if dtype not in VECTOR_DTYPES:
            raise HashIndexError(f"unknown vector dtype {dtype!r}; choose one of "
                                 f"{', '.join(VECTOR_DTYPES)}")
        folder.mkdir(parents=True, exist_ok=True)
        n, d = embeddings.shape
        vectors = np.lib.format.open_memmap(folder / VECTORS_FILE, mode="w+", dtype=dtype,
                                            shape=(n, d))
        scales = (np.lib.format.open_memmap(folder / SCALES_FILE, mode="w+", dtype=np.float32,
                                            shape=(n,)) if dtype == "int8" else None)
        for start in range(0, n, WRITE_ROWS):
            block = np.asarray(embeddings[start : start + WRITE_ROWS], dtype=np.float32)
            if scales is not None:
                vectors[start : start + len(block)], scales[start : start + len(block)] = \
                    quantize_int8(block)
            else:
                vectors[start : start + len(block)] = block.astype(np.float16)
        written = [folder / VECTORS_FILE] + ([folder / SCALES_FILE] if scales is not None else [])
        for array in (vectors, scales):
            if array is not None:
                array.flush()
        del vectors, scales
        return written

    @staticmethod
    def write_selected(folder: Path, sources: list[tuple[VectorStore, np.ndarray]]) -> None:
        """Write the given rows of other stores, in order, as they are stored (no second
        quantization): a compaction keeps every vector exactly."""
        folder.mkdir(parents=True, exist_ok=True)
        first = sources[0][0]
        n = sum(len(rows) for _, rows in sources)
        vectors = np.lib.format.open_memmap(folder / VECTORS_FILE, mode="w+",
                                            dtype=first.vectors.dtype, shape=(n, first.dimension))
        scales = (np.lib.format.open_memmap(folder / SCALES_FILE, mode="w+", dtype=np.float32,
                                            shape=(n,)) if first.scales is not None else None)
        at = 0
        for store, rows in sources:
            for start in range(0, len(rows), WRITE_ROWS):
                part = rows[start : start + WRITE_ROWS]
                vectors[at : at + len(part)] = store.vectors[part]
                if scales is not None:
                    scales[at : at + len(part)] = store.scales[part]
                at += len(part)
        for array in (vectors, scales):
            if array is not None:
                array.flush()

    @classmethod
    def load(cls, folder: Path, rows: int | None = None,
             dimension: int | None = None) -> VectorStore:
        """Memory-mapped, each file checked as it is opened (array_files.py): int8 or float16
        (rows, dimension) vectors, and int8's float32 scale per row."""
        vectors = load_array(folder / VECTORS_FILE, dtypes=VECTOR_DTYPES, ndim=2, rows=rows)
        if dimension is not None and vectors.shape[1] != dimension:
            raise damaged(folder / VECTORS_FILE, f"its vectors have dimension "
                                                 f"{vectors.shape[1]}, not {dimension}")
        scales = None
        if vectors.dtype == np.int8:
            scales = load_array(folder / SCALES_FILE, dtypes=(np.float32,), ndim=1,
                                rows=len(vectors))
        return cls(vectors, scales)

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """float32 (len(rows), d) embeddings as stored (dequantized)."""
        values = np.asarray(self.vectors[rows], dtype=np.float32)
        return values * self.scales[rows][:, None] if self.scales is not None else values

    def scores(self, rows: np.ndarray, query: np.ndarray) -> np.ndarray:
        """float32 dot products of the rows' stored vectors with one float32 query."""
        rows = np.asarray(rows, dtype=np.int64)
        query = np.ascontiguousarray(query, dtype=np.float32)
        if self.scales is not None:
            return score_int8(self.vectors, self.scales, rows, query)
        return np.asarray(self.vectors[rows], dtype=np.float32) @ query

    def scores_all(self, query: np.ndarray) -> np.ndarray:
        """float32 dot products of every stored vector with one float32 query (a scan)."""
        query = np.ascontiguousarray(query, dtype=np.float32)
        if self.scales is not None:
            return score_int8_all(self.vectors, self.scales, query)
        return np.asarray(self.vectors, dtype=np.float32) @ query

    def scores_batch(self, rows: np.ndarray, offsets: np.ndarray,
                     queries: np.ndarray) -> np.ndarray:
        """Scores of many queries' candidates at once: rows[offsets[i]:offsets[i+1]] are query
        i's; returns the scores in the same layout."""
        rows = np.asarray(rows, dtype=np.int64)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if self.scales is not None:
            return score_int8_batch(self.vectors, self.scales, rows,
                                    np.asarray(offsets, dtype=np.int64), queries)
        out = np.empty(len(rows), dtype=np.float32)
        for i in range(len(queries)):
            part = slice(offsets[i], offsets[i + 1])
            out[part] = np.asarray(self.vectors[rows[part]], dtype=np.float32) @ queries[i]
        return out


@njit(cache=True, nogil=True, fastmath=True)
def score_int8(vectors, scales, rows, query):
    out = np.empty(len(rows), dtype=np.float32)
    for i in range(len(rows)):
        row = rows[i]
        total = np.float32(0.0)
        for j in range(vectors.shape[1]):
            total += np.float32(vectors[row, j]) * query[j]
        out[i] = total * scales[row]
    return out


@njit(cache=True, nogil=True, fastmath=True)
def score_int8_all(vectors, scales, query):
    out = np.empty(vectors.shape[0], dtype=np.float32)
    for row in range(vectors.shape[0]):
        total = np.float32(0.0)
        for j in range(vectors.shape[1]):
            total += np.float32(vectors[row, j]) * query[j]
        out[row] = total * scales[row]
    return out


@njit(cache=True, nogil=True, fastmath=True, parallel=True)
def score_int8_batch(vectors, scales, rows, offsets, queries):
    out = np.empty(len(rows), dtype=np.float32)
    for q in prange(len(offsets) - 1):
        for i in range(offsets[q], offsets[q + 1]):
            row = rows[i]
            total = np.float32(0.0)
            for j in range(vectors.shape[1]):
                total += np.float32(vectors[row, j]) * queries[q, j]
            out[i] = total * scales[row]
    return out
