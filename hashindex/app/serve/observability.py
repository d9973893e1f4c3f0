"""What the service says about itself: Prometheus metrics at /metrics and one access-log line
per request, from one ASGI middleware (no per-request thread hop, unlike BaseHTTPMiddleware)."""

from __future__ import annotations

import logging
import os
import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

access_log = logging.getLogger("hashindex.access")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ROUTES = ("/", "/search", "/search/batch", "/info", "/health", "/ready", "/metrics", "/docs",
          "/openapi.json")


def route_label(path: str) -> str:
    """A bounded label: the route, never a document id or a stray URL."""
    if path in ROUTES:
        return path
    if path.startswith("/documents/"):
        return "/documents/{id}"
    if path.startswith("/static/"):
        return "/static"
    if path.startswith("/docs/"):  # the docs' scripts and styles
        return "/docs"
    return "other"


def multiprocess_dir() -> str | None:
    """The folder worker processes share their metrics through (serve --workers), if any."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


class ServiceMetrics:
    """The service's own registry (not the process-global one), so tests and several apps in
    one process never share counters. Under `serve --workers N` every worker writes its
    values into PROMETHEUS_MULTIPROC_DIR and /metrics sums the workers (`exposition`);
    gauges are then set by the events that change them, never computed at scrape time."""

    def __init__(self):
        disable_created_metrics()  # the *_created series are noise for a service's scrape
        self.multiprocess = multiprocess_dir() is not None
        self.registry = CollectorRegistry()
        self.requests = Counter("hashindex_requests", "Requests answered, by route and status",
                                ["route", "status"], registry=self.registry)
        self.errors = Counter("hashindex_request_errors",
                              "Requests answered with a 4xx or 5xx status",
                              ["route", "status"], registry=self.registry)
        self.latency = Histogram("hashindex_request_seconds", "Time to answer a request",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.in_flight = Gauge("hashindex_requests_in_flight",
                               "Requests being answered (besides /metrics)",
                               registry=self.registry, multiprocess_mode="livesum")
        self.queue_depth = Gauge("hashindex_embedding_queue_depth",
                                 "Query texts waiting for the next model call",
                                 registry=self.registry, multiprocess_mode="livesum")
        self.batch_size = Histogram("hashindex_embedding_batch_texts",
                                    "Query texts embedded per model call",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
                                    registry=self.registry)
        self.embed_seconds = Histogram("hashindex_embed_seconds",
                                       "Per request: waiting for and computing the embedding",
                                       buckets=LATENCY_BUCKETS, registry=self.registry)
        self.search_seconds = Histogram("hashindex_search_seconds",
                                        "Per query: code, search, re-rank and documents",
                                        buckets=LATENCY_BUCKETS, registry=self.registry)
        self.documents = Gauge("hashindex_index_documents", "Documents in the served build",
                               registry=self.registry, multiprocess_mode="livemax")
        self.reloads = Counter("hashindex_index_reloads",
                               "New builds swapped in without a restart",
                               registry=self.registry)

    def exposition(self) -> bytes:
        """The Prometheus text: this process's registry, or every worker's summed."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)

    def close(self) -> None:
        """A worker's live gauges leave the sum when it stops."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())


class ObservabilityMiddleware:
    """Counts, times and logs every HTTP request; the status is read from the response start."""

    def __init__(self, app, metrics: ServiceMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        route = route_label(scope["path"])
        counted = route != "/metrics"
        status = 500
        started = time.perf_counter()

        async def record_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        if counted:
            self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, record_status)
        finally:
            seconds = time.perf_counter() - started
            if counted:
                self.metrics.in_flight.dec()
            self.metrics.requests.labels(route, str(status)).inc()
            if status >= 400:
                self.metrics.errors.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(seconds)
            client = scope.get("client") or ("-", 0)
            access_log.info('%s "%s %s" %d %.2f ms', client[0], scope["method"],
                            scope["path"], status, seconds * 1000)
