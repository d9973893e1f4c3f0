"""One simulated client's connection to the service: `request(method, path, body)` gives
(status, answer body); `reset()` reconnects after a transport error. Two clients:

- `raw` (the default): HTTP/1.1 keep-alive on one asyncio stream, a fixed request head, the
  answer read by its Content-Length.
- `httpx`: one shared `httpx.AsyncClient` (HTTP/1.1 keep-alive, its pool sized to the
  concurrency), the maintained library.

Why the hand-written client stays the default: the load client shares the machine's cores
with the server, so its CPU per request is taken from the server, and httpx's is an order of
magnitude more, which caps the measured rate at the client's. Measured on 2 busy cores (load
average 3-4, nice 10) against one `hashindex serve --workers 2` over 20,000 synthetic
documents, single embedding queries, 2 s cells, raw and httpx in turns, three rounds each
(medians, best-of in brackets):

| clients | client | requests/s | p50 ms | client CPU | server CPU |
|---:|---|---:|---:|---:|---:|
| 1 | raw | 821 (849) | 0.89 | 11% | 74% |
| 1 | httpx | 321 (377) | 2.31 | 41% | 37% |
| 32 | raw | 1,456 (1,536) | 16.7 | 11% | 117% |
| 32 | httpx | 146 (157) | 154.6 | 63% | 22% |

(code queries at 32 clients: raw 2,129 (2,278), httpx 198 (201) requests/s.) Client CPU per
request: raw ~0.1 ms, httpx ~1.3 ms at 1 client and ~4 ms at 32 (one shared AsyncClient's
pool); an AsyncClient per simulated client does better but not enough (a second run at 32
clients: raw 1,452 (1,509), httpx shared 210 (246), httpx one per client 573 (838), ~0.9 ms):
with httpx the server sits at a quarter of a core and the figures measure the client. The
comparison is rerun with every report (`--compare-httpx`, the sample's embedding queries);
`--client httpx` runs the whole load with it.
"""

from __future__ import annotations

import asyncio

from benchmarks.serve_load import HOST

CLIENTS = ("raw", "httpx")
REQUEST_TIMEOUT_S = 30.0


class ProtocolError(Exception):
    pass


class RawConnection:
    """HTTP/1.1 keep-alive on one asyncio stream: a fixed request head, the answer read by
    its Content-Length (the service always sends one; anything else is a ProtocolError).
    About a tenth of httpx's client CPU per request (see the module's docstring)."""

    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None
        self.heads: dict[tuple[str, str], bytes] = {}

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)

    async def reset(self) -> None:
        await self.close()
        try:
            await self.connect()
        except OSError:  # the next request tries again, and counts its failure
            self.writer = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
            self.writer = None

    async def request(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        head = self.heads.get((method, path))
        if head is None:
            head = self.heads[method, path] = (
                f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
                + ("Content-Type: application/json\r\n" if method == "POST" else "")
                + "Content-Length: ").encode()
        if self.writer is None:
            await self.connect()
        self.writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
        header = await self.reader.readuntil(b"\r\n\r\n")
        lower = header.lower()
        start = lower.find(b"\r\ncontent-length:")
        if not header.startswith(b"HTTP/1.1 ") or start < 0:
            raise ProtocolError(header[:200])
        length = int(header[start + 17 : lower.find(b"\r\n", start + 2)])
        payload = await self.reader.readexactly(length)
        if b"\r\nconnection: close" in lower:
            await self.reset()
        return int(header[9:12]), payload


class HttpxConnection:
    """One simulated client on a shared httpx.AsyncClient (HTTP/1.1 keep-alive, its pool
    sized to the concurrency)."""

    def __init__(self, client):
        self.client = client

    async def connect(self) -> None:
        pass

    async def reset(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def request(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        answer = await self.client.request(method, path, content=body or None,
                                           headers={"Content-Type": "application/json"}
                                           if body else None)
        return answer.status_code, answer.content



class Clients:
    """`count` connections of one client kind to 127.0.0.1:`port`; `aclose()` closes them
    (and the shared httpx client)."""

    def __init__(self, name: str, port: int, count: int):
        if name not in CLIENTS:
            raise ValueError(f"unknown load client {name!r} (one of {', '.join(CLIENTS)})")
        self.name, self.shared = name, None
        if name == "httpx":
            import httpx

            self.shared = httpx.AsyncClient(
                base_url=f"http://{HOST}:{port}", timeout=REQUEST_TIMEOUT_S,
                limits=httpx.Limits(max_connections=count, max_keepalive_connections=count))
            self.connections = [HttpxConnection(self.shared) for _ in range(count)]
        else:
            self.connections = [RawConnection(port) for _ in range(count)]

    async def aclose(self) -> None:
        await asyncio.gather(*(c.close() for c in self.connections))
        if self.shared is not None:
            await self.shared.aclose()


def transport_errors() -> tuple[type[BaseException], ...]:
    """What a request may raise that counts as a transport error (not a crash of the run)."""
    errors: tuple[type[BaseException], ...] = (
        OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
        TimeoutError, ProtocolError, ValueError)
    try:
        import httpx
    except ImportError:  # the raw client needs no httpx
        return errors
    return (*errors, httpx.HTTPError)
