"""HashIndex: search semantics on a real (fake-embedded) index."""

import json

import numpy as np
import pytest
from helpers import FakeEmbedder, build, corpus, write_input

from hashindex.backends import BACKENDS
from hashindex.engine import HashIndex
from hashindex.errors import HashIndexError


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    root = tmp_path_factory.mktemp("engine")
    source = write_input(corpus(150), root / "docs", "jsonl")
    build(source, root / "index", FakeEmbedder(), bits=32, store_embeddings=True)
    return HashIndex.open(root / "index", embedder=FakeEmbedder())


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_own_text_comes_first_at_distance_zero(index, backend):
    doc = corpus(150)[17]
    result = index.search(doc["text"], k=5, backend=backend)
    assert len(result.hits) == 5
    assert result.hits[0].id == "d0017" and result.hits[0].distance == 0
    assert result.hits[0].metadata == {"topic": doc["topic"], "year": doc["year"]}
    assert result.hits[0].score == pytest.approx(1.0, abs=1e-3)
    # every backend's hits come ordered by the score they show: the cosine to the stored vector
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
    assert result.ranking == "cosine"


def test_ranked_by_cosine_then_row_or_by_code_distance_then_row(index):
    result = index.search(corpus(150)[3]["text"], k=20, rerank=True)
    assert len(result.hits) == 20  # the pairs below are 19 comparisons, not none
    for a, b in zip(result.hits, result.hits[1:]):
        assert (-a.score, a.row) <= (-b.score, b.row)
    plain = index.search(corpus(150)[3]["text"], k=20, rerank=False)
    assert plain.ranking == "code distance" and len(plain.hits) == 20
    for a, b in zip(plain.hits, plain.hits[1:]):
        assert (a.distance, a.row) <= (b.distance, b.row)


def test_no_exact_match_at_radius_zero_says_so(index):
    codes = index.all_codes()
    present = {c.tobytes() for c in codes}
    rng = np.random.default_rng(0)
    absent = next(c for c in rng.integers(0, 256, (1000, 4), dtype=np.uint8)
                  if c.tobytes() not in present)
    result = index.search(absent, k=3, radius=0)
    assert result.hits == [] and result.radius == 0
    assert any("no document within radius 0" in note for note in result.notes)


def test_k_larger_than_index(index):
    result = index.search(corpus(150)[0]["text"], k=1000)
    assert len(result.hits) == 150 and len({h.id for h in result.hits}) == 150


def test_batch_equals_single(index):
    queries = [d["text"] for d in corpus(150)[:6]] + [index.all_codes()[9]]
    batch = index.search_batch(queries, k=4)
    single = [index.search(q, k=4) for q in queries]
    assert [len(r.hits) for r in batch] == [4] * len(queries)
    assert [[h.id for h in r.hits] for r in batch] == [[h.id for h in r.hits] for r in single]


def test_rerank_candidates_ranks_by_cosine(index):
    query = corpus(150)[40]["text"]
    result = index.search(query, k=5, rerank_candidates=40)
    assert result.candidates >= 40 and len(result.hits) == 5
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True)
    embedding = FakeEmbedder().embed([query])[0]
    texts = [d["text"] for d in corpus(150)]
    exact = np.argsort(-(FakeEmbedder().embed(texts) @ embedding))[0]
    assert result.hits[0].id == f"d{exact:04d}"


def test_query_by_code_and_embedding_agree(index):
    text = corpus(150)[11]["text"]
    embedding = FakeEmbedder().embed([text])[0]
    by_text = index.search(text, k=3)
    by_embedding = index.search(embedding, k=3)
    by_code = index.search(np.frombuffer(by_text.query_code, dtype=np.uint8), k=3, rerank=False)
    assert len(by_text.hits) == 3
    assert [h.id for h in by_text.hits] == [h.id for h in by_embedding.hits]
    assert by_code.hits[0].distance == 0


def test_backend_knobs_per_query_and_stored_defaults(tmp_path):
    from hashindex.errors import HashIndexError

    source = write_input(corpus(150), tmp_path / "docs", "jsonl")
    build(source, tmp_path / "ivf", FakeEmbedder(), bits=32, backend="ivf",
          backend_options={"nlist": 6, "nprobe": 2})
    index = HashIndex.open(tmp_path / "ivf", embedder=FakeEmbedder())
    assert index.manifest.backend_options == {"nlist": 6, "nprobe": 2}
    ivf = index.backend("ivf")
    assert ivf.index.nlist == 6
    query = corpus(150)[5]["text"]
    index.search(query, k=5, backend="ivf")
    assert ivf.index.nprobe == 2  # the index's stored default
    every_list = index.search(query, k=5, backend="ivf", backend_options={"nprobe": 6})
    assert ivf.index.nprobe == 6
    exact = index.search(query, k=5, backend="flat")
    assert len(exact.hits) == 5
    assert [h.id for h in every_list.hits] == [h.id for h in exact.hits]  # all lists: exact
    with pytest.raises(HashIndexError, match="backend ivf has no option"):
        index.search(query, backend="ivf", backend_options={"efsearch": 3})
    with pytest.raises(HashIndexError, match="nlist is set when the index is built"):
        index.search(query, backend="ivf", backend_options={"nlist": 3})
    with pytest.raises(HashIndexError, match="nprobe=0 is out of range"):
        index.search(query, backend="ivf", backend_options={"nprobe": 0})
    hnsw = index.search(query, k=5, backend="hnsw", backend_options={"ef_search": 200})
    assert index.backend("hnsw").index.hnsw.efSearch == 200 and len(hnsw.hits) == 5


@pytest.mark.parametrize("vector_dtype", ["float16", "int8"])
def test_rerank_from_the_vector_matrix_equals_the_shard_path(tmp_path, vector_dtype):
    """The old path scored candidates with float16 embeddings read from the shards; the matrix
    gives the same order and scores (float16), or scores within int8's rounding and the same
    documents up to a near-tie at the cut (int8)."""
    docs = corpus(150)
    build(write_input(docs, tmp_path / "docs", "jsonl"), tmp_path / "index", FakeEmbedder(),
          bits=32, store_embeddings=True, vector_dtype=vector_dtype)
    index = HashIndex.open(tmp_path / "index", embedder=FakeEmbedder())
    embeddings = FakeEmbedder().embed([d["text"] for d in docs])
    for doc in docs[:30]:
        query = FakeEmbedder().embed([doc["text"]])[0]
        result = index.search(query, k=8, rerank_candidates=40)
        rows = [h.row for h in result.hits]
        assert len(rows) == 8  # the checks below hold of no rows at all
        code = np.frombuffer(result.query_code, dtype=np.uint8)
        candidates = index.backend("table").search(code, 40, 32).rows[:40]  # the budget
        old = embeddings[candidates].astype(np.float16).astype(np.float32) @ query
        expected = candidates[np.lexsort((candidates, -old))][:8]  # ties by row
        got = np.array([h.score for h in result.hits])
        if vector_dtype == "float16":
            assert rows == expected.tolist()
            assert np.allclose(got, np.minimum(np.sort(old)[::-1][:8], 1.0), atol=1e-6)
            assert result.candidates == 40
        else:  # the same scores within int8's rounding: the 8 best up to ties at the cut
            assert np.allclose(got, embeddings[rows] @ query, atol=0.02)
            assert set(rows) <= set(candidates.tolist())
            assert (embeddings[rows] @ query >= np.sort(old)[::-1][7] - 0.02).all()


def test_held_documents_give_the_hits_the_shards_give(tmp_path):
    source = write_input(corpus(300), tmp_path / "docs", "jsonl")
    build(source, tmp_path / "index", FakeEmbedder(), bits=32, store_embeddings=True)
    read = HashIndex.open(tmp_path / "index", embedder=FakeEmbedder())
    read.documents.hold_bytes = 0  # never held: every hit from its row group
    held = HashIndex.open(tmp_path / "index", embedder=FakeEmbedder())
    assert held.documents.hold()
    for doc in corpus(300)[::37]:
        a, b = read.search(doc["text"], k=7), held.search(doc["text"], k=7)
        assert len(a.hits) == 7
        assert [(h.id, h.text, h.metadata, h.row, h.distance, h.score) for h in a.hits] == \
               [(h.id, h.text, h.metadata, h.row, h.distance, h.score) for h in b.hits]
        assert b.hits[0].metadata == {"topic": doc["topic"], "year": doc["year"]}
    assert read.documents.columns is None


def test_repeated_options_are_checked_once_and_never_confused(index):
    query = corpus(150)[3]["text"]
    first = index.search(query, k=5, backend="table")
    assert len(first.hits) == 5
    assert index.search(query, k=5, backend="table").hits == first.hits
    made = index.requests.get(5, {"backend": "table"})
    assert index.requests.get(5, {"backend": "table"}) is made
    assert index.search(query, k=5, backend="flat").backend == "flat"
    with pytest.raises(HashIndexError, match="k must be an integer"):
        index.search(query, k=True)  # 1 is cached meanwhile: True is still refused
    index.search(query, k=1)
    with pytest.raises(HashIndexError, match="k must be an integer"):
        index.search(query, k=True)
    topics = {h.metadata["topic"] for h in index.search(query, k=20,
                                                         filter={"topic": "space"}).hits}
    assert topics == {"space"}
    other = {h.metadata["topic"] for h in index.search(query, k=20,
                                                        filter={"topic": "cooking"}).hits}
    assert other == {"cooking"}


def test_option_keys_tell_apart_what_the_checks_tell_apart():
    from hashindex.request import option_key

    keys = [option_key(5, {"filter": {"topic": ["a", "b"]}}),
            option_key(5, {"filter": {"topic": ("a", "b")}}),
            option_key(5, {"filter": {"1": 3}}), option_key(5, {"filter": {1: 3}}),
            option_key(5, {"filter": {"n": 1}}), option_key(5, {"filter": {"n": 1.0}}),
            option_key(5, {"filter": {"n": True}}), option_key(5, {"rerank_candidates": None}),
            option_key(5, {})]
    assert len(set(keys)) == len(keys)
    assert option_key(5, {"filter": {"n": np.int64(1)}}) is None  # not cached: made afresh
    assert option_key(True, {}) is None


def test_an_embedded_text_is_checked_alone_as_in_a_batch(index):
    from hashindex.engine import EmbeddedText

    for bad, message in ((np.full(index.dimension, np.nan, np.float32), "NaN or inf"),
                         (np.ones(index.dimension // 2, np.float32), "dimension")):
        for run in (lambda q: index.search(q), lambda q: index.search_batch([q, q])):
            with pytest.raises(HashIndexError, match=message):
                run(EmbeddedText(bad))


def test_a_query_within_the_unit_tolerance_is_kept_bit_for_bit():
    from hashindex.validation import check_query_embedding

    vector = np.random.default_rng(0).normal(size=384).astype(np.float32)
    vector /= np.linalg.norm(vector)
    for scale in (1.00008, 0.99993, 1.0):
        near = (vector * scale).astype(np.float32)
        assert check_query_embedding(near) is near or \
            np.array_equal(check_query_embedding(near), near)
    far = vector * 3
    assert np.linalg.norm(check_query_embedding(far)) == pytest.approx(1.0, abs=1e-6)


def test_the_service_setting_zero_keeps_documents_on_disk(tmp_path):
    from hashindex.app.serve.snapshots import ServingState

    rng = np.random.default_rng(0)
    rows = [{"doc": f"d{i}", "text": f"t{i}", "vector": rng.normal(size=8).tolist()}
            for i in range(64)]
    source = tmp_path / "docs.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    build(source, tmp_path / "index", bits=16, embedding_column="vector")
    for budget, held in ((0, False), (1 << 30, True)):
        state = ServingState(tmp_path / "index", preload_bytes=budget)
        index = state.load(None).index
        for i in range(20):
            index.search(np.asarray(rows[i]["vector"], np.float32), k=3)
        assert (index.documents.columns is not None) is held, budget


def test_max_radius_is_the_old_name_of_radius_and_warns(index):
    text = corpus(150)[9]["text"]
    new = index.search(text, k=5, radius=3)
    with pytest.warns(DeprecationWarning, match="use radius"):
        old = index.search(text, k=5, max_radius=3)
    assert new.hits and [h.id for h in old.hits] == [h.id for h in new.hits]
    assert max(h.distance for h in new.hits) <= 3
    with pytest.raises(HashIndexError, match="disagree"):
        index.search(text, k=5, radius=2, max_radius=3)


def test_an_empty_answer_under_a_radius_cap_names_the_cap(index):
    codes = index.all_codes()
    rng = np.random.default_rng(1)
    bits = np.unpackbits(codes, axis=1)
    far = next(c for c in rng.integers(0, 256, (5000, 4), dtype=np.uint8)
               if (np.unpackbits(c) != bits).sum(axis=1).min() > 3)
    for backend in ("graph", "table"):
        result = index.search(far, k=3, radius=3, backend=backend)
        assert result.hits == []
        assert any("no document within radius 3" in note for note in result.notes), \
            (backend, result.notes)
