"""Request bodies read by the endpoints themselves, and what the OpenAPI schema says of them.

An endpoint reads its body with read_body (pydantic-core parses and validates in one pass) and
answers with json_response (orjson): FastAPI's own body parameter and response model would
cost more per request than the search of a small index. Since FastAPI then sees no body,
request_schema, with_request_bodies and id_in_path tell the schema what it is."""

from __future__ import annotations

import json

import orjson
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from hashindex.app.serve.failures import BadBody, ClientGone
from hashindex.app.serve.schema import AddBody, BatchBody, DeleteBody, SearchBody


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
