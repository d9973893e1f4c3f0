"""`hashindex serve` as a real uvicorn process on a free loopback port, started and stopped by
the test: endpoints, answers equal to a local query, and bad requests answered with a 4xx JSON
error while the service keeps serving."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from helpers import FAST_TRAIN

from hashindex.engine import HashIndex
from indexer.build import BuildConfig, build_index
from indexer.samples import bundled_sample_texts

TEXTS = bundled_sample_texts()[:60]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    docs = folder / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": f"d{i}", "text": t, "n": i}) + "\n"
                            for i, t in enumerate(TEXTS)))
    build_index(BuildConfig(input=str(docs), out=str(folder / "idx"), bits=32,
                            store_embeddings=True, show_progress=False), train_config=FAST_TRAIN)
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "hashindex.app.cli", "serve",
                                str(folder / "idx"), "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/ready", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            pytest.fail(process.stderr.read())
        time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("the service did not become ready in 120 s")
    yield url, folder / "idx", port
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def test_health_ready_info(service):
    url, _, _ = service
    assert httpx.get(url + "/health").json() == {"status": "alive"}
    assert httpx.get(url + "/ready").status_code == 200
    assert httpx.get(url + "/info").json()["documents"] == 60


def test_search_equals_a_local_query(service):
    url, index_path, _ = service
    local = HashIndex.open(index_path)
    for row in (3, 41):
        answer = httpx.post(url + "/search", json={"text": TEXTS[row], "k": 5}).json()
        assert answer["hits"][0]["id"] == f"d{row}" and answer["hits"][0]["distance"] == 0
        assert answer["hits"][0]["metadata"] == {"n": row}
        expected = local.search(TEXTS[row], k=5)
        assert [h["id"] for h in answer["hits"]] == [h.id for h in expected.hits]
        assert answer["radius"] == expected.radius and answer["milliseconds"] > 0
    code = local.query_code(TEXTS[7])[0]
    by_code = httpx.post(url + "/search", json={"code": bytes(code).hex(), "k": 1}).json()
    assert by_code["hits"][0]["distance"] == 0
    embedding = local.embedder().embed([TEXTS[9]])[0].tolist()
    by_vector = httpx.post(url + "/search", json={"embedding": embedding, "k": 1}).json()
    assert by_vector["hits"][0]["id"] == "d9"


@pytest.mark.parametrize("body, status, fragment", [
    ({"text": "x", "k": 0}, 400, "k=0 is out of range"),
    ({"text": "x", "k": 5000}, 400, "use 1 to 1000"),
    ({"text": "x", "code": "00"}, 400, "exactly one of text, embedding or code"),
    ({}, 400, "exactly one of text, embedding or code"),
    ({"text": "   "}, 400, "query text is empty"),
    ({"embedding": [0.1, 0.2]}, 400, "dimension"),
    ({"code": "zz"}, 400, "is not hex"),
    ({"code": "00"}, 400, "this index's codes have 32"),
    ({"text": "x", "radius": 99}, 400, "radius=99 is out of range"),
    ({"text": "x", "backend": "bogus"}, 400, "bogus"),
    ({"text": "x", "backend": "hnsw", "backend_options": {"ef_search": "many"}}, 400, "many"),
    ({"text": "x", "k": "three"}, 422, "k:"),
])
def test_bad_requests_get_a_4xx_and_the_service_goes_on(service, body, status, fragment):
    url, _, _ = service
    answer = httpx.post(url + "/search", json=body)
    assert answer.status_code == status, answer.text
    assert fragment in answer.json()["error"], answer.json()
    assert httpx.post(url + "/search", json={"text": TEXTS[0], "k": 1}).status_code == 200


def test_malformed_json_is_a_422(service):
    url, _, _ = service
    answer = httpx.post(url + "/search", content=b"{not json",
                        headers={"content-type": "application/json"})
    assert answer.status_code == 422 and "error" in answer.json()


def test_a_port_in_use_is_one_line_exit_2(service):
    _, index_path, port = service
    result = subprocess.run([sys.executable, "-m", "hashindex.app.cli", "serve",
                             str(index_path), "--port", str(port)],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ})
    lines = [line for line in result.stderr.strip().splitlines() if line]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert f"--port {port}" in lines[0]
    result = subprocess.run([sys.executable, "-m", "hashindex.app.cli", "serve",
                             str(index_path), "--port", "99999"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--port 99999 is out of range" in result.stderr


def test_batch_equals_single_queries(service):
    url, _, _ = service
    queries = [{"text": TEXTS[i], "k": 3} for i in (1, 2, 30)]
    batch = httpx.post(url + "/search/batch", json={"queries": queries}).json()["results"]
    singles = [httpx.post(url + "/search", json=q).json() for q in queries]
    assert [[h["id"] for h in r["hits"]] for r in batch] == \
        [[h["id"] for h in r["hits"]] for r in singles]
    bad = httpx.post(url + "/search/batch", json={"queries": [queries[0], {"text": "x", "k": 0}]})
    assert bad.status_code == 400 and bad.json()["error"].startswith("queries[1]: k=0")


def test_documents_by_id(service):
    url, _, _ = service
    answer = httpx.get(url + "/documents/d12").json()
    assert answer == {"id": "d12", "text": TEXTS[12], "metadata": {"n": 12}}
    missing = httpx.get(url + "/documents/nope")
    assert missing.status_code == 404 and "no document with id 'nope'" in missing.json()["error"]
