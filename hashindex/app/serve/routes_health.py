"""What the service says about itself: /health (the process answers), /ready (the index is
loaded), /info (the served build's manifest) and /metrics (Prometheus, not in the schema)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from hashindex.app.api.index import index_info
from hashindex.app.serve.responses import (
    HealthResponse,
    InfoResponse,
    NotReadyResponse,
    ReadyResponse,
    responses,
)
from hashindex.app.serve.service import service_of

router = APIRouter()


@router.get("/health", responses=responses(HealthResponse, "The process answers."))
def health():
    return {"status": "alive"}


@router.get("/ready", responses={
    **responses(ReadyResponse, "The index is loaded and searched."),
    503: {"model": NotReadyResponse, "description": "Still loading, or failed to load."}})
def ready(request: Request):
    service = service_of(request)
    current = service.state.current
    if current is None:
        return JSONResponse({"status": "failed" if service.load_error else "loading",
                             "error": service.load_error}, status_code=503)
    return {"status": "ready", "documents": len(current.index),
            "loaded_at": current.loaded_at, "reloads": service.state.reloads}


@router.get("/info", responses=responses(InfoResponse, "The served build's manifest.", 503))
def info(request: Request):
    return index_info(service_of(request).snapshot().index)


@router.get("/metrics", include_in_schema=False)
def prometheus(request: Request):
    return Response(service_of(request).metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
