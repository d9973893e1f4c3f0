"""Hashing methods: requested code lengths, ITQ's falling loss, and a tiny end-to-end bench."""

import numpy as np
import pytest

from hashindex.baselines import METHODS, create_method
from hashindex.baselines.itq import itq_rotation
from hashindex.errors import HashIndexError


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_returns_requested_bits(name, clustered):
    points, _ = clustered
    method = create_method(name, 16, seed=0)
    if name.startswith("ae:"):  # the method's own fit, with a short schedule and small layers
        from hashindex.models import VARIANTS
        from hashindex.training import TrainConfig

        method.train_config = TrainConfig(epochs=2, show_progress=False)
        options = VARIANTS[method.variant].options
        small = {"concrete_features": 8, "sparse_k": 8, "rbm_epochs": 2}
        method.options = options(**{k: v for k, v in small.items() if k in options.names()})
    if method.reads_tokens:  # a sequence variant fits packed token rows: three tokens each
        from hashindex.models.sequence import pack

        tokens = np.stack([points, np.roll(points, 1, axis=0), np.roll(points, 2, axis=0)], 1)
        points = pack(points, tokens, np.full(len(points), 3))
        method.options = type(method.options)(max_tokens=3, channels=8)
    codes = method.fit(points).encode(points)
    expected_bytes = points.shape[1] // 8 if name == "sign" else 2
    assert codes.shape == (len(points), expected_bytes) and codes.dtype == np.uint8
    if name.startswith("ae:"):
        assert method.model.config.variant == method.variant
        assert method.model.options == method.options


def test_itq_reduces_quantization_loss():
    rng = np.random.default_rng(0)
    projected = rng.normal(size=(500, 16)) @ rng.normal(size=(16, 16))
    _, losses = itq_rotation(projected, 30, seed=0)
    assert losses[-1] < losses[0]
    assert all(b <= a + 1e-6 for a, b in zip(losses, losses[1:]))


def test_unknown_method():
    with pytest.raises(HashIndexError, match="unknown method 'nope'"):
        create_method("nope", 16, 0)


def bench_config(tmp_path, out="out", **changes):
    from indexer.bench.run import BenchConfig

    return BenchConfig(**{"dataset": "synthetic", "methods": ("lsh", "itq"), "bits": (16,),
                          "out": tmp_path / out, "cache_dir": tmp_path / "cache", "seeds": 1,
                          "size": 1500, "show_progress": False, **changes})


def test_tiny_bench_writes_table_csv_and_plots(tmp_path):
    from indexer.bench.run import run_bench

    out = run_bench(bench_config(tmp_path))
    for name in ("report.md", "results.csv", "engine.csv", "precision_vs_bits.png",
                 "recall_vs_touched.png"):
        assert (out / name).stat().st_size > 0, name
    report = (out / "report.md").read_text()
    assert "| lsh | 16 |" in report and "| itq | 16 |" in report
    assert "exact float cosine" in report
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0].startswith("method,bits,seed") and len(rows) == 3


def test_tuning_split_never_contains_query_documents(clustered):
    from indexer.bench.protocol import make_split, tuning_split

    points, labels = clustered
    outer = make_split(points, labels)
    inner = tuning_split(outer)
    as_rows = lambda a: {row.tobytes() for row in a}  # noqa: E731
    seen = as_rows(inner.database) | as_rows(inner.queries)
    assert seen <= as_rows(outer.database)
    assert not seen & as_rows(outer.queries)
    assert len(inner.database) + len(inner.queries) == len(outer.database)
    assert "tuning split" in inner.description


def test_parallel_bench_equals_serial(tmp_path):
    from indexer.bench.run import run_bench

    def table(jobs):
        out = run_bench(bench_config(tmp_path, f"out{jobs}", size=1200, jobs=jobs))
        rows = (out / "results.csv").read_text().splitlines()
        header = rows[0].split(",")
        timed = {header.index("fit_seconds"), header.index("encode_seconds")}
        return [",".join(v for i, v in enumerate(r.split(",")) if i not in timed) for r in rows]

    assert table(2) == table(1)


def test_short_rankings_are_padded_with_what_can_never_match():
    """A search that finds fewer than 10 candidates must not count invented hits: np.resize
    padded an empty result with zeros, so document 0 counted as found when it was a true
    neighbour that no search had returned."""
    from hashindex.metrics import recall_at_k
    from indexer.bench.protocol import NOT_RETRIEVED, pad_ranking

    true = np.array([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]])
    nothing = np.zeros(0, dtype=np.int64)
    assert pad_ranking(nothing, 10).tolist() == [NOT_RETRIEVED] * 10
    assert recall_at_k(pad_ranking(nothing, 10)[None], true, 10) == 0.0
    assert recall_at_k(np.resize(nothing, 10)[None], true, 10) == pytest.approx(0.1)  # the bug
    found = np.array([7, 3, 12])
    assert pad_ranking(found, 10).tolist() == [7, 3, 12] + [NOT_RETRIEVED] * 7
    assert recall_at_k(pad_ranking(found, 10)[None], true, 10) == pytest.approx(0.2)


def test_engine_metrics_with_fewer_candidates_than_k(monkeypatch):
    """Queries whose Hamming ball is capped at radius 0 find few or no candidates: recall
    counts only the documents really retrieved."""
    from indexer.bench import protocol

    rng = np.random.default_rng(0)
    database = rng.normal(size=(40, 8)).astype(np.float32)
    queries = -database[:3]  # every code bit flipped: nothing at radius 0
    true = np.argsort(-(queries @ database.T), axis=1)[:, :100]
    true[:, 0] = 0  # document 0 is every query's nearest neighbour
    split = protocol.Split(database, queries, np.zeros(40, int), np.zeros(3, int), true, 40, "")
    codes = np.packbits(database > 0, axis=1)
    query_codes = np.packbits(queries > 0, axis=1)

    table_class = protocol.backend_class("table")

    class RadiusZeroTable(table_class):
        def search(self, code, wanted, max_radius, options=None):
            return super().search(code, wanted, 0)

    monkeypatch.setattr(protocol, "backend_class", lambda name: RadiusZeroTable)
    rows = protocol.engine_metrics(codes, query_codes, 8, split)
    assert len(rows) == 1 + len(protocol.RERANK_BUDGETS)  # plain top-10, then each budget
    assert all(row["engine_recall@10"] == 0.0 for row in rows), rows


def test_build_rate_adds_the_embedding_the_fit_and_the_encode():
    from indexer.bench.report import build_rates

    pooled = [{"documents": 1000, "fit_seconds": 2.0, "encode_seconds": 0.5, "embed_passes": 1}]
    assert build_rates(pooled, 500.0) == "2,000 | 222"  # 1000 / (2 + 2 + 0.5)
    tokens = [{**pooled[0], "embed_passes": 2}]  # a sequence variant embeds every text twice
    assert build_rates(tokens, 500.0) == "2,000 | 154"  # 1000 / (4 + 2 + 0.5)
    assert build_rates(pooled, None) == "2,000 | —"
    assert build_rates([{"fit_seconds": 1.0}], 500.0) == "— | —"
