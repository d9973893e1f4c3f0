"""The service's HTTP/1.1 connections: uvicorn's httptools protocol with what a hostile
client needs and uvicorn lacks.

A read timeout: uvicorn times out only the idle wait between requests (keep-alive), never a
request still arriving; a client that sent a Content-Length larger than its body, stopped
mid-chunk or mid-headers, or connected and said nothing held its connection (and a slot of the
server) forever. Here a connection that owes the server bytes and sends none for
`read_timeout_s` seconds gets a 408 JSON answer (or, if it never began a request, nothing) and
is closed. Time the server itself makes the client wait (reading paused while an earlier
request is answered, a 100-continue not yet sent) does not count.

JSON errors: bytes that are not HTTP/1.1 get a 400 with a JSON body like every other error
(uvicorn's is plain text).

The timeout is the app's setting: create_app's lifespan yields {"read_timeout_s": ...} as its
state, which uvicorn hands every connection (app_state), so `serve --workers` needs nothing
more than the `http` option naming this class."""

from __future__ import annotations

import json
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

PROTOCOL = "hashindex.app.serve.protocol:ServiceProtocol"  # uvicorn's `http` option
DEFAULT_READ_TIMEOUT_S = 30.0

log = logging.getLogger("hashindex.serve")


def closing_answer(status: bytes, message: str) -> bytes:
    """A whole HTTP answer with a JSON error body, the connection to be closed after it."""
    body = json.dumps({"error": message}).encode()
    return (b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n" % (status, len(body))) + body


def timeout_answer(seconds: float) -> bytes:
    return closing_answer(b"408 Request Timeout", f"request: nothing arrived for {seconds:g} s "
                          "before it was complete; send the whole request (headers and the "
                          "body its Content-Length promises) without pausing "
                          "(serve --read-timeout)")


NOT_HTTP = closing_answer(b"400 Bad Request", "request: not a valid HTTP/1.1 request (its "
                          "request line, a header or the body's framing); nothing was done")


class ServiceProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a read timer per connection, armed while the client
    owes bytes (from connecting, or from a request's first byte, to its last) and checked
    against the time of the last bytes received; and JSON for what is not HTTP."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.read_timeout_s = float(self.app_state.get("read_timeout_s", DEFAULT_READ_TIMEOUT_S))
        self.last_read = self.loop.time()
        self.owed = True  # a new connection owes its first request
        self.request_begun = False
        self.headers_done = False
        self.read_timer = None
        self.arm(self.read_timeout_s)

    def connection_lost(self, exc) -> None:
        if self.read_timer is not None:
            self.read_timer.cancel()
            self.read_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.last_read = self.loop.time()
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.owed = self.request_begun = True
        self.headers_done = False
        if self.read_timer is None:
            self.arm(self.read_timeout_s)

    def on_headers_complete(self) -> None:
        self.headers_done = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.owed = self.request_begun = False  # the timer, when it fires, stops itself

    def send_400_response(self, msg: str) -> None:
        self.transport.write(NOT_HTTP)
        self.transport.close()

    def arm(self, delay_s: float) -> None:
        self.read_timer = self.loop.call_later(delay_s, self.read_timed_out)

    def waiting_on_the_server(self) -> bool:
        """Whether the client is silent because the server has not read or asked yet."""
        cycle = self.cycle
        if self.flow.read_paused:
            return True
        if cycle is None:
            return False
        if self.headers_done:  # this request's cycle
            return cycle.waiting_for_100_continue and not cycle.response_started
        return not cycle.response_complete  # the previous request is still being answered

    def read_timed_out(self) -> None:
        self.read_timer = None
        if not self.owed or self.transport.is_closing():
            return
        quiet_s = self.loop.time() - self.last_read
        if self.waiting_on_the_server():
            self.last_read = self.loop.time()  # the client's time starts when the server's ends
            self.arm(self.read_timeout_s)
            return
        if quiet_s < self.read_timeout_s:
            self.arm(self.read_timeout_s - quiet_s)
            return
        self.cut_off()

    def cut_off(self) -> None:
        """Answer 408 unless an answer to this request has begun, end the request's app call
        (it reads a disconnect), close."""
        cycle = self.cycle
        answering = self.headers_done and cycle is not None and cycle.response_started
        if self.request_begun and not answering:
            self.transport.write(timeout_answer(self.read_timeout_s))
        if self.headers_done and cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        client = self.client[0] if self.client else "-"
        log.info("read timeout: %s sent nothing for %g s %s; closed", client,
                 self.read_timeout_s,
                 "in the middle of a request" if self.request_begun else "after connecting")
        self.transport.close()
