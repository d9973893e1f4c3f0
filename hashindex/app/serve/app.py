"""The FastAPI application: one pinned index and its text model, loaded at start-up with a
warm-up query, searched by JSON requests. Endpoints are plain functions, so FastAPI runs them
in its thread pool: a slow request never stalls the event loop. Every error the user can act
on is a 4xx JSON body {"error": "..."} naming the field; the service keeps serving."""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from hashindex.errors import HashIndexError

log = logging.getLogger("hashindex.serve")
WARM_UP_TEXT = "warm-up query"


class SearchBody(BaseModel):
    """Exactly one of text, embedding or code (hex); the rest as `hashindex query` takes."""

    text: str | None = None
    embedding: list[float] | None = None
    code: str | None = Field(None, description="the query's code as hex")
    k: int = 10
    radius: int | None = None
    backend: str = "table"
    backend_options: dict = Field(default_factory=dict)
    rerank_candidates: int | None = None


class BatchBody(BaseModel):
    """Many searches in one request, each as POST /search takes it."""

    queries: list[SearchBody]


def query_of(body: SearchBody, index):
    given = [name for name in ("text", "embedding", "code") if getattr(body, name) is not None]
    if len(given) != 1:
        raise HashIndexError("give exactly one of text, embedding or code"
                             + (f" (got {', '.join(given)})" if given else ""))
    if body.text is not None:
        return body.text
    if body.embedding is not None:
        return np.asarray(body.embedding, dtype=np.float32)
    try:
        code = bytes.fromhex(body.code)
    except ValueError:
        raise HashIndexError(f"code {body.code[:40]!r} is not hex") from None
    if len(code) * 8 != index.bits:
        raise HashIndexError(f"code has {len(code) * 8} bits; this index's codes have "
                             f"{index.bits}")
    return code


def result_json(result, seconds: float) -> dict:
    return {
        "hits": [{"id": h.id, "distance": h.distance, "score": round(h.score, 6),
                  "text": h.text, "metadata": h.metadata} for h in result.hits],
        "radius": result.radius, "candidates": result.candidates,
        "buckets_touched": result.buckets_touched,
        "documents_touched": result.documents_touched, "scanned": result.scanned,
        "exact": result.exact, "backend": result.backend, "reranked": result.reranked,
        "notes": result.notes, "milliseconds": round(seconds * 1000, 3)}


def create_app(index_path: str, max_k: int = 1000) -> FastAPI:
    from hashindex.engine import HashIndex

    state: dict = {"index": None}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        started = time.perf_counter()
        index = HashIndex.open(index_path)
        if index.manifest.embedding_model != "precomputed":
            index.search(WARM_UP_TEXT, k=1)  # loads the text model and compiles the search
        state["index"] = index
        log.info("serving %s: %d documents, ready in %.2f s", index_path, len(index),
                 time.perf_counter() - started)
        yield
        state["index"] = None

    app = FastAPI(title="hashindex", lifespan=lifespan)

    @app.exception_handler(HashIndexError)
    async def user_error(request: Request, error: HashIndexError):
        return JSONResponse({"error": str(error)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, error: RequestValidationError):
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid request')}"},
                            status_code=422)

    @app.get("/health")
    def health():
        return {"status": "alive"}

    @app.get("/ready")
    def ready():
        if state["index"] is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return {"status": "ready"}

    @app.get("/info")
    def info():
        return state["index"].manifest.to_dict()

    def run_search(body: SearchBody) -> dict:
        index = state["index"]
        if not 1 <= body.k <= max_k:
            raise HashIndexError(f"k={body.k} is out of range: use 1 to {max_k}")
        started = time.perf_counter()
        result = index.search(query_of(body, index), k=body.k, max_radius=body.radius,
                              backend=body.backend, backend_options=body.backend_options,
                              rerank_candidates=body.rerank_candidates)
        return result_json(result, time.perf_counter() - started)

    @app.post("/search")
    def search(body: SearchBody):
        return run_search(body)

    @app.post("/search/batch")
    def search_batch(body: BatchBody):
        """Each query answered as /search would; the first bad one names its position."""
        if len(body.queries) > max_k:
            raise HashIndexError(f"queries: {len(body.queries)} in one batch; at most {max_k}")
        out = []
        for position, query in enumerate(body.queries):
            try:
                out.append(run_search(query))
            except HashIndexError as error:
                raise HashIndexError(f"queries[{position}]: {error}") from None
        return {"results": out}

    @app.get("/documents/{doc_id:path}")
    def document(doc_id: str):
        try:
            hit = state["index"].document(doc_id)
        except HashIndexError as error:
            return JSONResponse({"error": str(error)}, status_code=404)
        return {"id": hit.id, "text": hit.text, "metadata": hit.metadata}

    return app
