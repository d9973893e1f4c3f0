"""benchmarks/defaults.py and benchmarks/peers.py on a tiny synthetic corpus (no text model):
every registered peer returns the brute-force answer at its most exact setting, and the
harness builds with the real CLI, measures and writes its report."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from benchmarks import defaults
from benchmarks.peers import PEERS, make_peer
from indexer.bench.datasets import clustered_embeddings

DOCUMENTS, QUERIES = 150, 20  # few enough for every peer's last setting to be exhaustive


@pytest.fixture(scope="module")
def corpus() -> defaults.Corpus:
    vectors, _ = clustered_embeddings(DOCUMENTS + QUERIES, dim=32, clusters=8, seed=3)
    texts = [f"document {i}" for i in range(len(vectors))]
    return defaults.split(texts, vectors, "tiny", "clustered synthetic vectors", QUERIES)


def test_split_holds_queries_out_and_truth_is_exact(corpus):
    assert len(corpus.documents) == DOCUMENTS and len(corpus.queries) == QUERIES
    assert not set(corpus.documents) & set(corpus.queries)
    scores = corpus.query_vectors @ corpus.document_vectors.T
    expected = np.argsort(-scores, axis=1, kind="stable")[:, : defaults.K]
    assert defaults.recall(list(expected), corpus.truth) == 1.0


@pytest.mark.parametrize("name", list(PEERS))
def test_peer_returns_brute_force_at_its_most_exact_setting(name, corpus):
    peer = make_peer(name, build_threads=1)
    try:
        peer.fit(corpus.document_vectors)
    except ImportError as error:
        pytest.skip(f"{name}: {error}")
    settings = peer.sweep(quick=False)
    assert settings and peer.sweep(quick=True)
    peer.set_knob(**settings[-1])
    found = [peer.query(vector, defaults.K) for vector in corpus.query_vectors]
    assert all(len(rows) == defaults.K for rows in found)
    # int8 rounding may swap near-ties; float peers must match brute force exactly
    assert defaults.recall(found, corpus.truth) >= (0.97 if peer.quantized else 1.0)
    assert peer.nbytes() > 0


def test_harness_builds_measures_and_reports(corpus, tmp_path):
    rows, summary = defaults.run_corpus(corpus, tmp_path / "work", quick=True,
                                        peers=["faiss-flat", "sign-rescore"],
                                        build_flags=["--embedding-column", "vec"])
    ours = [r for r in rows if r["method"].startswith(defaults.OURS)]
    default = next(r for r in ours if r["setting"] == "default")
    assert default["build_s"] > 0 and default["bytes_per_doc"] > 0
    assert 0 <= default["recall@10"] <= 1
    assert len(ours) > 3  # the knobs were swept
    exact = next(r for r in rows if r["method"].startswith("FAISS IndexFlatIP"))
    assert exact["recall@10"] == 1.0
    out = tmp_path / "out"
    defaults.write_report(out, rows, {"tiny": summary}, {"tiny": corpus.source}, quick=True,
                          seconds=1.0)
    report = (out / "report.md").read_text()
    assert "## tiny" in report and "default query `search(q, k=10)`" in report
    assert (out / "defaults.png").stat().st_size > 0
    with open(out / "results.csv") as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)
