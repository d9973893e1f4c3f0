"""Metadata filters and Like queries: a filtered search returns exactly the first k of the
unfiltered ranking that pass the filter, however selective the filter (widened ball or scan)."""

import numpy as np
import pytest
from helpers import FakeEmbedder, build, corpus, write_input
from hypothesis import given, settings
from hypothesis import strategies as st

from hashindex.engine import HashIndex, Like
from hashindex.errors import HashIndexError
from hashindex.filters import parse_where

DOCS = corpus(400)


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    root = tmp_path_factory.mktemp("filters")
    source = write_input(DOCS, root / "docs", "jsonl")
    build(source, root / "index", FakeEmbedder(), bits=32, backend="hnsw",
          store_embeddings=True)
    return HashIndex.open(root / "index", embedder=FakeEmbedder())


def passes(doc: dict, spec: dict) -> bool:
    for column, condition in spec.items():
        value = doc[column]
        if isinstance(condition, dict):
            ops = {"gt": value > condition.get("gt", value - 1),
                   "gte": value >= condition.get("gte", value),
                   "lt": value < condition.get("lt", value + 1),
                   "lte": value <= condition.get("lte", value)}
            if not all(ops[op] for op in condition):
                return False
        elif value not in (condition if isinstance(condition, list) else [condition]):
            return False
    return True


def expected_ids(index, query, spec, k, exclude=None):
    """The unfiltered ranking of every document, filtered afterwards."""
    everything = index.search(query, k=len(index), backend="exact").hits
    by_id = {d["doc"]: d for d in DOCS}
    return [h.id for h in everything if h.id != exclude and passes(by_id[h.id], spec)][:k]


FILTERS = [
    {"topic": "space"},  # a quarter of the rows: the widened ball
    {"topic": ["space", "cooking"]},
    {"year": {"gte": 2003, "lt": 2005}},
    {"topic": "finance", "year": 2006},  # 1 in 28: the scan of admitted rows
    {"doc": "d0007"},  # the id column
    {"year": {"gt": 2100}},  # nothing passes
]


@pytest.mark.parametrize("spec", FILTERS)
@pytest.mark.parametrize("k", [1, 5, 30])
def test_filtered_search_equals_filtering_the_full_ranking(index, spec, k):
    spec = {("id" if c == "doc" else c): v for c, v in spec.items()}
    query = DOCS[11]["text"]
    result = index.search(query, k=k, filter=spec, backend="exact")
    docs_spec = {("doc" if c == "id" else c): v for c, v in spec.items()}
    assert [h.id for h in result.hits] == expected_ids(index, query, docs_spec, k)
    assert result.filter_examined is not None and result.filter_passed >= len(result.hits)
    by_id = {d["doc"]: d for d in DOCS}
    assert all(passes(by_id[h.id], docs_spec) for h in result.hits)


@settings(max_examples=25, deadline=None)
@given(low=st.integers(2000, 2006), span=st.integers(0, 6), k=st.integers(1, 40),
       row=st.integers(0, len(DOCS) - 1))
def test_any_year_range_matches_the_full_ranking(index, low, span, k, row):
    spec = {"year": {"gte": low, "lte": low + span}}
    query = DOCS[row]["text"]
    assert [h.id for h in index.search(query, k=k, filter=spec, backend="exact").hits] == \
        expected_ids(index, query, spec, k)


def test_filters_work_on_every_backend_and_in_batches(index):
    spec = {"topic": "space"}
    for backend in ("table", "hnsw", "graph", "flat"):
        hits = index.search(DOCS[2]["text"], k=10, filter=spec, backend=backend).hits
        assert len(hits) == 10, backend  # 100 space documents: k of them pass
        for hit in hits:
            assert hit.metadata["topic"] == "space"
    queries = [DOCS[i]["text"] for i in (1, 2, 3)]
    batch = index.search_batch(queries, k=7, filter=spec)
    assert [len(r.hits) for r in batch] == [7, 7, 7]
    assert [[h.id for h in r.hits] for r in batch] == \
        [[h.id for h in index.search(q, k=7, filter=spec).hits] for q in queries]


def test_like_searches_with_the_stored_document_and_leaves_it_out(index):
    result = index.search(Like("d0042"), k=5, backend="exact")
    assert "d0042" not in [h.id for h in result.hits] and len(result.hits) == 5
    embedding = index.vectors.rows(np.array([42]))[0]
    assert [h.id for h in result.hits] == \
        [h.id for h in index.search(embedding, k=6, backend="exact").hits if h.id != "d0042"][:5]
    filtered = index.search(Like("d0042"), k=3, filter={"topic": "football"},
                            backend="exact")
    assert len(filtered.hits) == 3
    assert all(h.metadata["topic"] == "football" for h in filtered.hits)
    with pytest.raises(HashIndexError, match="no document with id 'nope'"):
        index.search(Like("nope"))


@pytest.mark.parametrize("spec, message", [
    ({"colour": "red"}, "no metadata column 'colour'; this index has id, topic, year"),
    ({"year": "recent"}, "filter.year: 'recent' is not a int64"),
    ({"year": {"from": 2001}}, "a range takes gt, gte, lt, lte; got from"),
    ({"topic": []}, "an empty list admits nothing"),
    ({"topic": None}, "None is not a value to compare with"),
    ("topic=space", "filter must be an object"),
])
def test_bad_filters_are_named(index, spec, message):
    with pytest.raises(HashIndexError, match=message.replace("(", r"\(")):
        index.request(5, filter=spec)


def test_where_clauses_parse_to_the_filter_dict():
    assert parse_where(["topic=space", "topic=cooking", "year>=2003", "year<2005",
                        "name=O'Brien", "flag=true"]) == {
        "topic": ["space", "cooking"], "year": {"gte": 2003, "lt": 2005},
        "name": ["O'Brien"], "flag": [True]}
    for bad in ("topic", "=x", "year>=", "year>=1"):
        if bad == "year>=1":
            with pytest.raises(HashIndexError, match="already has ="):
                parse_where(["year=2", bad])
        else:
            with pytest.raises(HashIndexError, match="--where"):
                parse_where([bad])
