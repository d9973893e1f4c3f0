"""`hashindex serve` as a real uvicorn process on a free loopback port, started and stopped by
the test: endpoints, answers equal to a local query, and bad requests answered with a 4xx JSON
error while the service keeps serving."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from helpers import FAST_TRAIN, SEGMENT, serve_index

from hashindex.app.serve.process import free_port
from hashindex.engine import HashIndex, Like
from indexer.build import BuildConfig, build_index
from indexer.samples import bundled_sample_texts

TEXTS = bundled_sample_texts()[:60]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    docs = folder / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": f"d{i}", "text": t, "n": i}) + "\n"
                            for i, t in enumerate(TEXTS)))
    build_index(BuildConfig(input=str(docs), out=str(folder / "idx"), bits=32,
                            store_embeddings=True, show_progress=False), train_config=FAST_TRAIN)
    log = folder / "serve.log"
    with serve_index(folder / "idx", log) as url:
        yield url, folder / "idx", int(url.rsplit(":", 1)[1]), log


def test_health_ready_info(service):
    url, _, _, _ = service
    assert httpx.get(url + "/health").json() == {"status": "alive"}
    assert httpx.get(url + "/ready").status_code == 200
    assert httpx.get(url + "/info").json()["documents"] == 60


def test_search_equals_a_local_query(service):
    url, index_path, _, _ = service
    local = HashIndex.open(index_path)
    for row in (3, 41):
        answer = httpx.post(url + "/search", json={"text": TEXTS[row], "k": 5}).json()
        assert answer["hits"][0]["id"] == f"d{row}" and answer["hits"][0]["distance"] == 0
        assert answer["hits"][0]["metadata"] == {"n": row}
        expected = local.search(TEXTS[row], k=5)
        assert [h["id"] for h in answer["hits"]] == [h.id for h in expected.hits]
        assert answer["radius"] == expected.radius and answer["timings"]["total"] > 0
    code = local.query_code(TEXTS[7])[0]
    by_code = httpx.post(url + "/search", json={"code": bytes(code).hex(), "k": 1}).json()
    assert by_code["hits"][0]["distance"] == 0
    embedding = local.embedder().embed([TEXTS[9]])[0].tolist()
    by_vector = httpx.post(url + "/search", json={"embedding": embedding, "k": 1}).json()
    assert by_vector["hits"][0]["id"] == "d9"


@pytest.mark.parametrize("body, status, fragment", [
    ({"text": "x", "k": 0}, 400, "k: 0 is out of range"),
    ({"text": "x", "k": 5000}, 400, "use 1 to 1000"),
    ({"text": "x", "code": "00"}, 400, "exactly one of text, embedding, code or like"),
    ({}, 400, "exactly one of text, embedding, code or like"),
    ({"like": "nope"}, 404, "no document with id 'nope'"),
    ({"text": "x", "filter": {"colour": "red"}}, 400, "no metadata column 'colour'"),
    ({"text": "x", "filter": {"n": "many"}}, 400, "filter.n: 'many' is not a int64"),
    ({"text": "x", "filter": {"n": {"above": 3}}}, 400, "a range takes gt, gte, lt, lte"),
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
    url, _, _, _ = service
    answer = httpx.post(url + "/search", json=body)
    assert answer.status_code == status, answer.text
    assert fragment in answer.json()["error"], answer.json()
    assert httpx.post(url + "/search", json={"text": TEXTS[0], "k": 1}).status_code == 200


def test_malformed_json_is_a_422(service):
    url, _, _, _ = service
    answer = httpx.post(url + "/search", content=b"{not json",
                        headers={"content-type": "application/json"})
    assert answer.status_code == 422 and "error" in answer.json()


def test_a_port_in_use_is_one_line_exit_2(service):
    _, index_path, port, _ = service
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
    url, _, _, _ = service
    queries = [{"text": TEXTS[i], "k": 3} for i in (1, 2, 30)]
    batch = httpx.post(url + "/search/batch", json={"queries": queries}).json()["results"]
    singles = [httpx.post(url + "/search", json=q).json() for q in queries]
    assert [[h["id"] for h in r["hits"]] for r in batch] == \
        [[h["id"] for h in r["hits"]] for r in singles]
    bad = httpx.post(url + "/search/batch", json={"queries": [queries[0], {"text": "x", "k": 0}]})
    assert bad.status_code == 400 and bad.json()["error"].startswith("queries[1]: k: 0")


def test_documents_by_id(service):
    url, _, _, _ = service
    answer = httpx.get(url + "/documents/d12").json()
    assert answer == {"id": "d12", "text": TEXTS[12], "metadata": {"n": 12}}
    missing = httpx.get(url + "/documents/nope")
    assert missing.status_code == 404 and "no document with id 'nope'" in missing.json()["error"]


def test_filter_like_and_timings_over_http(service):
    url, index_path, _, _ = service
    local = HashIndex.open(index_path)
    body = {"text": TEXTS[5], "k": 4, "filter": {"n": {"gte": 10, "lt": 40}}}
    answer = httpx.post(url + "/search", json=body).json()
    expected = local.search(TEXTS[5], k=4, filter=body["filter"])
    assert [h["id"] for h in answer["hits"]] == [h.id for h in expected.hits]
    assert all(10 <= h["metadata"]["n"] < 40 for h in answer["hits"])
    assert answer["filter_passed"] == expected.filter_passed
    assert set(answer["timings"]) == {"embed", "search", "total"}
    like = httpx.post(url + "/search", json={"like": "d7", "k": 3}).json()
    assert "d7" not in [h["id"] for h in like["hits"]]
    assert [h["id"] for h in like["hits"]] == \
        [h.id for h in local.search(Like("d7"), k=3).hits]
    old_name = httpx.post(url + "/search", json={"like_id": "d7", "k": 3}).json()
    assert [h["id"] for h in old_name["hits"]] == [h["id"] for h in like["hits"]]
    assert any("like_id is deprecated" in note for note in old_name["notes"])
    assert not any("deprecated" in note for note in like["notes"])


def test_metrics_count_requests_and_each_request_logs_one_line(service):
    url, _, _, log = service
    before = metric(url, 'hashindex_requests_total{route="/search",status="200"}')
    for i in range(3):
        assert httpx.post(url + "/search", json={"text": TEXTS[i], "k": 2}).status_code == 200
    httpx.post(url + "/search", json={"text": "x", "k": 0})
    text = httpx.get(url + "/metrics").text
    assert metric(url, 'hashindex_requests_total{route="/search",status="200"}') == before + 3
    for name in ("hashindex_request_errors_total", "hashindex_request_seconds_bucket",
                 "hashindex_requests_in_flight", "hashindex_embedding_queue_depth",
                 "hashindex_embedding_batch_texts_count", "hashindex_index_documents 60.0"):
        assert name in text, name
    lines = [line for line in log.read_text().splitlines() if "hashindex.access" in line]
    assert sum('"POST /search" 200' in line for line in lines) >= 3
    assert any('"POST /search" 400' in line for line in lines)


def metric(url: str, name: str) -> float:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_a_body_over_the_limit_is_a_413(service):
    url, _, _, _ = service
    huge = json.dumps({"text": "a" * (5 << 20)}).encode()
    answer = httpx.post(url + "/search", content=huge,
                        headers={"content-type": "application/json"})
    assert answer.status_code == 413 and "over this service's limit" in answer.json()["error"]

    def chunks():  # no Content-Length: counted as it streams
        for start in range(0, len(huge), 1 << 20):
            yield huge[start : start + (1 << 20)]

    streamed = httpx.post(url + "/search", content=chunks(),
                          headers={"content-type": "application/json"})
    assert streamed.status_code == 413, streamed.text
    assert httpx.post(url + "/search", json={"text": TEXTS[0], "k": 1}).status_code == 200


def test_unknown_path_is_a_json_404(service):
    url, _, _, _ = service
    answer = httpx.get(url + "/nowhere")
    assert answer.status_code == 404 and answer.json() == {"error": "Not Found"}


def test_ready_and_search_say_503_until_the_index_is_loaded(service):
    from fastapi.testclient import TestClient

    from hashindex.app.serve.app import create_app

    _, index_path, _, _ = service
    client = TestClient(create_app(str(index_path)))  # no lifespan: nothing loaded yet
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 503
    answer = client.post("/search", json={"text": "x"})
    assert answer.status_code == 503 and "still loading" in answer.json()["error"]


def test_concurrent_texts_share_one_model_call():
    import threading

    from hashindex.app.serve.batching import EmbeddingBatcher

    calls = []

    def slow_embed(texts):
        calls.append(len(texts))
        time.sleep(0.2)
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    batcher = EmbeddingBatcher(slow_embed, window_s=0.002, max_batch=32)
    out: dict = {}
    threads = [threading.Thread(target=lambda i=i: out.update({i: batcher.embed("x" * i)}))
               for i in range(1, 11)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    batcher.close()
    assert sum(calls) == 10 and len(calls) <= 3, calls  # not one model call per text
    assert all(out[i][0] == i for i in range(1, 11))  # each text got its own embedding


def test_query_server_prints_what_a_local_query_prints(service):
    url, index_path, _, _ = service
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for extra in ([TEXTS[3], "-k", "4", "--json"], [TEXTS[8], "-k", "3"],
                  ["--like", "d4", "-k", "3", "--where", "n>=20", "--json"]):
        local = subprocess.run([sys.executable, "-m", "hashindex.app.cli", "query",
                                str(index_path), *extra], capture_output=True, text=True,
                               timeout=300, env=env)
        remote = subprocess.run([sys.executable, "-m", "hashindex.app.cli", "query",
                                 "--server", url, *extra], capture_output=True, text=True,
                                timeout=300, env=env)
        assert local.returncode == 0 and remote.returncode == 0, local.stderr + remote.stderr
        assert remote.stdout == local.stdout
    down = subprocess.run([sys.executable, "-m", "hashindex.app.cli", "query", "--server",
                           f"http://127.0.0.1:{free_port()}", "x"], capture_output=True,
                          text=True, timeout=300)
    assert down.returncode == 2 and "cannot reach the service" in down.stderr
    bad = subprocess.run([sys.executable, "-m", "hashindex.app.cli", "query", "--server", url,
                          "x", "--where", "colour=red"], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and "no metadata column 'colour'" in bad.stderr


def test_sigterm_drains_in_flight_requests(service, tmp_path):
    import threading

    _, index_path, _, _ = service
    processes: list = []
    with serve_index(index_path, tmp_path / "serve.log", process_out=processes) as url:
        queries = [{"text": f"{TEXTS[i % 60]} {i}", "k": 5} for i in range(600)]
        answer: dict = {}
        sender = threading.Thread(target=lambda: answer.update(response=httpx.post(
            url + "/search/batch", json={"queries": queries}, timeout=120)))
        sender.start()
        deadline = time.monotonic() + 30
        while metric(url, "hashindex_requests_in_flight") < 1:
            assert time.monotonic() < deadline, "the batch request never arrived"
            time.sleep(0.01)
        processes[0].send_signal(signal.SIGTERM)
        sender.join(timeout=120)
        assert processes[0].wait(timeout=60) == 0
    response = answer["response"]
    assert response.status_code == 200 and len(response.json()["results"]) == 600


def test_a_republished_index_is_served_without_restart(tmp_path):
    import threading

    def publish(prefix: str):
        docs = tmp_path / f"{prefix}.jsonl"
        docs.write_text("".join(json.dumps({"id": f"{prefix}{i}", "text": t}) + "\n"
                                for i, t in enumerate(TEXTS[:40])))
        build_index(BuildConfig(input=str(docs), out=str(tmp_path / "idx"), bits=32,
                                overwrite=True, show_progress=False), train_config=FAST_TRAIN)

    publish("a")
    with serve_index(tmp_path / "idx", tmp_path / "serve.log",
                     args=("--reload-interval", "0.2")) as url:
        answers: list = []
        stop = threading.Event()

        def client(i):
            with httpx.Client(timeout=60) as http:
                while not stop.is_set():
                    answers.append(http.post(url + "/search",
                                             json={"text": TEXTS[i], "k": 10}))

        clients = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for thread in clients:
            thread.start()
        publish("b")
        deadline = time.monotonic() + 60
        while not any(a.status_code == 200 and a.json()["hits"][0]["id"].startswith("b")
                      for a in list(answers)):
            assert time.monotonic() < deadline, "the new build was never served"
            time.sleep(0.1)
        stop.set()
        for thread in clients:
            thread.join(timeout=60)
        assert httpx.get(url + "/ready").json()["reloads"] >= 1
    assert answers and all(a.status_code == 200 for a in answers)
    for answer in answers:  # each answer from one build: never a mix of the two
        prefixes = {hit["id"][0] for hit in answer.json()["hits"]}
        assert len(prefixes) == 1


def test_an_index_failing_its_checks_is_refused_at_start(service, tmp_path):
    import shutil

    _, index_path, _, _ = service
    copy = tmp_path / "copy"
    shutil.copytree(index_path, copy)
    keys = copy / SEGMENT / "table" / "keys.npy"
    data = bytearray(keys.read_bytes())
    data[-1] ^= 0xFF  # same size: only the full checksum pass sees it
    keys.write_bytes(bytes(data))
    port = str(free_port())
    refused = subprocess.run([sys.executable, "-m", "hashindex.app.cli", "serve", str(copy),
                              "--port", port, "--verify"], capture_output=True, text=True,
                             timeout=120)
    lines = [line for line in refused.stderr.splitlines() if line]
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr
    assert "keys.npy" in lines[0] and "corrupted" in lines[0]
    keys.write_bytes(bytes(data[:-8]))  # truncated: the cheap open checks refuse it too
    refused = subprocess.run([sys.executable, "-m", "hashindex.app.cli", "serve", str(copy),
                              "--port", port], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "keys.npy" in refused.stderr


def test_a_read_only_service_refuses_writes(service):
    url, _, _, _ = service
    answer = httpx.post(url + "/documents", json={"documents": [{"id": "x", "text": "y"}]})
    assert answer.status_code == 403 and "--allow-writes" in answer.json()["error"]
    assert httpx.delete(url + "/documents/d1").status_code == 403


def test_text_adds_over_http_and_changes_by_the_cli_are_served(service, tmp_path):
    import shutil

    _, index_path, _, _ = service
    copy = tmp_path / "copy"
    shutil.copytree(index_path, copy)
    text = "A brand new paragraph about parsing flags on the command line of a shell."
    with serve_index(copy, tmp_path / "serve.log",
                     args=("--allow-writes", "--reload-interval", "0.2")) as url:
        added = httpx.post(url + "/documents", timeout=60, json={"documents": [
            {"id": "new-1", "text": text, "metadata": {"n": 1000}}]})
        assert added.status_code == 200 and added.json()["added"] == 1, added.text
        found = httpx.post(url + "/search", json={"text": text, "k": 1}).json()["hits"][0]
        assert (found["id"], found["distance"], found["metadata"]) == ("new-1", 0, {"n": 1000})
        wrong = httpx.post(url + "/documents", json={"documents": [
            {"id": "new-2", "text": text, "embedding": [0.0] * 384}]})
        assert wrong.status_code == 400 and "embeds text with its own model" in wrong.text
        deleted = subprocess.run([sys.executable, "-m", "hashindex.app.cli", "delete",
                                  str(copy), "d3"], capture_output=True, text=True, timeout=60)
        assert deleted.returncode == 0, deleted.stderr
        deadline = time.monotonic() + 30  # the watcher serves the CLI's commit
        while httpx.get(url + "/documents/d3").status_code != 404:
            assert time.monotonic() < deadline, "the CLI's delete was never served"
            time.sleep(0.1)
        assert httpx.get(url + "/ready").json()["documents"] == 60


def test_a_sequence_variant_index_is_served_by_text(tmp_path):
    """The service's batched texts keep their tokens for a sequence variant's codes: a
    document's own text finds it at distance 0 over HTTP, as in the library; an add over HTTP
    is encoded from its tokens too."""
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n"
                            for i, t in enumerate(TEXTS[:40])))
    build_index(BuildConfig(input=str(docs), out=str(tmp_path / "idx"), bits=32,
                            variant="convolutional", show_progress=False),
                train_config=FAST_TRAIN)
    local = HashIndex.open(tmp_path / "idx")
    with serve_index(tmp_path / "idx", tmp_path / "serve.log", args=["--allow-writes"]) as url:
        for row in (2, 17):
            hit = httpx.post(url + "/search", json={"text": TEXTS[row], "k": 1}).json()
            expected = local.search(TEXTS[row], k=1).hits[0]
            assert (hit["hits"][0]["id"], hit["hits"][0]["distance"]) == (expected.id, 0)
        batch = httpx.post(url + "/search/batch", json={"queries": [{"text": TEXTS[5]}]})
        assert batch.json()["results"][0]["hits"][0]["distance"] == 0
        added = httpx.post(url + "/documents", timeout=60, json={"documents": [
            {"id": "new", "text": TEXTS[50]}]})
        assert added.status_code == 200, added.text
        hit = httpx.post(url + "/search", json={"text": TEXTS[50], "k": 1}).json()["hits"][0]
        assert (hit["id"], hit["distance"]) == ("new", 0)
        refused = httpx.post(url + "/search", json={"embedding": [0.1] * 384, "k": 1})
        assert refused.status_code == 400 and "query it with text or a code" in refused.text
