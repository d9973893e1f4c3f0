"""`hashindex serve --workers 2`: two real uvicorn worker processes on one loopback port answer
as one service would (the same hits, text and embedding queries, concurrently), /metrics sums
the workers, a rebuild reaches every worker, and SIGTERM stops them all cleanly."""

from __future__ import annotations

import json
import re
import signal
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from helpers import FAST_TRAIN, serve_index

from hashindex.engine import HashIndex
from indexer.build import BuildConfig, build_index
from indexer.samples import bundled_sample_texts

TEXTS = bundled_sample_texts()[:60]
REQUESTS = 120


def build(folder, texts, overwrite=False):
    docs = folder / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n"
                            for i, t in enumerate(texts)))
    build_index(BuildConfig(input=str(docs), out=str(folder / "idx"), bits=32,
                            store_embeddings=True, overwrite=overwrite, show_progress=False),
                train_config=FAST_TRAIN)


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("workers")
    build(folder, TEXTS)
    processes = []
    log = folder / "serve.log"
    with serve_index(folder / "idx", log, args=["--workers", "2", "--reload-interval", "0.2"],
                     process_out=processes) as url:
        yield url, folder, log, processes[0]


def counted_requests(metrics: str) -> float:
    return sum(float(value) for value in re.findall(
        r'^hashindex_requests_total\{route="/search",status="200"\} (\S+)$', metrics, re.M))


def test_two_workers_answer_as_one_service(workers):
    url, folder, log, _ = workers
    local = HashIndex.open(folder / "idx")
    expected = {row: [h.id for h in local.search(TEXTS[row], k=5).hits] for row in range(20)}
    embedding = local.embedder().embed([TEXTS[5]])[0].tolist()
    before = counted_requests(httpx.get(url + "/metrics").text)

    def ask(i):
        row = i % 20
        body = {"text": TEXTS[row], "k": 5} if i % 3 else {"embedding": embedding, "k": 5}
        answer = httpx.post(url + "/search", json=body, timeout=60)
        return row if i % 3 else 5, i % 3 != 0, answer

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(REQUESTS)))
    for row, by_text, answer in answers:
        assert answer.status_code == 200, answer.text
        ids = [hit["id"] for hit in answer.json()["hits"]]
        if by_text:
            assert ids == expected[row]
        else:
            assert ids[0] == "d5"
    # every worker loaded the index and its model before taking connections
    started = re.findall(r"serving .*: 60 documents, ready in", log.read_text())
    assert len(started) == 2
    metrics = httpx.get(url + "/metrics").text
    assert counted_requests(metrics) - before == REQUESTS  # the two workers' counts summed
    assert "hashindex_index_documents 60.0" in metrics


def test_a_rebuild_reaches_every_worker(workers):
    url, folder, _, _ = workers
    build(folder, TEXTS[:45], overwrite=True)
    # both workers watch the manifest; each answer must come from the new build soon
    seen = 0
    for _ in range(600):
        seen = seen + 1 if httpx.get(url + "/info").json()["documents"] == 45 else 0
        if seen >= 20:  # twenty answers in a row from the new build: both workers swapped
            break
    assert seen >= 20


def test_sigterm_stops_every_worker_and_removes_the_metrics_folder(workers, tmp_path,
                                                                   monkeypatch):
    _, folder, _, _ = workers
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # where the metrics folder goes
    (tmp_path / "tmp").mkdir()
    processes = []
    log = tmp_path / "serve.log"
    with serve_index(folder / "idx", log, args=["--workers", "2"], process_out=processes) as url:
        assert httpx.post(url + "/search", json={"text": TEXTS[1], "k": 1}).status_code == 200
        assert [p.name for p in (tmp_path / "tmp").iterdir()][0].startswith("hashindex-metrics-")
        processes[0].send_signal(signal.SIGTERM)
        assert processes[0].wait(timeout=60) == 0
    assert len(re.findall(r"Finished server process", log.read_text())) == 2
    assert not list((tmp_path / "tmp").iterdir())


def test_workers_stop_when_their_supervisor_is_killed(workers, tmp_path, monkeypatch):
    """A kill -9 of `serve` cannot forward a signal: the workers notice their parent is gone
    and stop themselves, so nothing unsupervised goes on holding the port; the metrics folder
    it left is removed by the next `serve --workers`."""
    import time
    from pathlib import Path

    _, folder, _, _ = workers
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))  # where the metrics folder goes
    processes = []
    with serve_index(folder / "idx", tmp_path / "serve.log", args=["--workers", "2"],
                     process_out=processes) as url:
        supervisor = processes[0]
        children = [int(pid) for pid in Path(
            f"/proc/{supervisor.pid}/task/{supervisor.pid}/children").read_text().split()]
        assert len(children) >= 2
        supervisor.kill()
        supervisor.wait(timeout=10)
        deadline = time.monotonic() + 60
        while any(Path(f"/proc/{pid}").exists() and "Z" not in Path(
                f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] for pid in children):
            assert time.monotonic() < deadline, "a worker outlived its killed supervisor"
            time.sleep(0.2)
        with pytest.raises(httpx.TransportError):
            httpx.get(url + "/health", timeout=2)
    left = list(temporary.iterdir())
    assert [p.name for p in left] == [f"hashindex-metrics-{supervisor.pid}-" +
                                      left[0].name.rsplit("-", 1)[-1]]
    processes = []
    with serve_index(folder / "idx", tmp_path / "again.log", args=["--workers", "2"],
                     process_out=processes):
        now = list(temporary.iterdir())
        assert len(now) == 1 and now[0] != left[0]
        assert now[0].name.startswith(f"hashindex-metrics-{processes[0].pid}-")
