"""The service's HTTP contract (#31): the OpenAPI schema at /openapi.json says what each endpoint
answers and every error status it sends, and the service sends nothing else.

Real `hashindex serve` processes on loopback over a small index of precomputed embeddings: one
read-only, one with --allow-writes (on a copy). Each 2xx answer is checked against the model
its schema names, and each error is provoked for real and checked against the documented
statuses and their {"error"} body; a status documented but never provoked must be listed in
UNPROVOKED with the reason. Unknown fields and loose JSON types are a 422 naming the field. The
interactive docs at /docs load only the service's own files, and render in Chromium with every
other host refused."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket

import httpx
import pytest
from helpers import build, serve_index, vector_docs, write_input

from hashindex.app.serve import responses as models
from hashindex.app.serve.app import ServeSettings, create_app
from hashindex.engine import HashIndex
from hashindex.segments.writer import IndexWriter

DIM = 16
VECTOR = [0.25] * DIM
LIMIT = 64 << 10  # serve --max-body-bytes: a 413 needs no megabytes
OVER = b'{"embedding": [' + b"0.1, " * (LIMIT // 5) + b'0.1]}'
STALL = object()  # send the headers and a body shorter than its Content-Length, then wait
ARGS = ("--max-body-bytes", str(LIMIT), "--read-timeout", "1", "--reload-interval", "0.2")
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    """{"read_only": url, "writable": url, "index": the writable one's folder}."""
    folder = tmp_path_factory.mktemp("contract")
    source = write_input(vector_docs(40, "a", seed=3, dim=DIM), folder / "docs", "parquet")
    build(source, folder / "idx", embedding_column="vec", bits=32, store_embeddings=True)
    shutil.copytree(folder / "idx", folder / "rw")
    with serve_index(folder / "idx", folder / "ro.log", args=ARGS) as read_only, \
            serve_index(folder / "rw", folder / "rw.log",
                        args=(*ARGS, "--allow-writes")) as writable:
        yield {"read_only": read_only, "writable": writable, "index": folder / "rw"}


@pytest.fixture(scope="module")
def schema(services):
    answer = httpx.get(services["read_only"] + "/openapi.json")
    assert answer.status_code == 200
    return answer.json()


@pytest.fixture(scope="module")
def loading(services):
    """The app before its index is loaded (no lifespan ran): every endpoint's 503."""
    from fastapi.testclient import TestClient

    app = create_app(str(services["index"]), ServeSettings(allow_writes=True))
    return TestClient(app, raise_server_exceptions=False)


def template_of(schema: dict, method: str, path: str) -> str:
    """The schema's path for a request path (/documents/x is /documents/{doc_id}, whose id
    may hold slashes; /documents/delete is its own path)."""
    method = method.lower()
    if method in schema["paths"].get(path, {}):
        return path
    for template, operations in schema["paths"].items():
        prefix = template.split("{")[0]
        if "{" in template and method in operations and path.startswith(prefix) \
                and len(path) > len(prefix):
            return template
    raise AssertionError(f"{method} {path} is not in the OpenAPI schema")


def operation(schema: dict, method: str, path: str) -> dict:
    return schema["paths"][template_of(schema, method, path)][method.lower()]


def documented_model(schema: dict, method: str, path: str, status: int):
    """The response model the schema names for a status of an operation."""
    response = operation(schema, method, path)["responses"].get(str(status))
    assert response is not None, f"{method} {path} does not document {status}"
    reference = response["content"]["application/json"]["schema"]["$ref"]
    return getattr(models, reference.rsplit("/", 1)[1])


def stalled(url: str, method: str, path: str) -> tuple[int, bytes]:
    """A request whose body stops arriving: the service's read timeout answers."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\ncontent-type: "
                           "application/json\r\ncontent-length: 100\r\n\r\n{".encode())
        data = b""
        while chunk := connection.recv(1 << 16):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def send(services, loading, where: str, method: str, path: str, body) -> tuple[int, bytes]:
    if where == "loading":
        answer = loading.request(method, path, json=body)
        return answer.status_code, answer.content
    url = services["writable" if where == "busy" else where]
    if body is STALL:
        return stalled(url, method, path)
    holding = IndexWriter(services["index"]) if where == "busy" else contextlib.nullcontext()
    with holding:
        content = body if isinstance(body, bytes) else None
        answer = httpx.request(method, url + path, timeout=30, content=content,
                               json=None if content is not None else body,
                               headers={"content-type": "application/json"})
    return answer.status_code, answer.content


ADD = {"documents": [{"id": "busy-1", "embedding": VECTOR}]}
# (which service, method, path, body, the status it must get); "busy": the writable service
# while the test holds the index's writer lock; "loading": the app before its index loaded
CASES = [
    ("read_only", "POST", "/search", {"embedding": VECTOR, "k": 0}, 400),
    ("read_only", "POST", "/search", {"text": "no text model here"}, 400),
    ("read_only", "POST", "/search", {"like": "ghost"}, 404),
    ("read_only", "POST", "/search", STALL, 408),
    ("read_only", "POST", "/search", OVER, 413),
    ("read_only", "POST", "/search", {"embedding": VECTOR, "kk": 3}, 422),
    ("read_only", "POST", "/search", b"{not json", 422),
    ("loading", "POST", "/search", {"embedding": VECTOR}, 503),
    ("read_only", "POST", "/search/batch", {"queries": [{"embedding": VECTOR, "k": 0}]}, 400),
    ("read_only", "POST", "/search/batch", {"queries": [{"like": "ghost"}]}, 404),
    ("read_only", "POST", "/search/batch", STALL, 408),
    ("read_only", "POST", "/search/batch", OVER, 413),
    ("read_only", "POST", "/search/batch", {"queries": [{"text": "x", "k": True}]}, 422),
    ("loading", "POST", "/search/batch", {"queries": [{"embedding": VECTOR}]}, 503),
    ("loading", "GET", "/info", None, 503),
    ("loading", "GET", "/ready", None, 503),
    ("read_only", "GET", "/documents/ghost", None, 404),
    ("loading", "GET", "/documents/a-1", None, 503),
    ("writable", "POST", "/documents", {"documents": []}, 400),
    ("read_only", "POST", "/documents", ADD, 403),
    # refused before its documents are looked at (a blank text would be a 400 when writable)
    ("read_only", "POST", "/documents", {"documents": [{"id": "n", "text": " "}]}, 403),
    ("writable", "POST", "/documents", STALL, 408),
    ("busy", "POST", "/documents", ADD, 409),
    ("writable", "POST", "/documents", OVER, 413),
    ("writable", "POST", "/documents", {"documents": [], "kk": 3}, 422),
    ("loading", "POST", "/documents", ADD, 503),
    ("writable", "POST", "/documents/delete", {"ids": [" "]}, 400),
    ("read_only", "POST", "/documents/delete", {"ids": ["a-1"]}, 403),
    ("writable", "POST", "/documents/delete", {"ids": ["ghost"], "strict": True}, 404),
    ("writable", "POST", "/documents/delete", STALL, 408),
    ("busy", "POST", "/documents/delete", {"ids": ["a-1"]}, 409),
    ("writable", "POST", "/documents/delete", OVER, 413),
    ("writable", "POST", "/documents/delete", {"ids": ["a-1"], "strict": 1}, 422),
    ("loading", "POST", "/documents/delete", {"ids": ["a-1"]}, 503),
    ("read_only", "DELETE", "/documents/a-1", None, 403),
    ("writable", "DELETE", "/documents/ghost", None, 404),
    ("busy", "DELETE", "/documents/a-1", None, 409),
    ("loading", "DELETE", "/documents/a-1", None, 503),
]
# documented, not provoked here, and why: on every endpoint, and on one
UNPROVOKED_ANYWHERE = {500: "an internal error (a bug); documented for its body"}
UNPROVOKED = {("delete", "/documents/{doc_id}"): {
    400: "the writer refusing the index (a format-3 index opens read-only until `hashindex "
         "upgrade`)"}}


@pytest.mark.parametrize("where, method, path, body, status", CASES,
                         ids=[f"{c[1]} {c[2]} {c[4]} ({c[0]})" for c in CASES])
def test_each_error_is_sent_as_documented(services, loading, schema, where, method, path,
                                          body, status):
    got, content = send(services, loading, where, method, path, body)
    assert got == status, content
    model = documented_model(schema, method, path, status)
    answer = model.model_validate_json(content, strict=True)  # {"error": ...} and nothing else
    if isinstance(answer, models.NotReadyResponse):  # /ready: why it failed, none while loading
        assert answer.status == "loading" and answer.error is None, content
    else:
        assert answer.error, content


def test_every_documented_error_status_is_provoked(schema):
    """The other direction: no status in the schema that the service never sends."""
    provoked: dict = {}
    for _, method, path, _, status in CASES:
        key = (method.lower(), template_of(schema, method, path))
        provoked.setdefault(key, set()).add(status)
    for template, operations in schema["paths"].items():
        for method, op in operations.items():
            documented = {int(s) for s in op["responses"] if int(s) >= 400}
            expected = (provoked.get((method, template), set()) | set(UNPROVOKED_ANYWHERE)
                        | set(UNPROVOKED.get((method, template), {})))
            assert documented == expected, (method, template)


def test_no_fastapi_validation_error_in_the_schema(schema):
    """The service answers {"error": ...}, never FastAPI's {"detail": [...]}."""
    text = json.dumps(schema)
    assert "HTTPValidationError" not in text and '"detail"' not in text
    for operations in schema["paths"].values():
        for op in operations.values():
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    reference = response["content"]["application/json"]["schema"]["$ref"]
                    body = schema["components"]["schemas"][reference.rsplit("/", 1)[1]]
                    assert "error" in body["required"], (op["summary"], status)


def test_every_reference_resolves_and_bodies_say_they_take_no_other_field(schema):
    """A $ref the document cannot reach (a body's own `#/$defs/...`) blanks ReDoc."""
    references = re.findall(r'"\$ref": "([^"]*)"', json.dumps(schema))
    components = schema["components"]["schemas"]
    assert references and all(r.startswith("#/components/schemas/") for r in references)
    assert all(r.rsplit("/", 1)[1] in components for r in references), references
    for template, operations in schema["paths"].items():
        for op in operations.values():
            if "requestBody" in op:
                name = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                body = components[name.rsplit("/", 1)[1]]
                assert body["additionalProperties"] is False, template
    assert components["NewDocument"]["additionalProperties"] is False
    assert components["SearchBody"]["properties"]["like_id"]["deprecated"] is True


def test_every_2xx_has_a_schema_and_each_answer_fits_it(services, schema):
    url, index_path = services["writable"], services["index"]
    for operations in schema["paths"].values():
        for op in operations.values():
            for status, response in op["responses"].items():
                if status.startswith("2"):
                    assert response["content"]["application/json"]["schema"], op["summary"]
    added = {"documents": [{"id": "fit-1", "text": "a new one", "embedding": VECTOR,
                            "metadata": {"year": 2003}},
                           {"id": "fit-2", "embedding": VECTOR[::-1]}]}
    requests = [
        ("GET", "/health", None), ("GET", "/ready", None), ("GET", "/info", None),
        ("POST", "/search", {"embedding": VECTOR, "k": 3}),
        ("POST", "/search", {"like": "a-2", "k": 2, "filter": {"year": {"gte": 2001}}}),
        ("POST", "/search/batch", {"queries": [{"embedding": VECTOR}, {"like": "a-3"}]}),
        ("POST", "/documents", added),
        ("GET", "/documents/fit-1", None),
        ("POST", "/documents/delete", {"ids": ["fit-2", "ghost"]}),
        ("DELETE", "/documents/fit-1", None),
    ]
    answered = set()
    for method, path, body in requests:
        answer = httpx.request(method, url + path, json=body, timeout=30)
        assert answer.status_code == 200, (path, answer.text)
        model = documented_model(schema, method, path, 200)
        model.model_validate_json(answer.content, strict=True)
        answered.add((method.lower(), template_of(schema, method, path)))
    every = {(method, template) for template, operations in schema["paths"].items()
             for method in operations}
    assert answered == every  # each endpoint in the schema was answered and checked
    assert len(HashIndex.open(index_path)) == 40


UNKNOWN_OR_LOOSE = [  # (path, body, the field the error names first)
    ("/search", {"text": "x", "kk": 3}, "kk"),
    ("/search", {"text": "x", "k": True}, "k"),
    ("/search", {"text": "x", "k": "10"}, "k"),
    ("/search", {"text": "x", "k": 10.0}, "k"),
    ("/search", {"text": "x", "rerank": "yes"}, "rerank"),
    ("/search", {"text": "x", "target_recall": "0.9"}, "target_recall"),
    ("/search", {"text": "x", "filter": {"year": 2**70}}, "filter.year"),
    ("/search/batch", {"queries": [{"text": "x", "kk": 3}]}, "queries.0.kk"),
    ("/search/batch", {"queries": [{"text": "x", "k": True}]}, "queries.0.k"),
    ("/search/batch", {"queries": [], "kk": 3}, "kk"),
    ("/documents", {"documents": [], "kk": 3}, "kk"),
    ("/documents", {"documents": [{"id": "n", "embedding": VECTOR, "kk": 3}]}, "documents.0.kk"),
    ("/documents", {"documents": [{"id": "n", "embedding": VECTOR}], "upsert": 1}, "upsert"),
    ("/documents", {"documents": [{"id": 7, "embedding": VECTOR}]}, "documents.0.id"),
    ("/documents/delete", {"ids": ["a-1"], "kk": 3}, "kk"),
    ("/documents/delete", {"ids": ["a-1"], "strict": 1}, "strict"),
    ("/documents/delete", {"ids": [1]}, "ids.0"),
]


@pytest.mark.parametrize("path, body, field", UNKNOWN_OR_LOOSE,
                         ids=[f"{p} {json.dumps(b)[:50]}" for p, b, _ in UNKNOWN_OR_LOOSE])
def test_unknown_fields_and_loose_types_are_a_422_naming_the_field(services, path, body,
                                                                   field):
    generation = HashIndex.open(services["index"]).manifest.generation
    answer = httpx.post(services["writable"] + path, json=body, timeout=30)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"].startswith(f"{field}: "), answer.json()
    assert HashIndex.open(services["index"]).manifest.generation == generation  # nothing done


def test_the_docs_load_only_the_services_own_files(services):
    url = services["read_only"]
    html = httpx.get(url + "/docs").text
    assert "://" not in html and "//" not in re.sub(r"<!--.*?-->", "", html, flags=re.S)
    # every URL the page loads: src, href, and Swagger UI's `url:` (the schema)
    found = [a or b for a, b in re.findall(r'(?:src|href)="([^"]*)"|url: \'([^\']*)\'', html)]
    assert "/openapi.json" in found and any(f.endswith(".js") for f in found), found
    for path in found:
        assert path.startswith("/"), path
        answer = httpx.get(url + path)
        assert answer.status_code == 200 and answer.content, path


def test_the_docs_render_with_no_network(services, browser):
    """Every request to a host other than the service is refused, as offline: the page still
    lists the endpoints, and asked for nothing elsewhere."""
    url = services["read_only"]
    context = browser.new_context()
    elsewhere, problems = [], []

    def only_the_service(route):
        if route.request.url.startswith(url + "/"):
            return route.continue_()
        elsewhere.append(route.request.url)
        return route.abort()

    context.route("**/*", only_the_service)
    tab = context.new_page()
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.goto(url + "/docs", timeout=TIMEOUT_MS)
    tab.wait_for_function("document.body.innerText.includes('/search/batch')",
                          timeout=TIMEOUT_MS)
    assert tab.locator(".opblock-summary-path").count() == 9  # every endpoint, none dropped
    tab.locator("#operations-default-search_batch_search_batch_post .opblock-summary").click()
    tab.wait_for_function("document.body.innerText.includes('queries')", timeout=TIMEOUT_MS)
    text = tab.inner_text("body")
    context.close()
    assert not elsewhere and not problems, (elsewhere, problems)
    assert "/documents/delete" in text and "Search Batch" in text
    assert "Resolver error" not in text and "Could not resolve reference" not in text
