"""Micro-batching of text queries: concurrent requests share one model call.

Request threads hand their texts to one worker thread and wait on a future. The worker takes
the first request waiting, then whatever else is queued or arrives within `window_s` (up to
`max_batch` texts), embeds them in one call and answers every future. With no window the
texts that queued while the model ran share the next call: batches grow with the load. The
worker is also the only thread that calls the model: runtimes such as OpenVINO's infer request
refuse concurrent calls. One client pays at most the window; under load the model runs on
batches instead of one forward pass per request. A text's embedding does not depend on its
batch (the runtimes pad with an attention mask; static int8 scales are fixed).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

_STOP = object()


class EmbeddingBatcher:
    def __init__(self, embed: Callable[[list[str]], np.ndarray], window_s: float = 0.002,
                 max_batch: int = 32, on_batch: Callable[[int], None] | None = None,
                 on_depth: Callable[[int], None] | None = None):
        self._embed = embed
        self.window_s = window_s
        self.max_batch = max_batch
        self._on_batch = on_batch
        self._on_depth = on_depth  # told the queue's depth when it changes (a metric)
        self._queue: queue.Queue = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="embedding-batcher", daemon=True)
        self._worker.start()

    def embed(self, text: str) -> np.ndarray:
        """The text's embedding (float32[d]), from a model call it may share with others."""
        return self.embed_many([text])[0]

    def embed_many(self, texts: list[str]) -> np.ndarray:
        """Embeddings (float32[n, d]) of a request's texts, embedded together."""
        return self.submit(texts).result()

    def submit(self, texts: list[str]) -> Future:
        """A future of the texts' embeddings (an event loop awaits it with wrap_future)."""
        future: Future = Future()
        self._queue.put((list(texts), future))
        self._tell_depth()
        return future

    def _tell_depth(self) -> None:
        if self._on_depth is not None:
            self._on_depth(self._queue.qsize())

    def close(self) -> None:
        """Answer what is queued, then stop the worker."""
        self._queue.put(_STOP)
        self._worker.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch, stop = [first], False
            deadline = time.monotonic() + self.window_s
            while sum(len(texts) for texts, _ in batch) < self.max_batch:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._tell_depth()
            self._answer(batch)
            if stop:
                return

    def _answer(self, batch: list) -> None:
        texts = [text for request, _ in batch for text in request]
        try:
            vectors = self._embed(texts)
        except BaseException as error:  # every waiting request gets the error, not a hang
            for _, future in batch:
                future.set_exception(error)
            return
        if self._on_batch is not None:
            self._on_batch(len(texts))
        start = 0
        for request, future in batch:
            future.set_result(vectors[start : start + len(request)])
            start += len(request)
