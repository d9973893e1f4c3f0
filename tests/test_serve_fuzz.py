"""A property-based fuzz of every endpoint of a real `hashindex serve --allow-writes` (uvicorn
on a loopback port, started and stopped here) over a throwaway copy of a small text index:
random and almost-valid JSON bodies, wrong types, huge and non-finite numbers, unicode with
lone surrogates, invalid UTF-8, bad content types, methods and paths, and raw bytes that are
not HTTP. Whatever arrives: no 5xx, no request outlives the read timeout plus the time to
answer it, and the server's resident memory after the fuzz is at most 1.5x its size after a
warm-up of valid requests to every endpoint."""

from __future__ import annotations

import json
import shutil
import socket
from collections import Counter
from urllib.parse import quote

import httpx
import pytest
from helpers import FAST_TRAIN, serve_index
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.build import BuildConfig, build_index
from indexer.samples import bundled_sample_texts

TEXTS = bundled_sample_texts()[:60]
BITS = 32
READ_TIMEOUT_S = 1  # short: unfinished raw requests wait it out
ANSWER_S = 60  # a request with no answer after this (read timeout and work included) hangs
EXAMPLES = 800  # requests over HTTP; the raw-bytes property sends a fifth as many
RSS_GROWTH = 1.5


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(url, server pid, its log): the service on a copy of a 60-document text index."""
    folder = tmp_path_factory.mktemp("fuzz")
    docs = folder / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": f"d{i}", "text": t, "n": i}) + "\n"
                            for i, t in enumerate(TEXTS)))
    build_index(BuildConfig(input=str(docs), out=str(folder / "built"), bits=BITS,
                            store_embeddings=True, show_progress=False), train_config=FAST_TRAIN)
    shutil.copytree(folder / "built", folder / "idx")  # the fuzz writes to this copy only
    processes: list = []
    with serve_index(folder / "idx", folder / "serve.log", process_out=processes,
                     args=["--allow-writes", "--read-timeout", str(READ_TIMEOUT_S)]) as url:
        yield url, processes[0].pid, folder / "serve.log"


def resident_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


# Hostile values: every JSON type, integers beyond int64, numbers beyond float64's finite range,
# NaN, numeric strings, text with lone surrogates, NUL and non-BMP characters.
specials = st.sampled_from(["\ud800", "\udfff", "\x00", "\U0001f600", "\u202e", "\ufeff", " ",
                           "%", "/", ".."])
any_text = st.one_of(st.text(st.characters(blacklist_categories=()), max_size=40),
                     st.lists(st.one_of(specials, st.text(max_size=4)), max_size=6).map("".join))
numbers = st.one_of(st.integers(), st.integers(min_value=-(1 << 80), max_value=1 << 80),
                    st.floats(allow_nan=True, allow_infinity=True))
scalars = st.one_of(st.none(), st.booleans(), numbers, any_text)
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(any_text, inner, max_size=4)), max_leaves=12)
hostile = st.one_of(
    st.sampled_from([2 ** 63, -(2 ** 63) - 1, 2 ** 70, 10 ** 400, 2 ** 63 - 1, -(2 ** 63), 2 ** 31,
                     0, -1]),
    st.sampled_from([1e308, -0.0, 5e-324, 1.5, float("nan"), float("inf"), float("-inf")]),
    st.sampled_from([True, False, None, "", "10", "\ud800", "\x00", [], {}, [1], {"gte": 1}]),
    json_values)

# Valid bodies for the 60-document index: the fuzz makes one part of each hostile (mutated).
TEXT_QUERIES = st.one_of(st.sampled_from(TEXTS), st.sampled_from(TEXTS).map(lambda t: t[:30]))
codes = st.binary(min_size=BITS // 8, max_size=BITS // 8).map(bytes.hex)
ids = st.one_of(st.sampled_from([f"d{i}" for i in range(60)]),
                st.sampled_from([f"fz-{i}" for i in range(4)]))
embeddings = st.lists(st.floats(-1, 1, width=32), min_size=384, max_size=384)
filters = st.dictionaries(st.sampled_from(["n", "id"]), st.one_of(
    st.integers(0, 70), st.lists(st.integers(0, 70), min_size=1, max_size=3),
    st.dictionaries(st.sampled_from(["gt", "gte", "lt", "lte"]), st.integers(0, 70),
                    min_size=1, max_size=2)), min_size=1, max_size=2)
knobs = st.fixed_dictionaries({}, optional={
    "ef_search": st.integers(1, 500), "nprobe": st.integers(1, 64),
    "walk": st.sampled_from(["auto", "codes", "vectors"])})
search_options = {
    "k": st.integers(1, 100), "radius": st.integers(0, BITS),
    "backend": st.sampled_from(["table", "flat", "hash", "multihash", "ivf", "hnsw", "graph"]),
    "backend_options": knobs, "rerank": st.booleans(), "rerank_candidates": st.integers(1, 500),
    "filter": filters,
}
query_fields = {"text": TEXT_QUERIES, "code": codes, "embedding": embeddings, "like": ids}
valid_searches = st.one_of(*(st.fixed_dictionaries({name: value}, optional=search_options)
                             for name, value in query_fields.items()))
valid_bodies = {
    "/search": valid_searches,
    "/search/batch": st.fixed_dictionaries({"queries": st.lists(valid_searches, min_size=1,
                                                                max_size=4)}),
    "/documents": st.fixed_dictionaries({"documents": st.lists(st.fixed_dictionaries({
        "id": ids, "text": TEXT_QUERIES, "metadata": st.fixed_dictionaries({}, optional={
            "n": st.integers(0, 99)})}), min_size=1, max_size=3)},
        optional={"upsert": st.booleans()}),
    "/documents/delete": st.fixed_dictionaries({"ids": st.lists(ids, max_size=3)},
                                               optional={"strict": st.booleans()}),
}


def places(value, path=()):
    """Every place in a JSON value: the paths to its members, nested ones included."""
    found = [path]
    items = value.items() if isinstance(value, dict) else \
        enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found += places(item, (*path, key))
    return found


def value_at(value, path):
    for key in path:
        value = value[key]
    return value


def replaced(value, path, new):
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = replaced(value[path[0]], path[1:], new)
    return copy


@st.composite
def mutated(draw, valid):
    """A valid body with one place made hostile (a value replaced, a field added or left out),
    or left valid one time in five: the request then reaches the code behind the schema (the
    engine, the filter, the writer) with just that one thing wrong."""
    body = draw(valid)
    how = draw(st.sampled_from(["replace"] * 6 + ["add", "drop", "valid"]))
    # deepest first (hypothesis leans to a list's start): the root is replaced least often,
    # a whole non-object body being the "json" and "bytes" kinds' part
    path = draw(st.sampled_from(sorted(places(body), key=len, reverse=True)))
    if how == "replace":
        new = draw(hostile)
        return replaced(body, path, new)
    if how == "add":
        containers = [p for p in places(body) if isinstance(value_at(body, p), dict)]
        where = draw(st.sampled_from(containers))
        added = dict(value_at(body, where), **{draw(any_text): draw(json_values)})
        return replaced(body, where, added)
    if how == "drop" and path:
        parent = value_at(body, path[:-1])
        if isinstance(parent, dict):
            return replaced(body, path[:-1], {k: v for k, v in parent.items() if k != path[-1]})
    return body


bodies = {path: mutated(valid) for path, valid in valid_bodies.items()}


def url_quoted(text: str) -> str:
    """Percent-encoded as a client must (lone surrogates as their invalid UTF-8 bytes); `/`
    and `%` kept, so paths climb and escapes arrive half-formed."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="/%")


pages = st.sampled_from(["/", "/health", "/ready", "/info", "/metrics", "/docs",
                        "/openapi.json", "/static/app.js", "/static/style.css",
                        "/static/index.html", "/static/", "/static/../app.py",
                        "/static/%2e%2e/app.py", "/documents/", "/nowhere", "//"])
stray_paths = st.one_of(pages, st.sampled_from(list(bodies)),
                        any_text.map(lambda p: "/" + url_quoted(p)),
                        any_text.map(lambda p: "/static/" + url_quoted(p)))
document_paths = st.one_of(ids, any_text).map(lambda i: "/documents/" + url_quoted(i))
methods = st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"])
content_types = st.sampled_from([None, "application/json", "text/plain",
                                 "multipart/form-data; boundary=x", "application/json; "
                                 "charset=latin-1", "application/x-www-form-urlencoded", "\x7f"])


def encoded(value, how: str) -> bytes:
    """A JSON value as bytes: escaped (lone surrogates as \\ud800, NaN as a bare NaN), raw
    UTF-8 with the surrogates' bytes left in (invalid UTF-8), or Latin-1."""
    if how == "escaped":
        return json.dumps(value).encode()
    text = json.dumps(value, ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass") if how == "raw" else \
        text.encode("latin-1", "replace")


@st.composite
def requests(draw):
    """(method, path, content type, body): most often an endpoint's almost-valid body, then a
    page, a document by id (GET or DELETE), or any method to any path with any body."""
    target = draw(st.sampled_from(["body"] * 6 + ["page", "document", "document", "stray"]))
    if target == "body":
        method, path = "POST", draw(st.sampled_from(list(bodies)))
    elif target == "page":
        method, path = draw(st.sampled_from(["GET", "GET", "HEAD"])), draw(pages)
    elif target == "document":
        method, path = draw(st.sampled_from(["GET", "DELETE"])), draw(document_paths)
    else:
        method, path = draw(methods), draw(stray_paths)
    kind = draw(st.sampled_from(["schema", "schema", "schema", "json", "bytes", "none"]))
    if kind == "schema":
        body = encoded(draw(bodies.get(path, json_values)),
                       draw(st.sampled_from(["escaped", "escaped", "raw", "latin-1"])))
    elif kind == "json":
        body = encoded(draw(json_values), "escaped")
    elif kind == "bytes":
        body = draw(st.binary(max_size=300))
    else:
        body = b""
    return method, path, draw(content_types), body


def warm_up(http: httpx.Client, url: str) -> None:
    """Valid requests to every endpoint, enough for caches, pools and the allocator to
    settle; writes stay on a few ids, so the index keeps its size."""
    for round_ in range(6):
        for i in range(0, 60, 6):
            text = TEXTS[(i + round_) % 60]
            assert http.post(url + "/search", json={"text": text, "k": 10}).status_code == 200
            http.post(url + "/search", json={"like": f"d{i}", "k": 5, "filter": {
                "n": {"gte": 5}}})
            http.post(url + "/search", json={"code": f"{i:08x}", "k": 20, "backend": "flat"})
        http.post(url + "/search/batch", json={"queries": [{"text": t, "k": 20}
                                                           for t in TEXTS[:30]]})
        for path in ("/", "/health", "/ready", "/info", "/metrics", "/static/app.js",
                     "/static/style.css", "/documents/d3", "/openapi.json"):
            assert http.get(url + path).status_code == 200, path
        added = http.post(url + "/documents", json={"documents": [
            {"id": "fz-0", "text": TEXTS[round_], "metadata": {"n": round_}}], "upsert": True})
        assert added.status_code == 200, added.text
        assert http.delete(url + "/documents/fz-0").status_code == 200


def raw_exchange(url: str, payload: bytes) -> bytes:
    """Send bytes that may not be HTTP, then wait (sending nothing more: an unfinished
    request must meet the read timeout) until the server's first answer is complete or it
    closes; a socket still open and unanswered after ANSWER_S is a hang."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=ANSWER_S) as connection:
        try:
            connection.sendall(payload)
        except OSError:
            return b""
        answer = b""
        try:
            while not complete(answer, payload.startswith(b"HEAD ")) and (
                    chunk := connection.recv(65536)):
                answer += chunk
        except TimeoutError:
            raise AssertionError(f"no answer to {payload[:80]!r} in {ANSWER_S} s") from None
        except ConnectionResetError:
            pass
        return answer


def complete(answer: bytes, head_only: bool = False) -> bool:
    """Whether bytes hold a whole HTTP answer with a Content-Length (ours all have one)."""
    head, found, body = answer.partition(b"\r\n\r\n")
    if not found or head_only:
        return bool(found)
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


raw_requests = st.one_of(
    st.binary(max_size=200),
    st.tuples(methods, any_text, st.binary(max_size=60)).map(
        lambda r: f"{r[0]} /{r[1]} HTTP/1.1\r\n".encode("utf-8", "surrogatepass") + r[2]),
    st.tuples(st.sampled_from([b"Content-Length: 10", b"Content-Length: -1",
                               b"Content-Length: 99999999999999999999", b"Content-Length: x",
                               b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip",
                               b"Expect: 100-continue\r\nContent-Length: 5", b"Host:",
                               b"\xff\xfe: \x00"]), st.binary(max_size=40)).map(
        lambda r: b"POST /search HTTP/1.1\r\nHost: t\r\n" + r[0] + b"\r\n\r\n" + r[1]),
)


def test_no_request_gets_a_5xx_or_hangs_and_memory_stays_bounded(served):
    url, pid, log = served
    statuses: Counter = Counter()
    with httpx.Client(timeout=ANSWER_S) as http:
        warm_up(http, url)
        warm_kb = resident_kb(pid)

        @settings(max_examples=EXAMPLES, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(requests())
        def over_http(request):
            method, path, content_type, body = request
            headers = {"content-type": content_type} if content_type else {}
            try:
                answer = http.request(method, url + path, content=body, headers=headers)
            except httpx.TimeoutException:
                raise AssertionError(f"{method} {path} hung past {ANSWER_S} s") from None
            statuses[answer.status_code] += 1
            assert answer.status_code < 500, (method, path, body[:300], answer.text[:300])
            if answer.status_code >= 400 and method != "HEAD":
                assert "error" in answer.json(), answer.text[:300]

        @settings(max_examples=EXAMPLES // 5, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(raw_requests)
        def over_a_socket(payload):
            answer = raw_exchange(url, payload)
            statuses["raw " + (answer.split(b" ", 2)[1].decode() if answer else "closed")] += 1
            if answer:
                status = int(answer.split(b" ", 2)[1])
                assert status < 500, (payload, answer[:300])
                if status >= 400:
                    assert "error" in json.loads(answer.partition(b"\r\n\r\n")[2]), answer

        over_http()
        over_a_socket()
        fuzzed_kb = resident_kb(pid)
        assert http.get(url + "/ready").status_code == 200  # still serving
    seen = dict(sorted(statuses.items(), key=str))
    print(f"\nfuzz: {sum(statuses.values())} requests, statuses {seen}; "
          f"server RSS {warm_kb / 1024:.0f} MB after warm-up, {fuzzed_kb / 1024:.0f} MB after "
          f"the fuzz ({fuzzed_kb / warm_kb:.2f}x)")
    assert "Traceback" not in log.read_text()
    assert fuzzed_kb <= RSS_GROWTH * warm_kb, (warm_kb, fuzzed_kb)
