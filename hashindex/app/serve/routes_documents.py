"""GET /documents/{id}: a stored document of the served build."""

from __future__ import annotations

from fastapi import APIRouter, Request

from hashindex.app.serve.bodies import id_in_path
from hashindex.app.serve.responses import DocumentResponse, responses
from hashindex.app.serve.service import service_of

router = APIRouter()


@router.get("/documents/{doc_id:path}", openapi_extra=id_in_path("a stored document's id"),
            responses=responses(DocumentResponse, "The stored document.", 404, 503))
def document(request: Request):
    doc_id = request.path_params["doc_id"]
    hit = service_of(request).snapshot().index.document(doc_id)  # unknown: UnknownDocument
    return {"id": hit.id, "text": hit.text, "metadata": hit.metadata}
