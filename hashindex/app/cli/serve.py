"""`hashindex serve`: the query service on uvicorn (hashindex/app/serve)."""

from __future__ import annotations

import math

import click

from hashindex.errors import HashIndexError

HOST_ADVICE = "use one of this machine's addresses: 127.0.0.1 (this machine only) or 0.0.0.0 (all)"


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange without NaN (it compares false with both bounds, so `nan` passed)."""

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)


def check_can_listen(host: str, port: int) -> None:
    """A one-line error naming the flag at fault before loading anything: a host that is not
    an address of this machine (--host), a port out of range or taken (--port)."""
    import errno
    import socket

    if not 1 <= port <= 65535:
        raise HashIndexError(f"--port {port} is out of range: use 1 to 65535")
    try:
        family, kind, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise HashIndexError(f"--host {host}: not an address or a name this machine can "
                             f"resolve ({reason}); {HOST_ADVICE}") from None
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRNOTAVAIL:
                raise HashIndexError(f"--host {host}: not an address of this machine "
                                     f"({error.strerror}); {HOST_ADVICE}") from None
            raise HashIndexError(f"--port {port}: cannot listen on {host}:{port} "
                                 f"({error.strerror}); pick another port") from None


def log_config() -> dict:
    """uvicorn's own logging, plus the service's start-up lines and one access line per
    request (hashindex.access; uvicorn's access log is off, so each request logs once)."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["hashindex"] = {"format": "%(asctime)s %(name)s %(message)s"}
    config["handlers"]["hashindex"] = {"class": "logging.StreamHandler",
                                       "formatter": "hashindex", "stream": "ext://sys.stderr"}
    for name in ("hashindex.serve", "hashindex.access"):
        config["loggers"][name] = {"handlers": ["hashindex"], "level": "INFO",
                                   "propagate": False}
    return config


SERVE_PACKAGES = ("fastapi", "uvicorn", "orjson", "prometheus_client", "httptools")


def check_serve_packages() -> None:
    """The service's packages are the `[serve]` extra: name the missing one in one line."""
    from importlib.util import find_spec

    missing = [name for name in SERVE_PACKAGES if find_spec(name) is None]
    if missing:
        raise HashIndexError(f"hashindex serve needs {', '.join(missing)}, which this "
                             "installation lacks: pip install 'hashindex[serve]'")


@click.command()
@click.argument("index_path", metavar="INDEX")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback by default; see the README before exposing "
                   "it).")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--max-k", default=1000, show_default=True, type=click.IntRange(1),
              help="The largest k a request may ask for.")
@click.option("--max-batch-hits", default=100_000, show_default=True,
              type=click.IntRange(1),
              help="The most hits one /search/batch may ask for (its queries' k summed); a "
                   "larger batch gets a 422.")
@click.option("--max-body-bytes", default=4 << 20, show_default=True,
              type=click.IntRange(1024), help="Larger request bodies get a 413.")
@click.option("--read-timeout", default=30.0, show_default=True,
              type=FiniteFloatRange(0.1, 3600),
              help="Seconds a request may pause while it is still arriving (headers, or a "
                   "body shorter than its Content-Length) before it gets a 408 and its "
                   "connection is closed.")
@click.option("--batch-window-ms", default=0.0, show_default=True,
              type=FiniteFloatRange(0, 1000),
              help="How long a text query waits for others to share one model call (0: the "
                   "texts that queued while the model ran share the next call).")
@click.option("--max-text-batch", default=16, show_default=True, type=click.IntRange(1, 4096),
              help="Texts embedded in one model call at most.")
@click.option("--reload-interval", default=1.0, show_default=True,
              type=FiniteFloatRange(0, 3600),
              help="Seconds between checks for a newly published build (0: never reload).")
@click.option("--preload-documents-mb", default=2048, show_default=True,
              type=click.IntRange(0),
              help="Hold every document (id, text, metadata) decoded in memory when that takes "
                   "at most this many MB: a hit's row then costs microseconds, not a Parquet "
                   "row-group read. 0: always read from the shards.")
@click.option("--verify", is_flag=True,
              help="Re-hash every index file (sha256) before serving it, at start and on each "
                   "reload; by default only the cheap checks (files present, sizes, manifest).")
@click.option("--allow-writes", is_flag=True,
              help="Also take POST /documents (add), DELETE /documents/ID and POST "
                   "/documents/delete, each one commit (off: the service is read-only).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Processes answering requests, each with the index, its own text model "
                   "and cores/N threads for it (2 on 2 cores: 2.5x the embedding and code "
                   "queries/s of one; text queries batch better in one).")
def serve(index_path, host, port, max_k, max_batch_hits, max_body_bytes, read_timeout,
          batch_window_ms, max_text_batch, reload_interval, preload_documents_mb, verify,
          allow_writes, workers):
    """Serve INDEX over HTTP: a search page at /, POST /search and /search/batch,
    GET /documents/ID, /info, /health, /ready, /metrics; API docs at /docs; with
    --allow-writes, adds and deletes."""
    check_serve_packages()
    import uvicorn

    from hashindex.app.serve.app import ServeSettings, create_app
    from hashindex.app.serve.protocol import PROTOCOL
    from hashindex.engine import HashIndex

    HashIndex.open(index_path, verify=verify)  # the open checks, as one line, before listening
    check_can_listen(host, port)
    settings = ServeSettings(max_k=max_k, max_batch_hits=max_batch_hits,
                             max_body_bytes=max_body_bytes, read_timeout_s=read_timeout,
                             batch_window_ms=batch_window_ms, max_text_batch=max_text_batch,
                             reload_interval_s=reload_interval, verify_reloads=verify,
                             preload_documents_mb=preload_documents_mb,
                             allow_writes=allow_writes)
    options = {"host": host, "port": port, "log_level": "info", "access_log": False,
               "log_config": log_config(), "timeout_graceful_shutdown": 30,
               "http": PROTOCOL}  # uvicorn's httptools protocol with a read timeout
    if workers > 1:
        from hashindex.app.serve.workers import run_workers

        run_workers(index_path, settings, workers, **options)
    else:
        uvicorn.run(create_app(index_path, settings), **options)
