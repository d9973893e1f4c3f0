"""`hashindex query --server URL`: the same query sent to a running `hashindex serve`, its JSON
answer turned back into the SearchResult the local printers take, so the table, --json and
--jsonl hold the same fields whether the index is opened here or served."""

from __future__ import annotations

from hashindex.engine import SearchResult
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
        return [SearchResult.from_dict(r) for r in ([body] if single else body["results"])]
    except (KeyError, TypeError, AttributeError) as error:  # another service at that URL
        raise HashIndexError(f"--server {server}: its answer is not a hashindex search answer "
                             f"({type(error).__name__}: {error}); give the URL of a "
                             "`hashindex serve` of this version") from None

