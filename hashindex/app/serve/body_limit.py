"""A cap on request bodies: a 413 JSON error before the body is parsed, whether the client
sends a Content-Length over the cap or streams chunks past it.

The rest of an oversized body is read and dropped before the 413 goes out, up to
`drain_bytes`: most clients send the whole body before reading the answer, and a server that
closes with bytes still arriving resets the connection, so the client's send fails and it
never sees the 413 (a 6 MB body from a `Connection: close` client did). A body beyond
`drain_bytes`, or one the client holds back for a 100-continue, is not read: the 413 then
says `Connection: close`."""

from __future__ import annotations

import json


class BodyLimitMiddleware:
    def __init__(self, app, max_bytes: int, drain_bytes: int | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.drain_bytes = 4 * max_bytes if drain_bytes is None else drain_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or ())
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            size = int(declared)
            waits = headers.get(b"expect", b"").lower() == b"100-continue"
            drained = not waits and size <= self.drain_bytes and (
                await self.drain(receive, 0))[0]
            return await self.refuse(send, size, close=not drained)
        received = 0
        over = False  # past the cap: the app is handed an end of body, its answer replaced
        drained = False

        async def counting_receive():
            nonlocal received, over, drained
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    drained = not message.get("more_body", False)
                    if not drained:
                        drained, received = await self.drain(receive, received)
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def replacing_send(message):
            if not over:
                await send(message)
            elif message["type"] == "http.response.start":
                await self.refuse(send, received, close=not drained, at_least=not drained)

        await self.app(scope, counting_receive, replacing_send)

    async def drain(self, receive, received: int) -> tuple[bool, int]:
        """Read and drop the body's remaining messages: (whether it ended within drain_bytes,
        the bytes received by then)."""
        while received <= self.drain_bytes:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return False, received
            received += len(message.get("body", b""))
            if not message.get("more_body", False):
                return True, received
        return False, received

    async def refuse(self, send, size: int, close: bool = False, at_least: bool = False
                     ) -> None:
        more = " or more" if at_least else ""
        body = json.dumps({"error": f"body: {size} bytes{more} is over this service's limit of "
                                    f"{self.max_bytes} bytes (serve --max-body-bytes)"}).encode()
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode())]
        if close:  # the body was not all read: the connection cannot carry another request
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
