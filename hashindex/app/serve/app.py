"""The FastAPI application: the published index and its text model, loaded once with a warm-up
query, searched by JSON requests. Endpoints are plain functions, so FastAPI runs them in its
thread pool: a slow request never stalls the event loop. Text queries arriving together share
one model call (batching.py); a newly published build is swapped in without a restart
(snapshots.py). Every error the user can act on is a 4xx JSON body {"error": "..."} naming the
field; the service keeps serving."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

import numpy as np
import orjson
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from hashindex.app.serve.body_limit import BodyLimitMiddleware
from hashindex.app.serve.docs import mount_docs
from hashindex.app.serve.observability import ObservabilityMiddleware, ServiceMetrics
from hashindex.app.serve.page import mount_search_page
from hashindex.app.serve.responses import (
    AddResponse,
    BatchResponse,
    DeleteOneResponse,
    DeleteResponse,
    DocumentResponse,
    HealthResponse,
    InfoResponse,
    NotReadyResponse,
    ReadyResponse,
    SearchResponse,
    responses,
)
from hashindex.app.serve.schema import (
    AddBody,
    BatchBody,
    DeleteBody,
    SearchBody,
    deprecation_notes,
    query_of,
    result_json,
)
from hashindex.app.serve.snapshots import ServingState, Snapshot
from hashindex.errors import HashIndexError, UnknownDocument
from hashindex.store.lock import WriterBusy

log = logging.getLogger("hashindex.serve")


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


class NotReady(Exception):
    pass


class WritesOff(Exception):
    """A write to a service started without --allow-writes: 403."""


class BadBody(Exception):
    """A body that is not JSON or does not fit the schema, or a request asking for more than
    the service's limits allow: a 422 naming the field."""


class NotInIndex(Exception):
    """A document asked for by id that the index does not hold: 404."""


def listed(ids: list[str], shown: int = 5) -> str:
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(repr(i) for i in ids[:shown]) + more


class ClientGone(Exception):
    """The client stopped sending its body (read timeout) or hung up: 408, which reaches the
    log and metrics (the client itself was answered by protocol.py, or is gone)."""


async def read_body(request: Request, model: type[BaseModel]):
    """The body parsed and validated by pydantic-core in one pass (faster than FastAPI's
    json.loads then validate, which matters at thousands of requests per second)."""
    try:
        return model.model_validate_json(await request.body())
    except ClientDisconnect:
        raise ClientGone() from None
    except ValidationError as error:
        raise BadBody(validation_message(error)) from None


def validation_message(error: ValidationError) -> str:
    """The first problem as `field.path: what is wrong (got VALUE)`, the value as JSON."""
    first = error.errors()[0] if error.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    where += str((first.get("ctx") or {}).get("where", ""))  # inside a free-form object
    message = f"{where.lstrip('.') or 'body'}: {first.get('msg', 'invalid request')}"
    given = first.get("input")
    if where and first.get("type") != "missing" and isinstance(given, (bool, int, float, str)):
        message += f" (got {json.dumps(given)[:60]})"  # NaN stays NaN, not null
    for words, hint in JSON_HINTS.items():
        if words in message:
            message += hint
    return message


JSON_HINTS = {  # pydantic-core's words for a body that is not JSON text, and what to do
    "hex escape": "; a \\uD800-\\uDFFF escape must be half of a surrogate pair (a lone one "
                  "is not text)",
    "invalid unicode code point": "; send the body as UTF-8",
}


REQUEST_BODIES = (SearchBody, BatchBody, AddBody, DeleteBody)


def request_schema(model: type[BaseModel]) -> dict:
    """The body's schema for /docs, since the endpoint reads the body itself: a reference to
    the model among the schema's components (with_request_bodies puts it there)."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}


def with_request_bodies(app: FastAPI) -> None:
    """The OpenAPI schema with REQUEST_BODIES and the models they nest (a search in a batch,
    a new document) as components. A body's own model_json_schema() nests them under $defs,
    which a reference inside the OpenAPI document cannot reach (Swagger UI showed a resolver
    error in the body's place)."""
    from pydantic.json_schema import models_json_schema

    made = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = made()  # FastAPI's, kept as app.openapi_schema and served from there
            _, bodies = models_json_schema([(model, "validation") for model in REQUEST_BODIES],
                                           ref_template="#/components/schemas/{model}")
            schema.setdefault("components", {}).setdefault("schemas", {}).update(
                bodies["$defs"])
        return app.openapi_schema

    app.openapi = openapi


def id_in_path(what: str) -> dict:
    """The document id for /docs, since the endpoint reads it from the path itself (a FastAPI
    parameter would bring FastAPI's 422 with `detail` into the schema, for a string that
    cannot fail)."""
    return {"parameters": [{"name": "doc_id", "in": "path", "required": True,
                            "schema": {"type": "string"}, "description": what}]}


def json_response(content: dict) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")


def create_app(index_path: str, settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    metrics = ServiceMetrics()
    state = ServingState(index_path, verify=settings.verify_reloads,
                         window_s=settings.batch_window_ms / 1000,
                         max_batch=settings.max_text_batch,
                         on_batch=metrics.batch_size.observe,
                         on_depth=metrics.queue_depth.set,
                         preload_bytes=settings.preload_documents_mb << 20,
                         embed_threads=settings.embed_threads)
    status: dict = {"error": None}
    # Searches run off the event loop on as many threads as cores: more threads only fight
    # over the GIL (measured: 40 threads answered 704 q/s at 32 clients, 2 threads 993).
    searchers = ThreadPoolExecutor(max_workers=settings.search_threads or os.cpu_count() or 2,
                                   thread_name_prefix="search")
    writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="write")  # one writer

    def count_documents():
        metrics.documents.set(len(state.current.index) if state.current else 0)

    def reloaded():
        metrics.reloads.inc()
        count_documents()

    def load_in_background():
        """The server listens at once (/health answers, /ready says 503) while this loads."""
        try:
            state.open()
        except Exception as error:  # reported by /ready and every search, and logged
            status["error"] = str(error)
            log.error("the index or its text model failed to load: %s", error)
            return
        count_documents()
        if settings.reload_interval_s > 0:
            state.watch(settings.reload_interval_s, on_reload=reloaded)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loader = threading.Thread(target=load_in_background, name="index-loader", daemon=True)
        loader.start()
        if settings.load_before_listening:
            await asyncio.get_running_loop().run_in_executor(None, loader.join)
        yield {"read_timeout_s": settings.read_timeout_s}  # read by every connection
        loader.join(timeout=60)
        state.close()
        searchers.shutdown(wait=True)
        writes.shutdown(wait=True)
        metrics.close()

    app = FastAPI(title="hashindex", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Semantic-hashing search over one index; see the README. Every "
                  'error is a JSON body {"error": "..."} naming the field at fault. Besides '
                  "the statuses listed per endpoint: 400 for bytes that are not HTTP/1.1, 408 "
                  "for a request that stops arriving, 413 for any body over the limit, 404 "
                  "for an unknown path.")

    def snapshot() -> Snapshot:
        current = state.current
        if current is None:
            raise NotReady(status["error"] or "the index is still loading; retry shortly")
        return current

    @app.exception_handler(HashIndexError)
    async def user_error(request: Request, error: HashIndexError):
        return JSONResponse({"error": str(error)},
                            status_code=409 if isinstance(error, WriterBusy) else 400)

    @app.exception_handler(UnknownDocument)
    async def unknown_document(request: Request, error: UnknownDocument):
        return JSONResponse({"error": error.public}, status_code=404)

    @app.exception_handler(WritesOff)
    async def writes_off(request: Request, error: WritesOff):
        return JSONResponse({"error": "this service is read-only; start it with "
                                      "`hashindex serve --allow-writes` to add or delete"},
                            status_code=403)

    @app.exception_handler(NotReady)
    async def not_ready(request: Request, error: NotReady):
        return JSONResponse({"error": str(error)}, status_code=503)

    @app.exception_handler(BadBody)
    async def bad_body(request: Request, error: BadBody):
        return JSONResponse({"error": str(error)}, status_code=422)

    @app.exception_handler(NotInIndex)
    async def not_in_index(request: Request, error: NotInIndex):
        return JSONResponse({"error": str(error)}, status_code=404)

    @app.exception_handler(ClientGone)
    async def client_gone(request: Request, error: ClientGone):
        return JSONResponse({"error": "request: the body stopped arriving"}, status_code=408)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception):
        log.exception("internal error answering %s %s", request.method, request.url.path)
        return JSONResponse({"error": f"internal error ({type(error).__name__}); the server "
                                      "log has the traceback"}, status_code=500)

    @app.get("/health", responses=responses(HealthResponse, "The process answers."))
    def health():
        return {"status": "alive"}

    @app.get("/ready", responses={
        **responses(ReadyResponse, "The index is loaded and searched."),
        503: {"model": NotReadyResponse, "description": "Still loading, or failed to load."}})
    def ready():
        if state.current is None:
            return JSONResponse({"status": "failed" if status["error"] else "loading",
                                 "error": status["error"]}, status_code=503)
        return {"status": "ready", "documents": len(state.current.index),
                "loaded_at": state.current.loaded_at, "reloads": state.reloads}

    @app.get("/info", responses=responses(InfoResponse, "The served build's manifest.", 503))
    def info():
        index = snapshot().index
        stale = index.tuning is not None and index.tuning.stale(index.row_count, len(index))
        return {**index.manifest.to_dict(), "tuning_stale": stale}

    @app.get("/metrics", include_in_schema=False)
    def prometheus():
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    def check_body(body: SearchBody, current: Snapshot):
        if not 1 <= body.k <= settings.max_k:
            raise HashIndexError(f"k: {body.k} is out of range; use 1 to {settings.max_k}")
        request = current.index.requests.get(body.k, dict(  # checked once per option set
            radius=body.radius, rerank=body.rerank, backend=body.backend,
            backend_options=body.backend_options, rerank_candidates=body.rerank_candidates,
            filter=body.filter, target_recall=body.target_recall))
        query = query_of(body, current.index.bits)
        if isinstance(query, str) and current.batcher is None:
            current.index.embedder()  # raises: this index has no text model
        return query, request

    def search_one(current: Snapshot, query, request, started: float, embedded: float
                   ) -> dict:
        """The search itself (in the thread pool): code, candidates, re-rank, documents."""
        result = current.index.run(query, request)
        done = time.perf_counter()
        metrics.embed_seconds.observe(embedded - started)
        metrics.search_seconds.observe(done - embedded)
        return result_json(result, {"embed": embedded - started, "search": done - embedded,
                                    "total": done - started})

    async def answer(current: Snapshot, query, request, started: float,
                     embedding=None) -> dict:
        """A query checked by check_body, on the event loop; the text embedded by the
        batcher's model thread (the loop awaits it), the search in the thread pool: no
        request holds the loop."""
        if isinstance(query, str):
            if embedding is None:
                embedding = (await asyncio.wrap_future(current.batcher.submit([query])))[0]
            query = embedding
        return await asyncio.get_running_loop().run_in_executor(
            searchers, search_one, current, query, request, started, time.perf_counter())

    @app.post("/search", openapi_extra=request_schema(SearchBody), responses=responses(
        SearchResponse, "The hits, best first, with how they were found.",
        400, 404, 408, 413, 422, 503,
        s404="`like` names no document in the served index."))
    async def search(request: Request):
        body = await read_body(request, SearchBody)
        current = snapshot()
        started = time.perf_counter()
        return json_response(deprecation_notes(
            body, await answer(current, *check_body(body, current), started)))

    @app.post("/search/batch", openapi_extra=request_schema(BatchBody), responses=responses(
        BatchResponse, "Each query's answer, in order, as POST /search gives it.",
        400, 404, 408, 413, 422, 503,
        s404="A query's `like` names no document in the served index (the error says which "
             "query: `queries[i]: ...`)."))
    async def search_batch(request: Request):
        """Each query answered as /search would; their texts embedded in one model call; the
        first bad query named by its position."""
        body = await read_body(request, BatchBody)
        current = snapshot()
        if len(body.queries) > settings.max_batch_queries:
            raise HashIndexError(f"queries: {len(body.queries)} in one batch; at most "
                                 f"{settings.max_batch_queries}")
        checked = []
        for position, query in enumerate(body.queries):
            try:
                checked.append(check_body(query, current))
            except UnknownDocument as error:
                raise error.at(f"queries[{position}]: ") from None
            except HashIndexError as error:
                raise HashIndexError(f"queries[{position}]: {error}") from None
        hits = sum(query.k for query in body.queries)
        if hits > settings.max_batch_hits:
            raise BadBody(f"queries: the batch asks for {hits} hits (its queries' k summed); "
                          f"this service answers at most {settings.max_batch_hits} in one batch "
                          "(serve --max-batch-hits): ask for fewer queries or a smaller k")
        texts = [i for i, (query, _) in enumerate(checked) if isinstance(query, str)]
        embedded = {}
        started = time.perf_counter()
        if texts:
            vectors = await asyncio.wrap_future(current.batcher.submit(
                [body.queries[i].text for i in texts]))
            embedded = dict(zip(texts, vectors))
        embed_seconds = time.perf_counter() - started
        results = []
        for position, (query, search_request) in enumerate(checked):
            try:
                results.append(deprecation_notes(body.queries[position], await answer(
                    current, query, search_request, time.perf_counter(),
                    embedded.get(position))))
            except UnknownDocument as error:
                raise error.at(f"queries[{position}]: ") from None
            except HashIndexError as error:
                raise HashIndexError(f"queries[{position}]: {error}") from None
        total = time.perf_counter() - started
        return json_response({"results": results, "timings": {  # the shared model call too
            "embed": round(embed_seconds * 1000, 3), "total": round(total * 1000, 3)}})

    async def write(change):
        """Run a change to the index on the one writer thread under the index's lock, then
        serve the generation it committed before answering (a client reads its writes)."""
        if not settings.allow_writes:
            raise WritesOff()
        snapshot()

        def run():
            from hashindex.segments.writer import IndexWriter

            with IndexWriter(index_path) as writer:
                out = change(writer)
                out["generation"] = writer.manifest.generation
            if state.check_for_new_build():
                reloaded()
            return out

        return await asyncio.get_running_loop().run_in_executor(writes, run)

    @app.post("/documents", openapi_extra=request_schema(AddBody),
              responses=responses(AddResponse, "Added in one commit, served before this "
                                  "answer.", 400, 403, 408, 409, 413, 422, 503))
    async def add_documents(request: Request):
        """Add documents as one new segment: texts embedded by the index's text model (an
        index of precomputed embeddings takes `embedding` instead), encoded by its encoder."""
        import pyarrow as pa

        body = await read_body(request, AddBody)
        current = snapshot()
        docs = body.documents
        if not docs:
            raise HashIndexError("documents: none given")
        tokens = None  # a sequence variant's texts' tokens, encoded under the writer's lock
        if current.batcher is None:
            missing = [d.id for d in docs if d.embedding is None]
            if missing:
                raise HashIndexError(f"documents: {missing[0]!r} has no embedding; this index "
                                     "was built from precomputed embeddings")
            lengths = {len(d.embedding) for d in docs}
            if len(lengths) > 1:
                raise HashIndexError(f"documents: embeddings of lengths {sorted(lengths)}; "
                                     "give every document the index's dimension")
            vectors = np.asarray([d.embedding for d in docs], dtype=np.float32)
        else:
            given = [d.id for d in docs if d.embedding is not None or not (d.text or "").strip()]
            if given:
                raise HashIndexError(f"documents: {given[0]!r} needs a text (and no "
                                     "embedding): this index embeds text with its own model")
            embedded = await asyncio.wrap_future(current.batcher.submit([d.text for d in docs]))
            if current.index.token_count:  # a sequence variant: encoded from the tokens
                vectors = np.stack([e.embedding for e in embedded])
                tokens = (np.stack([e.tokens for e in embedded]),
                          np.array([e.length for e in embedded]))
            else:
                vectors = np.asarray(embedded, dtype=np.float32)
        names = sorted({name for d in docs for name in d.metadata})
        try:
            metadata = pa.table({name: [d.metadata.get(name) for d in docs] for name in names})
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as error:
            raise HashIndexError(f"documents: metadata {error}") from None

        def change(writer):
            record, replaced = writer.add([d.id for d in docs], [d.text for d in docs],
                                          vectors, metadata, upsert=body.upsert,
                                          tokens=tokens)
            return {"added": record.rows, "replaced": replaced, "segment": record.name}

        return await write(change)

    def unknown_ids(ids: list[str]) -> list[str]:
        """The ids the served build does not hold (for a message: the writer decides)."""
        unknown = []
        for doc_id in ids:
            try:
                state.current.index.row_of(doc_id)
            except HashIndexError:
                unknown.append(doc_id)
        return unknown

    @app.post("/documents/delete", openapi_extra=request_schema(DeleteBody),
              responses=responses(DeleteResponse, "Deleted in one commit, served before this "
                                  "answer.", 400, 403, 404, 408, 409, 413, 422, 503,
                                  s404="`strict: true` and an id is not in the index: "
                                       "nothing was deleted."))
    async def delete_documents(request: Request):
        body = await read_body(request, DeleteBody)
        blank = [i for i, doc in enumerate(body.ids) if not doc.strip()]
        if blank:
            raise HashIndexError(f"ids[{blank[0]}]: the id is empty; it names no document")

        def change(writer):
            try:
                report = writer.delete(body.ids, strict=body.strict)
            except HashIndexError:  # strict refused it: say so in this request's words
                unknown = unknown_ids(body.ids) if body.strict else []
                if not unknown:
                    raise
                raise NotInIndex(f"ids: {listed(unknown)} not in this index; nothing was "
                                 "deleted (strict: true refuses the whole delete; leave it "
                                 "out to delete the others)") from None
            return {"deleted": report.deleted, "unknown": report.unknown}

        return await write(change)

    @app.delete("/documents/{doc_id:path}", openapi_extra=id_in_path("the id to delete"),
                responses=responses(DeleteOneResponse, "Deleted in one commit, served before "
                                    "this answer.", 400, 403, 404, 409, 503))
    async def delete_document(request: Request):
        doc_id = request.path_params["doc_id"]
        if not doc_id.strip():
            raise NotInIndex(f"id {doc_id!r} is empty and names no document; nothing was "
                             "deleted")

        def change(writer):
            report = writer.delete([doc_id])
            return {"deleted": report.deleted, "unknown": report.unknown}

        out = await write(change)
        if out.pop("unknown"):
            raise NotInIndex(f"id {doc_id!r} is not in this index; nothing was deleted")
        return out

    @app.get("/documents/{doc_id:path}", openapi_extra=id_in_path("a stored document's id"),
             responses=responses(DocumentResponse, "The stored document.", 404, 503))
    def document(request: Request):
        doc_id = request.path_params["doc_id"]
        hit = snapshot().index.document(doc_id)  # an unknown id: 404 (unknown_document)
        return {"id": hit.id, "text": hit.text, "metadata": hit.metadata}

    mount_search_page(app)
    mount_docs(app)
    with_request_bodies(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    return app
