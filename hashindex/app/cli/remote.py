"""`hashindex query --server URL`: the same query sent to a running `hashindex serve`, its JSON
answer turned back into the SearchResult the local printers take, so the table, --json and
--jsonl hold the same fields whether the index is opened here or served."""

from __future__ import annotations

from hashindex.engine import Hit, SearchResult
from hashindex.errors import HashIndexError


def remote_search(server: str, queries: list[dict], timeout_s: float = 60.0
                  ) -> list[SearchResult]:
    """POST one query to /search, or several to /search/batch; a 4xx answer or an unreachable
    server is the user's one-line error."""
    import httpx

    url = server.rstrip("/")
    single = len(queries) == 1
    try:
        answer = httpx.post(url + ("/search" if single else "/search/batch"),
                            json=queries[0] if single else {"queries": queries},
                            timeout=timeout_s)
    except httpx.HTTPError as error:
        raise HashIndexError(f"--server {server}: cannot reach the service ({error}); is "
                             "`hashindex serve` running there?") from None
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if answer.status_code != 200:
        message = body.get("error") if isinstance(body, dict) else None
        raise HashIndexError(f"--server {server}: {message or f'HTTP {answer.status_code}'}")
    try:
        return [result_of(r) for r in ([body] if single else body["results"])]
    except (KeyError, TypeError, AttributeError) as error:  # another service at that URL
        raise HashIndexError(f"--server {server}: its answer is not a hashindex search answer "
                             f"({type(error).__name__}: {error}); give the URL of a "
                             "`hashindex serve` of this version") from None


def result_of(answer: dict) -> SearchResult:
    hits = [Hit(id=h["id"], distance=h["distance"], score=h["score"], text=h.get("text"),
                metadata=h.get("metadata") or {}, row=-1) for h in answer["hits"]]
    return SearchResult(hits=hits, radius=answer["radius"],
                        buckets_touched=answer["buckets_touched"],
                        documents_touched=answer["documents_touched"],
                        candidates=answer["candidates"], exact=answer["exact"],
                        backend=answer["backend"], reranked=answer["reranked"],
                        notes=answer.get("notes", []), scanned=answer.get("scanned", False),
                        ranking=answer.get("ranking", "cosine"),
                        setting=answer.get("setting", ""),
                        tuned_recall=answer.get("tuned_recall"),
                        filter_examined=answer.get("filter_examined"),
                        filter_passed=answer.get("filter_passed"))
