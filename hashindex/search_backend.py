"""One interface for every search backend over binary codes.

A backend answers "the documents within the smallest Hamming radius that holds at least k of
them (ties complete), capped at max_radius". Exact backends return exactly that set; approximate
ones (registered with exact=False) return a subset and say so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np


@dataclass
class Candidates:
    rows: np.ndarray  # int64 row ids
    distances: np.ndarray  # int64 Hamming distances, aligned with rows
    radius: int  # radius reached (largest radius fully searched)
    buckets_touched: int  # distinct codes (table) or lists/probes visited
    documents_touched: int  # documents whose distance was examined (a full scan: all of them)
    exact: bool
    scanned: bool = False  # every code was compared
    filtered: tuple[int, int] | None = None  # (examined, passed) under a metadata filter
    scores: np.ndarray | None = None  # float32 cosines, when the backend ranked by them (the
    # graph's walk=vectors): rows then come best first, and no re-rank is needed

    @classmethod
    def ranked(cls, rows, distances, *, radius, buckets, documents, exact, scanned=False
               ) -> Candidates:
        """From rows and their distances in any order: ranked by distance, then row id."""
        order = np.lexsort((rows, distances))
        return cls(rows=rows[order], distances=distances[order], radius=int(radius),
                   buckets_touched=int(buckets), documents_touched=int(documents),
                   exact=exact, scanned=scanned)

    def nearest(self, count: int) -> Candidates:
        """The first `count` (rows come ranked by distance, then row): a re-rank budget
        scores exactly that many vectors, not every tie of the ball's last radius."""
        if len(self.rows) <= count:
            return self
        return replace(self, rows=self.rows[:count], distances=self.distances[:count],
                       scores=None if self.scores is None else self.scores[:count])


class Backend:
    name: ClassVar[str] = ""  # its key in the registry (backends/__init__.py)
    reads_vectors: ClassVar[bool] = False  # True: search takes `embedding=` and the engine
    # attaches the rows' VectorStore as `vectors` (the graph's walk=vectors)
    exact: ClassVar[bool] = True  # False: it may miss codes within the radius (its registry
    # line says the same; tests/test_backends.py checks that they agree)

    def __init__(self, bits: int):
        self.bits = bits

    @classmethod
    def build(cls, codes: np.ndarray, bits: int, options=None, embeddings=None) -> Backend:
        """From uint8 codes (n, bits/8) in row order; `options` are the registry's build
        options for this backend (None: defaults); `embeddings` (n, d) float32, for backends
        that build over them (the graph)."""
        raise NotImplementedError

    def save(self, directory: Path) -> list[Path]:
        raise NotImplementedError

    @staticmethod
    def open_files(directory: Path) -> tuple:
        """Its files opened (mapped, held) now, read by `from_files` later: a reader keeps the
        build it opened even when a rebuild replaces these paths."""
        raise NotImplementedError

    @classmethod
    def from_files(cls, files: tuple, bits: int) -> Backend:
        return cls(bits, *files)

    @classmethod
    def load(cls, directory: Path, bits: int) -> Backend:
        return cls.from_files(cls.open_files(directory), bits)

    def search(self, query_code: np.ndarray, k: int, max_radius: int,
               options=None) -> Candidates:
        """`options`: the registry's search options for this backend (None: defaults)."""
        raise NotImplementedError


def empty_candidates(exact: bool, radius: int = 0) -> Candidates:
    none = np.zeros(0, dtype=np.int64)
    return Candidates(none, none.copy(), radius, 0, 0, exact)


def search_backend(backend: Backend, code, k: int, radius_cap: int, knobs, embedding=None,
                   walk_past: int | None = None) -> Candidates:
    """backend.search, handing the float query to a backend that reads vectors, and
    `walk_past` (a row to treat as visited) to one that walks (the graph)."""
    if walk_past is not None and getattr(backend, "walks", False):
        return backend.search(code, k, radius_cap, knobs, embedding=embedding,
                              walk_past=walk_past)
    if backend.reads_vectors:
        return backend.search(code, k, radius_cap, knobs, embedding=embedding)
    return backend.search(code, k, radius_cap, knobs)
