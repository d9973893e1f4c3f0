"""`hashindex serve --allow-writes`: adds and deletes over HTTP, each one commit, answered
after the service serves the generation it made (a client reads its own writes). A real
uvicorn process on a loopback port, on an index of precomputed embeddings (no text model)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from helpers import FakeEmbedder, build, corpus, serve_index, vector_docs, write_input

import hashindex.embedding.embedder
from hashindex.engine import HashIndex
from hashindex.segments.writer import IndexWriter

DIM = 16


@pytest.fixture(scope="module")
def writable(tmp_path_factory):
    folder = tmp_path_factory.mktemp("writes")
    source = write_input(vector_docs(80, "a", seed=1, dim=DIM), folder / "docs", "parquet")
    build(source, folder / "idx", embedding_column="vec", bits=32, store_embeddings=True)
    with serve_index(folder / "idx", folder / "serve.log", args=["--allow-writes"]) as url:
        yield url, folder / "idx"


def new_documents(n: int, prefix: str, seed: int) -> list[dict]:
    return [{"id": d["doc"], "text": d["text"], "embedding": d["vec"],
             "metadata": {"year": d["year"]}} for d in vector_docs(n, prefix, seed, DIM)]


def test_add_search_delete_over_http(writable):
    url, index_path = writable
    docs = new_documents(5, "w", seed=7)
    added = httpx.post(url + "/documents", json={"documents": docs}, timeout=30)
    assert added.status_code == 200, added.text
    assert added.json()["added"] == 5 and added.json()["generation"] == 2
    hit = httpx.post(url + "/search", json={"embedding": docs[2]["embedding"], "k": 1}).json()
    assert hit["hits"][0]["id"] == "w-2" and hit["hits"][0]["metadata"] == {"year": 2002}
    assert httpx.get(url + "/documents/w-4").json()["id"] == "w-4"
    assert httpx.get(url + "/ready").json()["documents"] == 85

    again = httpx.post(url + "/documents", json={"documents": docs[:1]})
    assert again.status_code == 400 and "'w-0'" in again.json()["error"]
    assert "upsert" in again.json()["error"]
    moved = dict(docs[0], embedding=docs[3]["embedding"])
    upserted = httpx.post(url + "/documents", json={"documents": [moved], "upsert": True})
    assert upserted.json()["replaced"] == 1
    assert httpx.get(url + "/ready").json()["documents"] == 85

    gone = httpx.delete(url + "/documents/w-4")
    assert gone.status_code == 200 and gone.json()["deleted"] == 1
    assert httpx.get(url + "/documents/w-4").status_code == 404
    assert httpx.delete(url + "/documents/w-4").status_code == 404
    many = httpx.post(url + "/documents/delete", json={"ids": ["a-1", "a-2", "ghost"]}).json()
    assert many["deleted"] == 2 and many["unknown"] == ["ghost"]
    local = HashIndex.open(index_path)
    assert len(local) == 82 and local.manifest.generation == many["generation"]
    query = np.asarray(docs[1]["embedding"], dtype=np.float32)
    served = httpx.post(url + "/search", json={"embedding": query.tolist(), "k": 5}).json()
    assert [h["id"] for h in served["hits"]] == [h.id for h in local.search(query, k=5).hits]


@pytest.mark.parametrize("body, fragment", [
    ({"documents": []}, "none given"),
    ({"documents": [{"id": "x", "text": "no vector"}]}, "has no embedding"),
    ({"documents": [{"id": "x", "embedding": [0.1] * (DIM + 1)}]}, "16-dimensional"),
    ({"documents": [{"id": "x", "embedding": [0.1] * DIM, "metadata": {"colour": "red"}}]},
     "colour"),
    ({"documents": [{"id": "y", "embedding": [0.1] * DIM},
                    {"id": "y", "embedding": [0.2] * DIM}]}, "duplicate id 'y'"),
    ({"documents": [{"id": "p", "embedding": [0.1] * DIM},
                    {"id": "q", "embedding": [0.2] * 3}]}, "embeddings of lengths [3, 16]"),
    ({"documents": [{"id": "m", "embedding": [0.1] * DIM, "metadata": {"year": 1}},
                    {"id": "n", "embedding": [0.2] * DIM, "metadata": {"year": "x"}}]},
     "documents: metadata"),
])
def test_bad_adds_are_400_and_change_nothing(writable, body, fragment):
    url, index_path = writable
    generation = HashIndex.open(index_path).manifest.generation
    answer = httpx.post(url + "/documents", json=body)
    assert answer.status_code == 400 and fragment in answer.json()["error"], answer.text
    assert HashIndex.open(index_path).manifest.generation == generation


def test_a_busy_writer_is_409(writable):
    url, index_path = writable
    with IndexWriter(index_path):
        answer = httpx.delete(url + "/documents/a-3")
    assert answer.status_code == 409 and "another writer" in answer.json()["error"]
    assert httpx.delete(url + "/documents/a-3").status_code == 200


def test_an_index_with_a_text_model_embeds_what_is_added(tmp_path, monkeypatch):
    """POST /documents on an index with a text model (ingest.py): texts are embedded by the
    served model and found by it; an embedding or a blank text is refused, naming the id."""
    from fastapi.testclient import TestClient

    from hashindex.app.serve.app import ServeSettings, create_app

    monkeypatch.setattr(hashindex.embedding.embedder, "Embedder", FakeEmbedder)
    docs = corpus(70, seed=5)
    build(write_input(docs[:60], tmp_path / "docs", "parquet"), tmp_path / "idx",
          FakeEmbedder(), store_embeddings=True)
    settings = ServeSettings(allow_writes=True, load_before_listening=True,
                             reload_interval_s=0)
    with TestClient(create_app(str(tmp_path / "idx"), settings)) as client:
        for bad, fragment in [({"id": "v", "text": "words", "embedding": [0.1] * 8},
                               "'v' needs a text"), ({"id": "b", "text": "  "}, "'b' needs")]:
            answer = client.post("/documents", json={"documents": [bad]})
            assert answer.status_code == 400 and fragment in answer.json()["error"], answer.text
        new = [{"id": d["doc"], "text": d["text"],
                "metadata": {"topic": d["topic"], "year": d["year"]}} for d in docs[60:]]
        added = client.post("/documents", json={"documents": new})
        assert added.status_code == 200, added.text
        assert added.json() == {"added": 10, "replaced": 0, "segment": added.json()["segment"],
                                "generation": 2}
        hit = client.post("/search", json={"text": new[4]["text"], "k": 1}).json()["hits"][0]
        assert hit["id"] == new[4]["id"] and hit["metadata"] == new[4]["metadata"]
