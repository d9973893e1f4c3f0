"""Good answers by default (hashindex/tuning.py, indexer/build/tune.py): a build keeps its
vectors, picks its second backend, measures every setting on a sample of its own documents and
records the sweep; a query runs the fastest setting that meets its recall target, and the
hits come ordered by the score they show, on every surface."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import build, write_input

from hashindex.app.cli import main
from hashindex.engine import HashIndex
from hashindex.errors import HashIndexError
from hashindex.segments.writer import IndexWriter
from hashindex.tuning import (
    Setting,
    Tuning,
    check_target,
    exact_neighbours,
    recall,
    sweep,
)
from indexer.documents import ColumnOptions
from indexer.update import AddConfig, add_documents

DIM = 32
K = 10


def clustered(n: int, seed: int, centres_seed: int = 0) -> np.ndarray:
    """Points around 60 fixed centres: the documents and, with another seed, queries from the
    same distribution that no build has seen."""
    centres = np.random.default_rng(centres_seed).normal(size=(60, DIM))
    rng = np.random.default_rng(seed)
    points = centres[rng.integers(0, 60, n)] + 0.7 * rng.normal(size=(n, DIM))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def docs_of(vectors: np.ndarray, prefix: str = "d") -> list[dict]:
    return [{"doc": f"{prefix}{i}", "text": f"document {i}", "group": ["a", "b"][i % 2],
             "vec": v.tolist()} for i, v in enumerate(vectors)]


def exact_top(database: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ database.T), axis=1, kind="stable")[:, :k]


def rows_of(result) -> list[int]:
    return [int(hit.id[1:]) for hit in result.hits]


@pytest.fixture(scope="module")
def graph_index(tmp_path_factory):
    """A default build (backend auto: the graph at this size) of 8 000 documents, and 300
    queries no build saw."""
    root = tmp_path_factory.mktemp("tuned")
    database = clustered(8000, 1)
    source = write_input(docs_of(database), root / "docs", "parquet")
    report = build(source, root / "index", embedding_column="vec", bits=32, backend="auto",
                   store_embeddings=True)
    return root / "index", database, clustered(300, 2), report


# ---- the sweep's parts ---------------------------------------------------------------------
def test_exact_neighbours_leave_the_query_row_out():
    data = clustered(500, 3)
    rows = np.array([0, 7, 499])
    found = exact_neighbours(data, rows, 5, chunk_rows=64)
    scores = data[rows] @ data.T
    scores[np.arange(3), rows] = -np.inf
    assert np.array_equal(found, np.argsort(-scores, axis=1, kind="stable")[:, :5])
    small = exact_neighbours(data[:3], np.array([0]), 5)[0]
    assert sorted(small[:2]) == [1, 2] and list(small[2:]) == [-1, -1, -1]


def test_the_fastest_setting_that_meets_the_target_is_chosen():
    settings = (Setting("table", {}, 40, recall=0.90, qps=9000),
                Setting("table", {}, 160, recall=0.96, qps=6000),
                Setting("graph", {"ef_search": 16}, recall=0.95, qps=12000),
                Setting("graph", {"ef_search": 64}, recall=0.99, qps=7000),
                Setting("exact", recall=1.0, qps=500))
    tuning = Tuning(10, 100, 0.95, 1000, "test", settings)
    assert tuning.choose(0.95)[0].describe() == "graph (ef_search=16)"
    assert tuning.choose(0.97)[0].describe() == "graph (ef_search=64)"
    assert tuning.choose(0.95, "table")[0].rerank_candidates == 160
    best, note = tuning.choose(0.999, "table")
    assert best.rerank_candidates == 160 and "reached 0.960" in note
    scaled = tuning.choose(0.95)[0].scaled(50, 10)
    assert scaled.backend_options == {"ef_search": 80}
    assert Setting("table", {}, 40).scaled(30, 10).rerank_candidates == 120
    assert Tuning.from_dict(tuning.to_dict()) == tuning
    assert tuning.stale(1300, 1300) and not tuning.stale(1100, 1100)


@pytest.mark.parametrize("value", [2, -1, 0, "abc", True, None])
def test_a_target_outside_0_to_1_is_refused(value):
    with pytest.raises(HashIndexError, match="target_recall"):
        check_target(value)


def test_sweep_measures_recall_and_stops_at_exact():
    truth = np.array([[1, 2], [3, 4]])
    calls = []

    def search(i, setting):
        calls.append(setting.rerank_candidates)
        return truth[i][: setting.rerank_candidates]

    measured = sweep(search, np.zeros((2, 4)), truth,
                     [Setting("table", {}, 1), Setting("table", {}, 2),
                      Setting("table", {}, 3)], k=2, timed=2)
    assert [s.recall for s in measured] == [0.5, 1.0]  # 3 is never run: 2 is exact
    assert 3 not in calls and recall([np.array([1])], np.array([[1, -1]])) == 1.0


# ---- a default build ----------------------------------------------------------------------
def test_a_default_build_keeps_vectors_picks_a_backend_and_records_its_sweep(graph_index):
    path, _, _, report = graph_index
    index = HashIndex.open(path)
    assert index.vectors is not None and index.manifest.backend == "graph"
    backends = {s.backend for s in index.tuning.settings}
    assert backends == {"graph", "table", "exact"}
    assert index.tuning.queries == 1000 and index.tuning.k == K
    assert report.backend == "graph" and "tune" in index.manifest.stage_seconds
    result = index.search(clustered(1, 9)[0], k=K)
    assert result.setting and result.setting.startswith("graph") and result.ranking == "cosine"


def test_a_small_default_build_scans_its_vectors(tmp_path):
    source = write_input(docs_of(clustered(300, 4)), tmp_path / "docs", "parquet")
    build(source, tmp_path / "index", embedding_column="vec", bits=32, backend="auto",
          store_embeddings=True)
    assert HashIndex.open(tmp_path / "index").manifest.backend == "exact"


def test_the_tuned_setting_holds_on_queries_it_did_not_see(graph_index):
    path, database, queries, _ = graph_index
    index = HashIndex.open(path)
    truth = exact_top(database, queries, K)
    for target in (0.9, 0.95, 0.99):
        found = [rows_of(index.search(q, k=K, target_recall=target)) for q in queries]
        reached = np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth)])
        assert reached >= target - 0.01, (target, reached)


def test_hits_are_ordered_by_the_score_they_show(graph_index):
    path, _, queries, _ = graph_index
    index = HashIndex.open(path)
    for backend in (None, "table", "graph", "exact", "flat"):
        for q in queries[:10]:
            result = index.search(q, k=K, backend=backend)
            scores = [h.score for h in result.hits]
            assert len(scores) == K, backend  # an empty list is sorted too
            assert scores == sorted(scores, reverse=True), backend
            assert result.ranking == "cosine"
    coded = index.search(index.search(queries[0], k=1).query_code, k=K)  # a bare code
    assert coded.ranking == "code distance" and len(coded.hits) == K
    assert [h.score for h in coded.hits] == sorted((h.score for h in coded.hits), reverse=True)


def test_search_and_top_rows_return_the_same_rows(graph_index):
    path, _, queries, _ = graph_index
    index = HashIndex.open(path)
    request = index.request(K)
    for q in queries[:30]:
        rows, scores = index.top_rows(q, request)
        result = index.run(q, request)
        assert len(rows) == K
        assert [h.row for h in result.hits] == rows.tolist()
        assert np.allclose([h.score for h in result.hits], scores)


def test_knobs_of_the_request_win_over_the_tuning(graph_index):
    path, _, queries, _ = graph_index
    index = HashIndex.open(path)
    own = index.search(queries[0], k=K, backend="graph", backend_options={"ef_search": 300})
    assert own.setting == "" and own.tuned_recall is None
    budget = index.search(queries[0], k=K, rerank_candidates=50)
    assert budget.backend == "table" and budget.candidates == 50
    named = index.search(queries[0], k=K, backend="table")  # a tuned backend, by name
    assert named.setting.startswith("table (rerank_candidates=")


def test_k_filters_and_deleted_rows_keep_the_recall_or_say_so(graph_index, tmp_path):
    path, database, queries, _ = graph_index
    index = HashIndex.open(path)
    wide = index.search(queries[0], k=50)
    assert any("tuned for k=10" in note for note in wide.notes)
    # a filter admitting half the rows: recall against the filtered exact top-10
    groups = np.arange(len(database)) % 2 == 0  # group "a"
    admitted = np.flatnonzero(groups)
    truth = admitted[exact_top(database[admitted], queries, K)]
    found = [rows_of(index.search(q, k=K, filter={"group": "a"})) for q in queries[:100]]
    reached = np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth)])
    assert reached >= 0.94, reached


# ---- the tuning over the index's life -----------------------------------------------------
def test_adds_make_the_tuning_stale_and_compact_tunes_again(graph_index, tmp_path):
    import shutil

    path = tmp_path / "index"
    shutil.copytree(graph_index[0], path)
    more = write_input(docs_of(clustered(2500, 5), "n"), tmp_path / "more", "parquet")
    add_documents(AddConfig(index=str(path), input=str(more), show_progress=False,
                            columns=ColumnOptions(id_column="doc", embedding_column="vec")))
    index = HashIndex.open(path)
    result = index.search(clustered(1, 6)[0], k=K)
    assert any("tuning is stale" in note for note in result.notes)
    info = CliRunner().invoke(main, ["info", str(path)])
    assert "stale" in info.output
    compacted = CliRunner().invoke(main, ["compact", str(path)])
    assert compacted.exit_code == 0 and "tuned it again" in compacted.output, compacted.output
    index = HashIndex.open(path)
    assert index.tuning.rows == 10_500 and not index.search(clustered(1, 6)[0], k=K).notes
    assert "stored int8" in index.tuning.truth
    with IndexWriter(path) as writer:
        assert writer.manifest.history[-1]["operation"] == "tune"


@pytest.mark.parametrize("command", ["build", "query"])
@pytest.mark.parametrize("value", ["2", "-1", "abc", "0"])
def test_target_recall_flags_out_of_range_are_one_line(graph_index, tmp_path, command, value):
    path = graph_index[0]
    args = (["query", str(path), "--like", "d1", "--target-recall", value] if command == "query"
            else ["build", str(path.parent / "docs.parquet"), "--out", str(tmp_path / "x"),
                  "--embedding-column", "vec", "--target-recall", value])
    result = CliRunner().invoke(main, args)
    lines = [x for x in result.stderr.strip().splitlines() if not x.startswith("note:")]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: ")
    assert "--target-recall" in lines[0] or "target-recall" in lines[0], lines
    assert not (tmp_path / "x").exists()


def test_query_json_hits_come_in_score_order(graph_index):
    path = graph_index[0]
    result = CliRunner().invoke(main, ["query", str(path), "--like", "d3", "--json", "-k", "8"])
    assert result.exit_code == 0, result.output
    scores = [hit["score"] for hit in json.loads(result.output)["hits"]]
    assert len(scores) == 8 and scores == sorted(scores, reverse=True)


def test_an_index_without_vectors_says_its_hits_are_ranked_by_code(tmp_path):
    source = write_input(docs_of(clustered(400, 7)), tmp_path / "docs", "parquet")
    build(source, tmp_path / "index", embedding_column="vec", bits=32, backend="auto",
          store_embeddings=False)
    index = HashIndex.open(tmp_path / "index")
    result = index.search(clustered(1, 8)[0], k=5)
    assert index.tuning is None and index.manifest.backend == "flat"
    assert result.ranking == "code distance"
    assert any("ranked by code distance" in note for note in result.notes)
