"""`hashindex serve`: the query service on uvicorn (hashindex/app/serve)."""

from __future__ import annotations

import click

from hashindex.errors import HashIndexError


def check_port_free(host: str, port: int) -> None:
    """A one-line error before loading anything when the port is taken."""
    import socket

    if not 1 <= port <= 65535:
        raise HashIndexError(f"--port {port} is out of range: use 1 to 65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise HashIndexError(f"--port {port}: cannot listen on {host}:{port} "
                                 f"({error.strerror}); pick another port") from None


@click.command()
@click.argument("index_path", metavar="INDEX")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback by default; see the README before exposing "
                   "it).")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--max-k", default=1000, show_default=True, type=int,
              help="The largest k a request may ask for.")
def serve(index_path, host, port, max_k):
    """Serve INDEX over HTTP: POST /search, GET /info, /health, /ready."""
    import uvicorn

    from hashindex.app.serve.app import create_app
    from hashindex.engine import HashIndex

    HashIndex.open(index_path)  # the cheap open checks, as one line, before listening
    check_port_free(host, port)
    uvicorn.run(create_app(index_path, max_k), host=host, port=port, log_level="info")
