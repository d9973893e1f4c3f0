"""Embedding in N worker processes, each with its own copy of the model and cores/N threads
(workers × threads = cores: more would oversubscribe the cores and lie about throughput).

A call's texts arrive length-sorted from the Embedder; its batches are dealt to the workers in
turn (batch j to worker j mod N), so each worker gets short and long texts alike (contiguous
runs gave one worker all the long texts: 2 workers ran at half the speed of one), and the
vectors are put back in order. Every runtime offered is
batch-invariant, so N workers give the vectors one would. A worker that dies is reported as
one error; the embedding cache keeps what was committed before it.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from hashindex.errors import HashIndexError

_worker = None  # this worker process's Embedder


def _start(settings: dict) -> None:
    global _worker
    from hashindex.embedding.embedder import Embedder

    _worker = Embedder(**settings)


def _embed(texts: list[str]) -> tuple[np.ndarray, int]:
    before = _worker.truncated
    vectors = _worker.embed(texts)
    return vectors, _worker.truncated - before


class EmbedderPool:
    def __init__(self, settings: dict, workers: int):
        self.workers = workers
        # spawn: a forked copy of a process that already runs threaded runtimes can deadlock
        self.executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(
            "spawn"), initializer=_start, initargs=(settings,))

    def embed(self, texts: list[str], batch_size: int) -> tuple[np.ndarray, int]:
        """Vectors of already length-sorted texts, in their order; and how many were cut."""
        starts = range(0, len(texts), batch_size)
        shares = [[start for j, start in enumerate(starts) if j % self.workers == worker]
                  for worker in range(min(self.workers, len(starts)))]
        positions = [np.concatenate([np.arange(s, min(s + batch_size, len(texts)))
                                     for s in share]) for share in shares]
        parts = [[texts[i] for i in rows] for rows in positions]
        try:
            results = list(self.executor.map(_embed, parts))
        except BrokenProcessPool:
            raise HashIndexError("an embedding worker died (out of memory, or killed); run "
                                 "again, with fewer --embed-workers if it was memory: the "
                                 "embedding cache keeps what was done") from None
        out = np.empty((len(texts), results[0][0].shape[1]), dtype=np.float32)
        for rows, (vectors, _) in zip(positions, results):
            out[rows] = vectors
        return out, sum(r[1] for r in results)

    def close(self) -> None:
        self.executor.shutdown(cancel_futures=True)
