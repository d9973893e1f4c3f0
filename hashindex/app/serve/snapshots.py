"""The index the service answers from, and its replacement when a new build is published.

A request takes the current Snapshot once and uses only it, so a request in flight finishes on
the build it started on (HashIndex pins its files when opened). A watcher thread checks the
manifest's identity every `interval_s`; when a rebuild has published a new one, the new build
is opened and warmed up beside the old, then swapped in. The text model is kept when the new
build names the same model and runtime, so a swap costs an index open, not a model load.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from hashindex.app.serve.batching import EmbeddingBatcher
from hashindex.errors import HashIndexError
from hashindex.store.layout import PRECOMPUTED_MODEL
from hashindex.store.manifest import manifest_identity

log = logging.getLogger("hashindex.serve")
WARM_UP_TEXT = "warm-up query"


@dataclass
class Snapshot:
    index: object  # HashIndex
    batcher: EmbeddingBatcher | None  # None for an index without a text model
    identity: str | None  # the manifest's sha256 (store/manifest.py manifest_identity)
    loaded_at: float

    @property
    def text_model(self) -> tuple:
        return text_model(self.index)


def text_model(index) -> tuple:
    """What makes two builds' query embeddings the same: the model, how it runs, and for a
    sequence variant how many tokens its texts keep."""
    return index.manifest.embedding_model, repr(index.manifest.embedding), index.token_count


class ServingState:
    """Holds the current Snapshot; `open` loads the first, `watch` replaces it on publish."""

    def __init__(self, path: str | Path, *, verify: bool = False, window_s: float = 0.002,
                 max_batch: int = 32, on_batch=None, on_depth=None, preload_bytes: int = 0,
                 embed_threads: int | None = None):
        self.path = Path(path)
        self.verify = verify
        self.window_s = window_s
        self.max_batch = max_batch
        self.on_batch = on_batch
        self.on_depth = on_depth
        self.embed_threads = embed_threads  # the text model's threads (None: every core)
        self.preload_bytes = preload_bytes  # hold the documents in memory up to this size
        self.current: Snapshot | None = None
        self.reloads = 0
        self._refused: str | None = None  # a published build that failed to open
        self._swapping = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def open(self) -> Snapshot:
        started = time.perf_counter()
        self.current = self.load(None)
        log.info("serving %s: %d documents, ready in %.2f s", self.path,
                 len(self.current.index), time.perf_counter() - started)
        return self.current

    def load(self, previous: Snapshot | None) -> Snapshot:
        """Open the published build (reusing the previous text model when it is the same) and
        warm it up: the first request after a swap pays nothing extra."""
        from hashindex.engine import HashIndex

        # the first build was checked by whoever started the service (serve --verify, before
        # listening); `verify` re-hashes each new build before it is swapped in
        index = HashIndex.open(self.path, verify=self.verify and previous is not None)
        index.documents.hold_bytes = self.preload_bytes  # 0: always from the shards
        if self.preload_bytes and index.documents.hold():
            log.info("documents held in memory: %.1f MB", index.documents.held_bytes / 1e6)
        elif self.preload_bytes:
            log.info("documents read from the Parquet shards per query: %.1f MB decoded is "
                     "over --preload-documents-mb", index.shards.decoded_bytes() / 1e6)
        identity = index.identity
        if index.model_name == PRECOMPUTED_MODEL:
            return Snapshot(index, None, identity, time.time())
        if previous is not None and previous.batcher is not None \
                and previous.text_model == text_model(index):
            index.adopt_embedder(previous.index.embedder())
            batcher = previous.batcher
        else:  # a sequence variant's texts also keep their tokens (queries.embed_texts)
            from hashindex.queries import embed_texts

            embedder = index.embedder(threads=self.embed_threads)
            embed = (partial(embed_texts, embedder, max_tokens=index.token_count)
                     if index.token_count else embedder.embed)
            batcher = EmbeddingBatcher(embed, self.window_s, self.max_batch, self.on_batch,
                                       self.on_depth)
        index.search(batcher.embed(WARM_UP_TEXT), k=1)  # the model and the search warm
        return Snapshot(index, batcher, identity, time.time())

    def check_for_new_build(self) -> bool:
        """Swap in a newly published build or generation; False when there is none (or it
        fails to open, which is logged: the service keeps answering from the build it has).
        The watcher and the service's writer both call it: one at a time."""
        with self._swapping:
            return self._check_for_new_build()

    def _check_for_new_build(self) -> bool:
        identity = manifest_identity(self.path)
        if identity is None or self.current is None or identity in (self.current.identity,
                                                                     self._refused):
            return False
        previous = self.current
        try:
            fresh = self.load(previous)
        except Exception as error:  # keep serving the old build; say so (once if it is bad)
            if isinstance(error, HashIndexError):
                self._refused = identity
            log.warning("new build at %s not served: %s", self.path, error)
            return False
        self.current = fresh
        self.reloads += 1
        log.info("serving the new build of %s: %d documents", self.path, len(fresh.index))
        if previous.batcher is not None and previous.batcher is not fresh.batcher:
            previous.batcher.close()
        return True

    def watch(self, interval_s: float, on_reload=None) -> None:
        def loop():
            while not self._stop.wait(interval_s):
                if self.check_for_new_build() and on_reload is not None:
                    on_reload()

        self._watcher = threading.Thread(target=loop, name="index-watcher", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
        if self.current is not None and self.current.batcher is not None:
            self.current.batcher.close()
