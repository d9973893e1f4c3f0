"""The service's request and response bodies (documented by the OpenAPI schema at /docs).

Request bodies are validated strictly: a JSON type other than the field's is refused (`k: true`,
`k: "10"`, `k: 10.0`, `upsert: "yes"` were taken as 1, 10, 10 and true), as are unknown fields
(a misspelt option silently ignored), numbers that are not finite, and integers beyond int64
(metadata, filters and options are stored or compared as 64-bit numbers: 2**70 was a 500)."""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from hashindex.engine import Like
from hashindex.errors import HashIndexError

QUERY_FIELDS = ("text", "embedding", "code", "like")
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
STRICT = ConfigDict(strict=True, allow_inf_nan=False, extra="forbid")

Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]


def fits_the_index(value: Any, where: str = "") -> Any:
    """A free-form JSON value (metadata, a filter, backend options) checked through its lists
    and objects: integers within int64, finite numbers. The error's `where` is the path below
    the field, which read_body appends to the field's name."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        raise PydanticCustomError("int64", "{value} does not fit a 64-bit integer "
                                  "(-2**63 to 2**63-1)", {"value": value, "where": where})
    if isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError("finite_number", "{value} is not a finite number",
                                  {"value": value, "where": where})
    if isinstance(value, list):
        for position, item in enumerate(value):
            fits_the_index(item, f"{where}.{position}")
    if isinstance(value, dict):
        for key, item in value.items():
            fits_the_index(item, f"{where}.{key}")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(fits_the_index)]


class SearchBody(BaseModel):
    """Exactly one of text, embedding, code (hex) or like; the rest as `hashindex query`
    takes them."""

    model_config = STRICT

    text: str | None = None
    embedding: list[float] | None = None
    code: str | None = Field(None, description="the query's code as hex")
    like: str | None = Field(None, description="search with this stored document's own "
                                               "embedding (or code); it is left out")
    like_id: str | None = Field(None, description="the old name of `like`, kept for one "
                                "release", json_schema_extra={"deprecated": True})
    k: Int64 = 10
    radius: Int64 | None = None
    backend: str | None = Field(None, description="a backend by name (default: the fastest "
                                "setting the index was tuned to that meets target_recall)")
    target_recall: float | None = Field(None, gt=0, le=1, description="recall@10 to aim for "
                                        "(default: the build's target, 0.95)")
    backend_options: JsonObject = Field(default_factory=dict)
    rerank: bool = Field(True, description="rank by cosine to the stored vectors (false: by "
                                           "code distance)")
    rerank_candidates: Int64 | None = None
    filter: JsonObject | None = Field(None, description='metadata conditions, all of which must '
                                'hold: {"col": value}, {"col": [v1, v2]} (one of), '
                                '{"col": {"gte": 1, "lt": 5}} (a range)')


class BatchBody(BaseModel):
    """Many searches in one request, each as POST /search takes it."""

    model_config = STRICT

    queries: list[SearchBody]


class NewDocument(BaseModel):
    model_config = STRICT

    id: str
    text: str | None = None
    embedding: list[float] | None = Field(None, description="for an index built from "
                                          "precomputed embeddings (else the text is embedded)")
    metadata: JsonObject = Field(default_factory=dict)


class AddBody(BaseModel):
    """Documents to add as one new segment (one commit)."""

    model_config = STRICT

    documents: list[NewDocument]
    upsert: bool = Field(False, description="replace documents whose id is already in the "
                                            "index (else the whole add is refused)")


class DeleteBody(BaseModel):
    model_config = STRICT

    ids: list[str]
    strict: bool = Field(False, description="refuse the whole delete if an id is unknown")


def query_of(body: SearchBody, bits: int):
    """The query the engine takes: text, a float32 embedding, a code (bytes) or Like."""
    given = [name for name in (*QUERY_FIELDS, "like_id") if getattr(body, name) is not None]
    if len(given) != 1:
        raise HashIndexError("give exactly one of text, embedding, code or like"
                             + (f" (got {', '.join(given)})" if given else ""))
    if body.text is not None:
        if not body.text.strip():
            raise HashIndexError("text: the query text is empty; pass some words to search for")
        return body.text
    if body.like is not None or body.like_id is not None:
        return Like(body.like if body.like is not None else body.like_id)
    if body.embedding is not None:
        return np.asarray(body.embedding, dtype=np.float32)
    try:
        code = bytes.fromhex(body.code)
    except ValueError:
        raise HashIndexError(f"code: {body.code[:40]!r} is not hex") from None
    if len(code) * 8 != bits:
        raise HashIndexError(f"code: has {len(code) * 8} bits; this index's codes have {bits}")
    return code


def deprecation_notes(body: SearchBody, answer: dict) -> dict:
    """An answer to a body that used an old name says so among its notes."""
    if body.like_id is not None:
        answer["notes"] = [*answer["notes"], "like_id is deprecated and will be removed in "
                                              "the next release; use like"]
    return answer


def result_json(result, timings: dict) -> dict:
    """A SearchResult as /search answers it: its plain data and the timings in ms."""
    return {**result.to_dict(),
            "timings": {name: round(seconds * 1000, 3) for name, seconds in timings.items()}}
