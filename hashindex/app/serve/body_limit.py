"""A cap on request bodies: a 413 JSON error before the body is parsed, whether the client
sends a Content-Length over the cap or streams chunks past it."""

from __future__ import annotations

import json


class BodyLimitMiddleware:
    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self.refuse(send, int(declared))
        received = 0
        over = False  # past the cap: the app is handed an end of body, its answer replaced

        async def counting_receive():
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def replacing_send(message):
            if not over:
                await send(message)
            elif message["type"] == "http.response.start":
                await self.refuse(send, received)

        await self.app(scope, counting_receive, replacing_send)

    async def refuse(self, send, size: int) -> None:
        body = json.dumps({"error": f"body: {size} bytes is over this service's limit of "
                                    f"{self.max_bytes} bytes (serve --max-body-bytes)"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
