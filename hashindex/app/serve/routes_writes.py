"""The writes, when the service runs with --allow-writes: POST /documents (add), POST
/documents/delete and DELETE /documents/{id}. Each is one commit on the service's one writer
thread, served before the answer (Service.write)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from hashindex.app.serve.bodies import id_in_path, read_body, request_schema
from hashindex.app.serve.failures import NotInIndex, WritesOff, listed
from hashindex.app.serve.ingest import ingest
from hashindex.app.serve.responses import (
    AddResponse,
    DeleteOneResponse,
    DeleteResponse,
    responses,
)
from hashindex.app.serve.schema import AddBody, DeleteBody
from hashindex.app.serve.service import service_of
from hashindex.errors import HashIndexError, UnknownDocuments

router = APIRouter()


@router.post("/documents", openapi_extra=request_schema(AddBody),
             responses=responses(AddResponse, "Added in one commit, served before this "
                                 "answer.", 400, 403, 408, 409, 413, 422, 503))
async def add_documents(request: Request):
    """Add documents as one new segment: texts embedded by the index's text model (an
    index of precomputed embeddings takes `embedding` instead), encoded by its encoder."""
    service = service_of(request)
    body = await read_body(request, AddBody)
    current = service.snapshot()  # 503 while loading
    if not service.settings.allow_writes:  # before the texts are embedded, not after
        raise WritesOff()
    documents = await ingest(body, current)
    return await service.write(documents.add_to)


@router.post("/documents/delete", openapi_extra=request_schema(DeleteBody),
             responses=responses(DeleteResponse, "Deleted in one commit, served before this "
                                 "answer.", 400, 403, 404, 408, 409, 413, 422, 503,
                                 s404="`strict: true` and an id is not in the index: "
                                      "nothing was deleted."))
async def delete_documents(request: Request):
    service = service_of(request)
    body = await read_body(request, DeleteBody)
    blank = [i for i, doc in enumerate(body.ids) if not doc.strip()]
    if blank:
        raise HashIndexError(f"ids[{blank[0]}]: the id is empty; it names no document")

    def change(writer):
        try:
            report = writer.delete(body.ids, strict=body.strict)
        except UnknownDocuments as error:  # strict refused it: say so in this request's words
            raise NotInIndex(f"ids: {listed(error.ids)} not in this index; nothing was "
                             "deleted (strict: true refuses the whole delete; leave it "
                             "out to delete the others)") from None
        return {"deleted": report.deleted, "unknown": report.unknown}

    return await service.write(change)


@router.delete("/documents/{doc_id:path}", openapi_extra=id_in_path("the id to delete"),
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

    out = await service_of(request).write(change)
    if out.pop("unknown"):
        raise NotInIndex(f"id {doc_id!r} is not in this index; nothing was deleted")
    return out
