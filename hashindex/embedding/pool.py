"""Embedding in N worker processes, each with its own copy of the model and cores/N threads
(workers × threads = cores: more would oversubscribe the cores and lie about throughput).

Work goes out as chunks of length-sorted texts, each chunk whole to whichever worker is free
next, so a worker's one-length batches (padding.py) stay full and no worker waits for the
others between chunks. Dealing single 64-text batches in turn, as before, cut each worker's
share into many small one-length batches and made every call wait for its slowest worker:
two workers ran at 0.64× one process with both threads. Every runtime offered is
batch-invariant, so N workers give the vectors one would. A worker that dies is reported as
one error; the embedding cache keeps what was committed before it.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from hashindex.errors import HashIndexError

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
CHUNKS_PER_WORKER = 4  # a call's texts split this many ways per worker: late chunks balance

_worker = None  # this worker process's text model


def _start(make, settings: dict) -> None:
    """A worker's start: its text model is `make(**settings)` (the Embedder class, passed in
    by the pool's owner, so this module imports no embedder: no import circle)."""
    global _worker
    from hashindex.orphans import stop_when_orphaned

    stop_when_orphaned()  # a build killed with -9 leaves no worker holding its model

    _worker = make(**settings)


def _embed(texts: list[str]) -> tuple[np.ndarray, int]:
    before = _worker.truncated
    vectors = _worker.embed(texts)
    return vectors, _worker.truncated - before


def split_sorted(count: int, workers: int, smallest: int) -> list[range]:
    """Contiguous row ranges of `count` length-sorted texts, longest first: CHUNKS_PER_WORKER
    per worker, none smaller than `smallest` (a batch) unless the texts run out."""
    chunks = max(1, min(workers * CHUNKS_PER_WORKER, count // max(1, smallest)))
    size = -(-count // chunks)
    return [range(start, min(start + size, count))
            for start in reversed(range(0, count, size))]


class EmbedderPool:
    def __init__(self, make, settings: dict, workers: int):
        """`workers` processes, each with the text model `make(**settings)`; `make` is
        picklable by reference (a module-level class or function)."""
        self.workers = workers
        # spawn: a forked copy of a process that already runs threaded runtimes can deadlock
        self.executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(
            "spawn"), initializer=_start, initargs=(make, settings))
        # every worker starts now, with OpenMP and BLAS at its own thread count: their
        # default, a team per core in every worker (torch's OpenMP above all), took the cores
        # from the runtime's threads (2 workers on 2 cores: 890 short docs/s; limited, 1 600)
        saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
        os.environ.update({name: str(settings["threads"]) for name in THREAD_VARIABLES})
        try:
            for _ in range(workers):  # none is idle yet, so each submit spawns one
                self.executor.submit(os.getpid)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def embed_chunks(self, chunks: list[list[str]]) -> Iterator[tuple[np.ndarray, int]]:
        """(vectors, texts cut) of each chunk, in the chunks' order; all are submitted at once
        and each goes whole to the next free worker."""
        try:
            yield from self.executor.map(_embed, chunks)
        except BrokenProcessPool:
            raise HashIndexError("an embedding worker died (out of memory, or killed); run "
                                 "again, with fewer --embed-workers if it was memory: the "
                                 "embedding cache keeps what was done") from None

    def embed(self, texts: list[str], batch_size: int) -> tuple[np.ndarray, int]:
        """Vectors of already length-sorted texts, in their order; and how many were cut."""
        ranges = split_sorted(len(texts), self.workers, batch_size)  # longest first
        results = list(self.embed_chunks([texts[r.start : r.stop] for r in ranges]))
        return (np.concatenate([vectors for vectors, _ in reversed(results)]),
                sum(cut for _, cut in results))

    def close(self) -> None:
        self.executor.shutdown(cancel_futures=True)
