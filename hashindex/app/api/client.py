"""`hashindex.Client(url)`: a running `hashindex serve` searched with `Index.search`'s
signature, answers as the same Results and BatchResults.

One keep-alive HTTP connection (httpx); each request has a timeout; a 503 (the service still
loading its index, or shedding load) is retried with a growing pause until `wait_s` has
passed; any other error status is a HashIndexError carrying the service's one-line error.
"""

from __future__ import annotations

import time

from hashindex.app.api.index import batch_of, query_and_options
from hashindex.app.api.results import BatchResults, Results
from hashindex.errors import HashIndexError
from hashindex.results import Like

FIRST_PAUSE_S = 0.1
LONGEST_PAUSE_S = 2.0


class Client:
    def __init__(self, url: str, *, timeout_s: float = 30.0, wait_s: float = 60.0):
        import httpx

        self.url = url.rstrip("/")
        self.wait_s = wait_s
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s)

    def search(self, q=None, k: int = 10, *, like: str | None = None,
               filter: dict | None = None, radius: int | None = None,
               target_recall: float | None = None, rerank_candidates: int | None = None,
               backend: str | None = None, backend_options: dict | None = None,
               rerank: bool = True) -> Results | BatchResults:
        """As Index.search, answered by the service (POST /search, or /search/batch for
        many queries)."""
        q, options = query_and_options(q, like, dict(
            k=k, filter=filter, radius=radius, target_recall=target_recall,
            rerank_candidates=rerank_candidates, backend=backend,
            backend_options=backend_options, rerank=rerank))
        many = batch_of(q)
        if many is None:
            return self.results(self.post("/search", {**query_body(q), **options}))
        if not many:
            raise HashIndexError("search: the list of queries is empty")
        return self.results(self.post("/search/batch", {
            "queries": [{**query_body(one), **options} for one in many]}), k)

    def results(self, answer: dict, k: int | None = None) -> Results | BatchResults:
        """/search's answer as Results, or with `k` /search/batch's as BatchResults; an
        answer without a search answer's fields (another service at this URL) is one error."""
        try:
            if k is None:
                return Results.from_json(answer)
            return BatchResults([Results.from_json(r) for r in answer["results"]], k)
        except (KeyError, TypeError, AttributeError) as error:
            raise HashIndexError(f"{self.url}: its answer is not a hashindex search answer "
                                 f"({type(error).__name__}: {error}); give the URL of a "
                                 "`hashindex serve` of this version") from None

    def get(self, doc_id: str) -> dict:
        """One document by id: {"id", "text", "metadata"}."""
        from urllib.parse import quote

        return self.request("GET", f"/documents/{quote(str(doc_id), safe='')}")

    def info(self) -> dict:
        return self.request("GET", "/info")

    def post(self, path: str, body: dict) -> dict:
        return self.request("POST", path, body)

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        """The JSON answer; 503 retried until wait_s; any other failure one error."""
        import httpx

        deadline = time.monotonic() + self.wait_s
        pause = FIRST_PAUSE_S
        while True:
            try:
                answer = self._http.request(method, path, json=body)
            except httpx.HTTPError as error:
                raise HashIndexError(f"{self.url}: cannot reach the service ({error}); is "
                                     "`hashindex serve` running there?") from None
            if answer.status_code != 503 or time.monotonic() + pause > deadline:
                break
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE_S)
        try:
            payload = answer.json()
        except ValueError:
            payload = None
        if answer.status_code >= 400:
            message = payload.get("error") if isinstance(payload, dict) else None
            raise HashIndexError(f"{self.url}{path}: {message or f'HTTP {answer.status_code}'}")
        if not isinstance(payload, dict):
            raise HashIndexError(f"{self.url}{path}: the answer is not JSON from `hashindex "
                                 "serve`; is that the service's URL?")
        return payload

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def query_body(q) -> dict:
    """One query as the service's body takes it: text, like, code (hex) or embedding."""
    if isinstance(q, str):
        return {"text": q}
    if isinstance(q, Like):
        return {"like": q.id}
    if isinstance(q, (bytes, bytearray)):
        return {"code": bytes(q).hex()}
    dtype = getattr(q, "dtype", None)
    if dtype is not None and dtype.kind == "u" and dtype.itemsize == 1:
        return {"code": bytes(q).hex()}
    if dtype is not None and dtype.kind == "f" and getattr(q, "ndim", 0) == 1:
        return {"embedding": [float(x) for x in q]}
    raise HashIndexError(f"search: a query is text, a float embedding (1-D array), a code "
                         f"(bytes) or Like(id), not a {type(q).__name__}")
