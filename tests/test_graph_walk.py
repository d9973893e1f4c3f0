"""The graph backend walked by the stored int8 vectors (walk=vectors): its beam comes ranked
by cosine, reaches exact float's top-k with a narrow beam where the Hamming walk needs a wide
one, answers batches as single queries, honours filters, and works across segments."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import build, write_input

from hashindex.engine import HashIndex
from hashindex.errors import HashIndexError
from hashindex.metrics import recall_at_k
from indexer.documents import ColumnOptions
from indexer.update import AddConfig, add_documents

DIM = 32
VECTORS = ColumnOptions(embedding_column="vec", id_column="doc")


def clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, DIM))
    points = centres[rng.integers(0, 40, n)] + 0.6 * rng.normal(size=(n, DIM))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def docs_of(vectors: np.ndarray, start: int = 0) -> list[dict]:
    return [{"doc": f"d{i}", "text": f"document {i}", "group": ["a", "b", "c"][i % 3],
             "vec": v.tolist()} for i, v in enumerate(vectors, start)]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("walk")
    database = clustered(3000, 0)
    source = write_input(docs_of(database), root / "docs", "parquet")
    build(source, root / "index", embedding_column="vec", bits=32, backend="graph",
          store_embeddings=True)
    return root, database, clustered(60, 1)


def exact_top(database: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ database.T), axis=1, kind="stable")[:, :k]


def found_rows(index: HashIndex, queries: np.ndarray, k: int, **options) -> np.ndarray:
    return np.array([[int(h.id[1:]) for h in index.search(q, k=k, backend="graph",
                                                          **options).hits] for q in queries])


def test_vectors_walk_ranks_by_cosine_and_beats_the_code_walk(built):
    root, database, queries = built
    index = HashIndex.open(root / "index")
    truth = exact_top(database, queries, 10)
    narrow = {"ef_search": 64}
    by_vectors = found_rows(index, queries, 10, backend_options={**narrow, "walk": "vectors"})
    by_codes = found_rows(index, queries, 10, backend_options={**narrow, "walk": "codes"})
    auto = found_rows(index, queries, 10, backend_options=narrow)  # int8 vectors stored
    assert np.array_equal(auto, by_vectors)
    assert recall_at_k(by_vectors, truth, 10) >= 0.95
    assert recall_at_k(by_vectors, truth, 10) > recall_at_k(by_codes, truth, 10)
    result = index.search(queries[0], k=10, backend="graph", backend_options={"walk": "vectors"})
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True) and result.reranked
    expected = index.vectors.scores(np.array([int(h.id[1:]) for h in result.hits]), queries[0])
    assert np.allclose(scores, expected, atol=1e-6)
    # the Hamming distances shown are the codes' own
    code = index.encoder.encode(queries[0][None])[0]
    codes = index.all_codes()[[int(h.id[1:]) for h in result.hits]]
    distances = np.unpackbits(codes ^ code, axis=1).sum(axis=1)
    assert [h.distance for h in result.hits] == distances.tolist()


def test_vectors_walk_in_batches_the_lean_path_and_with_filters(built):
    root, database, queries = built
    index = HashIndex.open(root / "index")
    options = {"backend": "graph", "backend_options": {"walk": "vectors", "ef_search": 64}}
    batch = index.search_batch(list(queries[:8]), k=5, **options)
    single = [index.search(q, k=5, **options) for q in queries[:8]]
    assert [[h.id for h in r.hits] for r in batch] == [[h.id for h in r.hits] for r in single]
    request = index.request(5, **options)
    rows, scores = index.top_rows(queries[0], request)
    assert [f"d{r}" for r in rows] == [h.id for h in single[0].hits]
    hits = index.search(queries[3], k=10, filter={"group": "b"}, **options).hits
    assert len(hits) == 10  # a third of the documents are in group b
    for hit in hits:
        assert hit.metadata["group"] == "b"


def test_vectors_walk_refuses_a_bare_code_and_auto_falls_back(built):
    root, _, _ = built
    index = HashIndex.open(root / "index")
    code = index.all_codes()[7]
    with pytest.raises(HashIndexError, match="walk=vectors needs a float query"):
        index.search(code, k=3, backend="graph", backend_options={"walk": "vectors"})
    hits = index.search(code, k=3, backend="graph").hits  # auto: the Hamming walk
    assert hits[0].distance == 0
    with pytest.raises(HashIndexError, match="walk"):
        index.request(3, backend="graph", backend_options={"walk": "floats"})


def test_vectors_walk_across_segments(built, tmp_path):
    root, database, queries = built
    import shutil

    copy = tmp_path / "index"
    shutil.copytree(root / "index", copy)
    extra = clustered(500, 2)
    source = write_input(docs_of(extra, start=len(database)), tmp_path / "more", "parquet")
    add_documents(AddConfig(index=str(copy), input=str(source), columns=VECTORS,
                            show_progress=False))
    index = HashIndex.open(copy)
    assert len(index.segments) == 2
    everything = np.concatenate([database, extra])
    truth = exact_top(everything, queries, 10)
    found = found_rows(index, queries, 10, backend_options={"walk": "vectors",
                                                            "ef_search": 64})
    assert recall_at_k(found, truth, 10) >= 0.95


def test_vectors_walk_keeps_the_radius_cap_and_the_lean_path_handles_deletes(built, tmp_path):
    root, database, queries = built
    import shutil

    from hashindex.segments.writer import IndexWriter

    index = HashIndex.open(root / "index")
    # no document lies within 6 bits of this query (a cap of 6 gave no hit to check); the walk
    # finds some within 8, while 9 of its 10 best uncapped lie further
    capped = index.search(queries[0], k=10, backend="graph", max_radius=8,
                          backend_options={"walk": "vectors"})
    assert capped.hits and all(h.distance <= 8 for h in capped.hits)
    copy = tmp_path / "index"
    shutil.copytree(root / "index", copy)
    with IndexWriter(copy) as writer:
        writer.delete([f"d{i}" for i in range(0, 3000, 2)])  # half gone: the widening scans
    index = HashIndex.open(copy)
    for k in (30, 300):  # 300: the widening asks for a quarter of the rows, so it scans codes
        request = index.request(k, backend="graph", backend_options={"walk": "vectors"})
        rows, _ = index.top_rows(queries[1], request)
        assert len(rows) == k and all(row % 2 == 1 for row in rows)


def test_a_float16_store_walks_by_codes_in_every_path(tmp_path):
    database = clustered(800, 3)
    source = write_input(docs_of(database), tmp_path / "docs", "parquet")
    build(source, tmp_path / "index", embedding_column="vec", bits=32, backend="graph",
          store_embeddings=True, vector_dtype="float16")
    index = HashIndex.open(tmp_path / "index")
    request = index.request(5, backend="graph")  # auto: no int8 rows, so the Hamming walk
    rows, scores = index.top_rows(database[11], request)
    assert rows[0] == 11 and len(rows) == 5
    with pytest.raises(HashIndexError, match="int8 re-rank vectors"):
        index.search(database[11], k=5, backend="graph", backend_options={"walk": "vectors"})
