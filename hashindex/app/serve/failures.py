"""The service's errors and the status each is answered with: every error is a JSON body
{"error": "..."}. The library's own (hashindex.errors) are 400, an unknown document 404, a
writer's lock held elsewhere 409; these add the service's: not loaded yet (503), writes off
(403), a body that does not fit (422), an unknown id to delete (404), a body that stopped
arriving (408). Anything else is a 500 whose traceback goes to the log."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from hashindex.errors import HashIndexError, UnknownDocument
from hashindex.store.lock import WriterBusy

log = logging.getLogger("hashindex.serve")


class NotReady(Exception):
    """The index is still loading, or failed to load: 503."""


class WritesOff(Exception):
    """A write to a service started without --allow-writes: 403."""


class BadBody(Exception):
    """A body that is not JSON or does not fit the schema, or a request asking for more than
    the service's limits allow: a 422 naming the field."""


class NotInIndex(Exception):
    """A document to delete that the index does not hold: 404."""


class ClientGone(Exception):
    """The client stopped sending its body (read timeout) or hung up: 408, which reaches the
    log and metrics (the client itself was answered by protocol.py, or is gone)."""


def listed(ids: list[str], shown: int = 5) -> str:
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(repr(i) for i in ids[:shown]) + more


WRITES_OFF = ("this service is read-only; start it with `hashindex serve --allow-writes` to "
              "add or delete")


def error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def user_error(request: Request, failure: HashIndexError):
    return error(str(failure), 409 if isinstance(failure, WriterBusy) else 400)


async def unknown_document(request: Request, failure: UnknownDocument):
    return error(failure.public, 404)  # in words that leave the server's folder out


async def writes_off(request: Request, failure: WritesOff):
    return error(WRITES_OFF, 403)


async def not_ready(request: Request, failure: NotReady):
    return error(str(failure), 503)


async def bad_body(request: Request, failure: BadBody):
    return error(str(failure), 422)


async def not_in_index(request: Request, failure: NotInIndex):
    return error(str(failure), 404)


async def client_gone(request: Request, failure: ClientGone):
    return error("request: the body stopped arriving", 408)


async def http_error(request: Request, failure: HTTPException):
    return error(str(failure.detail), failure.status_code)


async def internal_error(request: Request, failure: Exception):
    log.exception("internal error answering %s %s", request.method, request.url.path)
    return error(f"internal error ({type(failure).__name__}); the server log has the "
                 "traceback", 500)


HANDLERS = {HashIndexError: user_error, UnknownDocument: unknown_document,
            WritesOff: writes_off, NotReady: not_ready, BadBody: bad_body,
            NotInIndex: not_in_index, ClientGone: client_gone, HTTPException: http_error,
            Exception: internal_error}


def add_error_handlers(app: FastAPI) -> None:
    for kind, handler in HANDLERS.items():
        app.add_exception_handler(kind, handler)
