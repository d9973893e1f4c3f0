"""What `hashindex serve` is told: limits on requests, the text model's batching, reloads,
threads, writes. One frozen value, made by the CLI (or a test) and read by every router."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeSettings:
    max_k: int = 1000  # the largest k a request may ask for
    max_batch_queries: int = 1000  # queries in one POST /search/batch
    # hits one POST /search/batch may ask for (the sum of its queries' k): 1 000 code queries
    # at k=1 000 answered 178 MB and grew the server from 476 MB to 1.3 GB; 100 000 hits are
    # ~20 MB of JSON (1 000 queries at k=100)
    max_batch_hits: int = 100_000
    max_body_bytes: int = 4 << 20
    read_timeout_s: float = 30.0  # a request still arriving, silent this long: 408, closed
    # how long a text query waits for others to share its model call; 0: no wait, the texts
    # that queued while the model ran share the next call (sample, 2 cores: 1 client p50
    # 3.3-4.8 ms against 8.9 with 2 ms; 32 clients 522-576 q/s, p99 81-86 ms, against 549)
    batch_window_ms: float = 0.0
    # texts in one model call: text queries at 32 clients (sample, 2 cores, two 8 s runs each)
    # answered 485-517 q/s with p99 128-340 ms at 32, 541-550 q/s with p99 92-94 ms at 16,
    # 436-439 q/s at 8
    max_text_batch: int = 16
    reload_interval_s: float = 1.0  # how often the published build is checked (0: never)
    verify_reloads: bool = False  # re-hash every file of a new build before serving it
    search_threads: int | None = None  # None: one per core
    embed_threads: int | None = None  # the text model's threads (None: every core)
    # wait for the index and model before taking connections (serve --workers: a worker
    # still loading would answer 503 while another is ready; waiting, requests queue instead)
    load_before_listening: bool = False
    preload_documents_mb: int = 2048  # hold every document decoded in memory up to this size
    allow_writes: bool = False  # POST /documents, DELETE /documents/{id}, POST /documents/delete
