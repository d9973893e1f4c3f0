"""What the service answers, as pydantic models for the OpenAPI schema at /docs.

These only document: the handlers still build plain dicts and dump them with orjson (or FastAPI's
JSON), since validating every answer would cost more than the search of a small index. The
models forbid keys they do not name, so tests/test_serve_contract.py can check each real answer
against them and a key added to an answer without its documentation fails there."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

DOCUMENTED = ConfigDict(extra="forbid")


class ErrorResponse(BaseModel):
    """Every error the service sends: one line naming the field or value at fault."""

    model_config = DOCUMENTED

    error: str = Field(description="what is wrong and what to do, one line; a request's "
                       "field is named first (`k: ...`, `queries[2]: ...`)")


class HealthResponse(BaseModel):
    model_config = DOCUMENTED

    status: str = Field(description='always "alive": the process answers (see /ready)')


class ReadyResponse(BaseModel):
    model_config = DOCUMENTED

    status: str = Field(description='"ready"')
    documents: int = Field(description="live documents in the served build")
    loaded_at: float = Field(description="when the served build was opened (Unix seconds)")
    reloads: int = Field(description="new builds or commits swapped in since the start")


class NotReadyResponse(BaseModel):
    model_config = DOCUMENTED

    status: str = Field(description='"loading", or "failed" when the index or its text model '
                        "could not be opened")
    error: str | None = Field(description="why it failed (null while loading)")


class EmbeddingModel(BaseModel):
    model_config = DOCUMENTED

    name: str = Field(description="the text model (or the precomputed-embeddings marker)")
    dimension: int
    backend: str | None = Field(None, description="its runtime: torch, onnx, openvino")
    quantize: str | None = None
    calibration: str | None = None
    model_sha256: str | None = None
    max_tokens: int | None = None
    export_method: str | None = None


class SegmentInfo(BaseModel):
    model_config = DOCUMENTED

    name: str
    folder: str = Field(description="relative to the index")
    rows: int
    shards: list[dict[str, Any]] = Field(description='{"file", "rows"} each, in row order')
    origin: str = Field(description="build, add or compact")
    trained_rows: int
    deleted: int
    deletions: str | None = Field(description="the file of deleted rows (null: none)")
    generation: int = Field(description="the generation that wrote it")


class InfoResponse(BaseModel):
    """The served build's manifest.json, and whether its tuning is stale."""

    model_config = DOCUMENTED

    documents: int = Field(description="live documents")
    bits: int
    variant: str
    embedding_model: EmbeddingModel
    backend: str = Field(description="the search backend built beside the table")
    segments: list[SegmentInfo]
    generation: int
    next_segment: int
    metadata_columns: list[str] = Field(description="what `filter` may name")
    store_embeddings: bool = Field(description="stored vectors re-rank the candidates")
    vector_dtype: str | None
    backend_options: dict[str, Any]
    distinct_codes: int
    skipped_empty: int
    model: dict[str, Any] = Field(description="the encoder's configuration")
    train: dict[str, Any] | None = Field(description="its training (null: a reused encoder)")
    build: dict[str, Any] = Field(description="how the build was asked for")
    stage_seconds: dict[str, float]
    versions: dict[str, str] = Field(description="of the libraries that made it")
    created: str
    hashindex_version: str
    files: dict[str, dict[str, Any]] = Field(description='{path: {"sha256", "bytes"}}')
    history: list[dict[str, Any]] = Field(description="one entry per commit after the build")
    tuning: dict[str, Any] | None = Field(description="the build's recall/speed sweep")
    format_version: int
    tuning_stale: bool = Field(description="commits changed the index enough that the "
                               "tuned settings may no longer reach their recall")


class SearchHit(BaseModel):
    model_config = DOCUMENTED

    id: str
    score: float = Field(description="cosine to the query, or the code agreement "
                         "1 - 2*distance/bits when ranked by code distance")
    distance: int = Field(description="Hamming distance between the codes")
    text: str | None
    metadata: dict[str, Any]


class SearchTimings(BaseModel):
    model_config = DOCUMENTED

    embed: float = Field(description="milliseconds waiting for and computing the embedding")
    search: float = Field(description="milliseconds searching, re-ranking, reading documents")
    total: float


class SearchResponse(BaseModel):
    model_config = DOCUMENTED

    hits: list[SearchHit] = Field(description="best first, at most k")
    radius: int = Field(description="the Hamming radius the search reached")
    candidates: int
    buckets_touched: int
    documents_touched: int
    scanned: bool = Field(description="every code was compared (a full scan)")
    exact: bool
    backend: str
    reranked: bool
    ranking: str = Field(description='"cosine" or "code distance"')
    setting: str = Field(description="the tuned setting that ran (empty: the request's own)")
    tuned_recall: float | None = Field(description="recall@10 that setting reached when tuned")
    notes: list[str]
    timings: SearchTimings
    filter_examined: int | None = Field(None, description="with a filter: candidates checked")
    filter_passed: int | None = Field(None, description="with a filter: those that passed")


class BatchTimings(BaseModel):
    model_config = DOCUMENTED

    embed: float = Field(description="milliseconds of the batch's one model call")
    total: float


class BatchResponse(BaseModel):
    model_config = DOCUMENTED

    results: list[SearchResponse] = Field(description="one per query, in order")
    timings: BatchTimings


class DocumentResponse(BaseModel):
    model_config = DOCUMENTED

    id: str
    text: str | None
    metadata: dict[str, Any]


class AddResponse(BaseModel):
    model_config = DOCUMENTED

    added: int
    replaced: int = Field(description="documents an upsert replaced")
    segment: str = Field(description="the new segment")
    generation: int = Field(description="the commit, already served when this answers")


class DeleteResponse(BaseModel):
    model_config = DOCUMENTED

    deleted: int
    unknown: list[str] = Field(description="ids not in the index (nothing done for them)")
    generation: int


class DeleteOneResponse(BaseModel):
    model_config = DOCUMENTED

    deleted: int
    generation: int


ERRORS = {  # what each error status means, whichever endpoint sends it
    400: "The request asks for something the index cannot do: a value out of range, an "
         "unknown backend or metadata column, a code of the wrong length, not one query.",
    403: "Writes are off: the service was started without --allow-writes.",
    404: "No document with that id in the served index.",
    408: "The request stopped arriving before it was complete (serve --read-timeout).",
    409: "Another writer holds the index's lock; retry.",
    413: "The body is over the service's limit (serve --max-body-bytes).",
    422: "The body is not JSON or does not fit the schema: an unknown field, a value of "
         "another JSON type (`k: true`, `k: \"10\"`), a number that is not finite, more than "
         "the service answers in one batch. The error names the field.",
    500: "Internal error (a bug): the server log has the traceback.",
    503: "The index is still loading (retry shortly) or failed to load.",
}


def responses(ok: type[BaseModel], description: str, *statuses: int,
              **meanings: str) -> dict:
    """FastAPI's `responses` for an endpoint: its 200 answer and each error status it sends
    with the {"error"} body; `meanings` (as s404="...") says what a status means there."""
    out: dict = {200: {"model": ok, "description": description}}
    for status in sorted({*statuses, 500}):
        out[status] = {"model": ErrorResponse,
                       "description": meanings.get(f"s{status}", ERRORS[status])}
    return out
