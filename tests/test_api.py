"""The Python front door (`import hashindex`): every kind of source builds the index the file
path builds, searches in every query form, results as lists, Arrow, pandas and FAISS-style
arrays, changes through the Index, and the HTTP Client answering as Index.search does."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from helpers import FAST_TRAIN, FakeEmbedder, corpus, serve_index, vector_docs, write_input

import hashindex
from hashindex.errors import HashIndexError

ROOT = Path(__file__).resolve().parent.parent
DOCS = corpus(60)


def build(source, out, **options):
    options.setdefault("embedder", FakeEmbedder())
    return hashindex.build(source, out, bits=16, train=FAST_TRAIN, **options)


def codes_and_hits(index) -> tuple[np.ndarray, list]:
    queries = [DOCS[3]["text"], "gamma ray orbit", DOCS[40]["text"]]
    return (index.engine.all_codes(),
            [[(h.id, round(h.score, 5)) for h in index.search(q, k=5)] for q in queries])


def test_the_front_door_names_what_it_has():
    assert {"build", "open", "Index", "Client", "Like", "Results", "BatchResults",
            "HashIndexError"} <= set(dir(hashindex))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        hashindex.nope  # noqa: B018


@pytest.fixture(scope="module")
def from_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api")
    path = write_input(DOCS, folder / "docs", "jsonl")
    return build(path, folder / "idx", id_column="doc")


SOURCES = {
    "list of dicts": lambda: DOCS,
    "pandas DataFrame": lambda: __import__("pandas").DataFrame(DOCS),
    "pyarrow Table": lambda: pa.Table.from_pylist(DOCS),
    "RecordBatchReader": lambda: pa.Table.from_pylist(DOCS).to_reader(max_chunksize=7),
}


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_each_source_builds_the_index_the_file_builds(from_file, tmp_path, kind):
    index = build(SOURCES[kind](), tmp_path / "idx", id_column="doc")
    codes, hits = codes_and_hits(index)
    want_codes, want_hits = codes_and_hits(from_file)
    assert np.array_equal(codes, want_codes)
    assert hits == want_hits
    assert index.get("d0007") == from_file.get("d0007")
    assert not list(tmp_path.glob("hashindex-source-*"))  # the staging file is gone


def test_a_list_of_strings_is_texts_with_their_positions_as_ids(tmp_path):
    texts = [d["text"] for d in DOCS]
    from_file = build(write_input([{"id": str(i), "text": t} for i, t in enumerate(texts)],
                                  tmp_path / "t", "jsonl"), tmp_path / "a")
    index = build(texts, tmp_path / "b")
    assert np.array_equal(index.engine.all_codes(), from_file.engine.all_codes())
    assert index.search(texts[12], k=1)[0].id == "12"
    assert index.get("12")["text"] == texts[12]
    assert codes_and_hits(index)[1] == codes_and_hits(from_file)[1]


def test_a_float_array_with_ids_builds_as_an_embedding_column(tmp_path):
    docs = vector_docs(50, "v")
    path = write_input(docs, tmp_path / "v", "parquet")
    from_file = build(path, tmp_path / "a", id_column="doc", embedding_column="vec",
                      embedder=None)
    vectors = np.array([d["vec"] for d in docs], np.float32)
    index = build(vectors, tmp_path / "b", ids=[d["doc"] for d in docs],
                  texts=[d["text"] for d in docs], embedder=None)
    assert np.array_equal(index.engine.all_codes(), from_file.engine.all_codes())
    query = vectors[4] / np.linalg.norm(vectors[4])
    assert index.search(query, k=3).ids == from_file.search(query, k=3).ids
    assert index.search(query, k=1)[0].id == "v-4"


def test_bad_sources_are_one_line_errors(tmp_path):
    cases = [([], "list is empty"), (["a", {"text": "b"}], "item 1"),
             (42, "cannot read a int"), (np.ones(3, np.float32), "must be 2-D"),
             ({"text": "x"}, "cannot read a dict")]
    for source, message in cases:
        with pytest.raises(HashIndexError, match=message) as caught:
            build(source, tmp_path / "idx")
        assert "\n" not in str(caught.value)
    with pytest.raises(HashIndexError, match="ids= has 2 entries for 3"):
        build(np.ones((3, 4), np.float32), tmp_path / "idx", ids=["a", "b"])
    with pytest.raises(HashIndexError, match="no setting 'shardrows'"):
        build(DOCS, tmp_path / "idx", shardrows=5)
    # the pipeline's error names what the user gave, not the staging file
    with pytest.raises(HashIndexError, match="the list given to build") as caught:
        build([{"text": "fine"}, {"text": ""}], tmp_path / "idx")
    assert "hashindex-source-" not in str(caught.value)
    assert not (tmp_path / "idx").exists()


def test_search_takes_every_query_form(from_file):
    index = from_file
    one = index.search(DOCS[3]["text"], k=4)
    assert isinstance(one, hashindex.Results) and one[0].id == "d0003" and len(one) == 4
    assert one.backend and one.ranking == "cosine"
    assert [h.score for h in one] == sorted(one.scores, reverse=True)
    embedding = FakeEmbedder().embed([DOCS[3]["text"]])[0]
    assert index.search(embedding, k=4).ids == one.ids
    code = index.engine.all_codes()[3]
    assert index.search(bytes(code), k=2, radius=0)[0].distance == 0
    assert index.search(code, k=2, radius=0).ids == index.search(bytes(code), k=2,
                                                                  radius=0).ids
    like = index.search(like="d0003", k=3)
    assert "d0003" not in like.ids
    assert index.search(hashindex.Like("d0003"), k=3).ids == like.ids
    with pytest.raises(HashIndexError, match="not both"):
        index.search("x", like="d0003")
    with pytest.raises(HashIndexError, match="empty"):
        index.search([])


def test_a_batch_is_faiss_style_arrays_padded_below_k(from_file):
    index = from_file
    texts = [DOCS[3]["text"], DOCS[8]["text"]]
    topic = DOCS[3]["topic"]
    batch = index.search(texts, k=20, filter={"topic": topic})
    assert isinstance(batch, hashindex.BatchResults) and len(batch) == 2
    have = sum(1 for d in DOCS if d["topic"] == topic)
    assert have < 20
    assert batch.scores.shape == (2, 20) and batch.scores.dtype == np.float32
    assert np.isnan(batch.scores[0, have:]).all() and not np.isnan(batch.scores[0, :have]).any()
    assert (batch.labels[0, have:] == -1).all() and (batch.labels[0, :have] >= 0).all()
    assert batch.ids[0, 0] == "d0003" and batch.ids[0, have] is None
    assert list(index.ids_of(batch.labels[0])) == list(batch.ids[0])
    assert index.labels_of(["d0003", "nope"]) == [batch.labels[0, 0], -1]
    for i, text in enumerate(texts):  # each row as its own search answers
        assert batch[i].ids == index.search(text, k=20, filter={"topic": topic}).ids
    embeddings = FakeEmbedder().embed(texts)
    assert index.search(embeddings, k=5).to_list() == index.search(texts, k=5).to_list()


def test_results_as_list_arrow_and_pandas(from_file):
    result = from_file.search(DOCS[5]["text"], k=3)
    rows = result.to_list()
    assert rows[0] == {"id": "d0005", "score": result[0].score, "distance": result[0].distance,
                       "text": DOCS[5]["text"],
                       "metadata": {"topic": DOCS[5]["topic"], "year": DOCS[5]["year"]}}
    table = result.to_arrow()
    assert table.column_names == ["id", "score", "distance", "text", "topic", "year"]
    frame = result.to_pandas()
    assert list(frame["id"]) == result.ids and frame["year"][0] == DOCS[5]["year"]
    batch = from_file.search([DOCS[5]["text"], DOCS[6]["text"]], k=2).to_pandas()
    assert list(batch["query"]) == [0, 0, 1, 1] and list(batch["rank"]) == [0, 1, 0, 1]


def test_add_delete_compact_and_info_through_the_index(tmp_path):
    with build(DOCS[:40], tmp_path / "idx", id_column="doc") as index:
        assert len(index) == 40
        index.add(DOCS[40:50])
        assert len(index) == 50 and index.search(DOCS[45]["text"], k=1)[0].id == "d0045"
        with pytest.raises(HashIndexError, match="d0041"):
            index.add([DOCS[41]])
        index.add([{**DOCS[41], "text": "replaced words entirely"}], upsert=True)
        assert index.get("d0041")["text"] == "replaced words entirely"
        assert index.delete(["d0001", "d0002"]) == 2 and len(index) == 48
        with pytest.raises(HashIndexError, match="no document with id 'd0001'"):
            index.get("d0001")
        message = index.compact()
        assert "compacted" in message
        info = index.info()
        assert info["documents"] == 48 and len(info["segments"]) == 1
        assert info["tuning_stale"] is False
    with pytest.raises(HashIndexError, match="closed"):
        index.search("x")
    reopened = hashindex.open(tmp_path / "idx", embedder=FakeEmbedder())
    assert reopened.search(DOCS[45]["text"], k=1)[0].id == "d0045"


@pytest.fixture(scope="module")
def served_vectors(tmp_path_factory):
    folder = tmp_path_factory.mktemp("client")
    docs = vector_docs(80, "v")
    index = build(write_input(docs, folder / "v", "parquet"), folder / "idx", id_column="doc",
                  embedding_column="vec", embedder=None)
    with serve_index(folder / "idx", folder / "serve.log") as url:
        yield url, index, np.array([d["vec"] for d in docs], np.float32)


def test_the_client_answers_as_index_search(served_vectors):
    url, index, vectors = served_vectors
    queries = vectors[:3] / np.linalg.norm(vectors[:3], axis=1, keepdims=True)
    with hashindex.Client(url) as client:
        for query in queries:
            local, remote = index.search(query, k=5), client.search(query, k=5)
            assert remote.ids == local.ids
            assert remote.scores == pytest.approx(local.scores, abs=1e-5)
        assert client.search(like="v-3", k=4).ids == index.search(like="v-3", k=4).ids
        where = {"year": 2001}
        remote = client.search(queries, k=30, filter=where)
        local = index.search(queries, k=30, filter=where)
        assert remote.ids.tolist() == local.ids.tolist()
        assert np.allclose(remote.scores, local.scores, atol=1e-5, equal_nan=True)
        assert client.get("v-7") == index.get("v-7")
        assert client.info()["documents"] == 80
        with pytest.raises(HashIndexError, match="no document with id 'nope'"):
            client.search(like="nope")
        with pytest.raises(HashIndexError, match="k"):
            client.search(queries[0], k=0)


def test_the_client_waits_out_a_loading_service_and_names_an_unreachable_one():
    from hashindex.app.serve.process import free_port

    with pytest.raises(HashIndexError, match="cannot reach the service"):
        hashindex.Client(f"http://127.0.0.1:{free_port()}", timeout_s=2).search("x")



def test_the_readme_quickstart_in_python_runs(tmp_path):
    """The README's Python lines, as written there, over the bundled sample's texts."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("```python\nimport hashindex")
    block = readme[start + len("```python\n"): readme.index("```", start + 10)]
    assert "hashindex.build(" in block and ".search(" in block
    code = block.replace('"my-index"', json.dumps(str(tmp_path / "my-index")))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=600, env={**__import__("os").environ,
                                                     "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr[-2000:]


def test_the_readme_stays_short_and_its_links_lead_somewhere():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 250
    links = re.findall(r"\]\(([^)#]+)\)", readme)
    assert "docs/python.md" in links and "docs/benchmarks.md" in links
    assert [link for link in links if not (ROOT / link).exists()] == []


def test_the_client_retries_a_loading_service_until_it_answers():
    """A real HTTP server on loopback that answers 503 twice (loading), then an answer."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    calls = []
    from hashindex.results import Hit, SearchResult

    answer = SearchResult([Hit("a", 2, 0.9, "t", {}, 7)], radius=2, buckets_touched=1,
                          documents_touched=1, candidates=1, exact=True, backend="exact",
                          reranked=True).to_dict()  # a whole answer, as the service sends

    class Loading(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers["content-length"]))
            calls.append(self.path)
            status, body = ((503, {"error": "loading the index"}) if len(calls) <= 2
                            else (200, answer))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Loading)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = hashindex.Client(url, wait_s=10).search("x", k=1)
        assert result.ids == ["a"] and result.backend == "exact" and len(calls) == 3
        calls.clear()
        with pytest.raises(HashIndexError, match="loading the index"):  # gives up at wait_s
            hashindex.Client(url, wait_s=0).search("x", k=1)
    finally:
        server.shutdown()
        server.server_close()
