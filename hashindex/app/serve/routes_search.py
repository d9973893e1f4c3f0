"""POST /search and POST /search/batch. A query is checked on the event loop, its text
embedded by the batcher's model thread (the loop awaits it), the search run on the service's
search threads: no request holds the loop."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request

from hashindex.app.serve.bodies import json_response, read_body, request_schema
from hashindex.app.serve.failures import BadBody
from hashindex.app.serve.responses import BatchResponse, SearchResponse, responses
from hashindex.app.serve.schema import (
    BatchBody,
    SearchBody,
    deprecation_notes,
    query_of,
    result_json,
)
from hashindex.app.serve.service import Service, service_of
from hashindex.app.serve.snapshots import Snapshot
from hashindex.errors import HashIndexError, UnknownDocument

router = APIRouter()


def check_body(service: Service, body: SearchBody, current: Snapshot):
    """The query and the engine's request for it, or the error naming what is wrong."""
    max_k = service.settings.max_k
    if not 1 <= body.k <= max_k:
        raise HashIndexError(f"k: {body.k} is out of range; use 1 to {max_k}")
    request = current.index.requests.get(body.k, dict(  # checked once per option set
        radius=body.radius, rerank=body.rerank, backend=body.backend,
        backend_options=body.backend_options, rerank_candidates=body.rerank_candidates,
        filter=body.filter, target_recall=body.target_recall))
    query = query_of(body, current.index.bits)
    if isinstance(query, str) and current.batcher is None:
        current.index.embedder()  # raises: this index has no text model
    return query, request


def search_one(service: Service, current: Snapshot, query, request, started: float,
               embedded: float) -> dict:
    """The search itself (in the thread pool): code, candidates, re-rank, documents."""
    result = current.index.run(query, request)
    done = time.perf_counter()
    service.metrics.embed_seconds.observe(embedded - started)
    service.metrics.search_seconds.observe(done - embedded)
    return result_json(result, {"embed": embedded - started, "search": done - embedded,
                                "total": done - started})


async def answer(service: Service, current: Snapshot, query, request, started: float,
                 embedding=None) -> dict:
    """A query checked by check_body: its text embedded (unless `embedding` is given), then
    searched on the service's search threads."""
    if isinstance(query, str):
        if embedding is None:
            embedding = (await asyncio.wrap_future(current.batcher.submit([query])))[0]
        query = embedding
    return await asyncio.get_running_loop().run_in_executor(
        service.searchers, search_one, service, current, query, request, started,
        time.perf_counter())


@router.post("/search", openapi_extra=request_schema(SearchBody), responses=responses(
    SearchResponse, "The hits, best first, with how they were found.",
    400, 404, 408, 413, 422, 503,
    s404="`like` names no document in the served index."))
async def search(request: Request):
    service = service_of(request)
    body = await read_body(request, SearchBody)
    current = service.snapshot()
    started = time.perf_counter()
    return json_response(deprecation_notes(
        body, await answer(service, current, *check_body(service, body, current), started)))


def at_query(position: int, error: HashIndexError) -> HashIndexError:
    """A batch's error, prefixed with the query it arose in."""
    if isinstance(error, UnknownDocument):
        return error.at(f"queries[{position}]: ")
    return HashIndexError(f"queries[{position}]: {error}")


@router.post("/search/batch", openapi_extra=request_schema(BatchBody), responses=responses(
    BatchResponse, "Each query's answer, in order, as POST /search gives it.",
    400, 404, 408, 413, 422, 503,
    s404="A query's `like` names no document in the served index (the error says which "
         "query: `queries[i]: ...`)."))
async def search_batch(request: Request):
    """Each query answered as /search would; their texts embedded in one model call; the
    first bad query named by its position."""
    service = service_of(request)
    settings = service.settings
    body = await read_body(request, BatchBody)
    current = service.snapshot()
    if len(body.queries) > settings.max_batch_queries:
        raise HashIndexError(f"queries: {len(body.queries)} in one batch; at most "
                             f"{settings.max_batch_queries}")
    checked = []
    for position, query in enumerate(body.queries):
        try:
            checked.append(check_body(service, query, current))
        except HashIndexError as error:
            raise at_query(position, error) from None
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
                service, current, query, search_request, time.perf_counter(),
                embedded.get(position))))
        except HashIndexError as error:
            raise at_query(position, error) from None
    total = time.perf_counter() - started
    return json_response({"results": results, "timings": {  # the shared model call too
        "embed": round(embed_seconds * 1000, 3), "total": round(total * 1000, 3)}})
