"""What every router needs, in one object kept on `app.state.service`: the settings, the
metrics, the served snapshot (and why it failed to load), the search threads and the one
writer thread. An endpoint takes it with `service_of(request)`: an attribute read, no
per-request dependency to solve."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request

from hashindex.app.serve.failures import NotReady, WritesOff
from hashindex.app.serve.observability import ServiceMetrics
from hashindex.app.serve.settings import ServeSettings
from hashindex.app.serve.snapshots import ServingState, Snapshot

log = logging.getLogger("hashindex.serve")


class Service:
    """One index served: loaded in the background, swapped when a new build is published,
    searched on `searchers`, changed on `writes` (one thread: one writer at a time)."""

    def __init__(self, index_path: str, settings: ServeSettings):
        self.index_path = index_path
        self.settings = settings
        self.metrics = metrics = ServiceMetrics()
        self.state = ServingState(index_path, verify=settings.verify_reloads,
                                  window_s=settings.batch_window_ms / 1000,
                                  max_batch=settings.max_text_batch,
                                  on_batch=metrics.batch_size.observe,
                                  on_depth=metrics.queue_depth.set,
                                  preload_bytes=settings.preload_documents_mb << 20,
                                  embed_threads=settings.embed_threads)
        self.load_error: str | None = None  # why the index or its text model failed to load
        # Searches run off the event loop on as many threads as cores: more threads only
        # fight over the GIL (measured: 40 threads answered 704 q/s at 32 clients, 2: 993).
        self.searchers = ThreadPoolExecutor(
            max_workers=settings.search_threads or os.cpu_count() or 2,
            thread_name_prefix="search")
        self.writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="write")

    def snapshot(self) -> Snapshot:
        """The served build, which a request uses throughout; NotReady (503) before it."""
        current = self.state.current
        if current is None:
            raise NotReady(self.load_error or "the index is still loading; retry shortly")
        return current

    def count_documents(self) -> None:
        current = self.state.current
        self.metrics.documents.set(len(current.index) if current else 0)

    def reloaded(self) -> None:
        self.metrics.reloads.inc()
        self.count_documents()

    def load(self) -> None:
        """The server listens at once (/health answers, /ready says 503) while this loads."""
        try:
            self.state.open()
        except Exception as error:  # reported by /ready and every search, and logged
            self.load_error = str(error)
            log.error("the index or its text model failed to load: %s", error)
            return
        self.count_documents()
        if self.settings.reload_interval_s > 0:
            self.state.watch(self.settings.reload_interval_s, on_reload=self.reloaded)

    async def write(self, change) -> dict:
        """Run `change(writer)` on the one writer thread under the index's lock, then serve the
        generation it committed before answering (a client reads its writes)."""
        if not self.settings.allow_writes:
            raise WritesOff()
        self.snapshot()

        def run():
            from hashindex.segments.writer import IndexWriter

            with IndexWriter(self.index_path) as writer:
                out = change(writer)
                out["generation"] = writer.manifest.generation
            if self.state.check_for_new_build():
                self.reloaded()
            return out

        return await asyncio.get_running_loop().run_in_executor(self.writes, run)

    def close(self) -> None:
        self.state.close()
        self.searchers.shutdown(wait=True)
        self.writes.shutdown(wait=True)
        self.metrics.close()


def service_of(request: Request) -> Service:
    return request.app.state.service


@asynccontextmanager
async def lifespan(app: FastAPI):
    """Load the index in the background (or before listening, serve --workers), and stop
    everything the service started when the server stops."""
    service: Service = app.state.service
    loader = threading.Thread(target=service.load, name="index-loader", daemon=True)
    loader.start()
    if service.settings.load_before_listening:
        await asyncio.get_running_loop().run_in_executor(None, loader.join)
    yield {"read_timeout_s": service.settings.read_timeout_s}  # read by every connection
    loader.join(timeout=60)
    service.close()
