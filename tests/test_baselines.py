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
    if name.startswith("ae:"):
        from hashindex.config import TrainConfig

        method.fit = lambda x, m=method: fit_fast(m, x, TrainConfig(epochs=2, show_progress=False))
    codes = method.fit(points).encode(points)
    expected_bytes = points.shape[1] // 8 if name == "sign" else 2
    assert codes.shape == (len(points), expected_bytes) and codes.dtype == np.uint8


def fit_fast(method, points, config):
    from hashindex.config import ModelConfig
    from hashindex.training import train

    small = ModelConfig(concrete_features=8, sparse_k=8, rbm_epochs=2)
    method.model = train(points, method.variant, method.bits, config, small).model
    return method


def test_itq_reduces_quantization_loss():
    rng = np.random.default_rng(0)
    projected = rng.normal(size=(500, 16)) @ rng.normal(size=(16, 16))
    _, losses = itq_rotation(projected, 30, seed=0)
    assert losses[-1] < losses[0]
    assert all(b <= a + 1e-6 for a, b in zip(losses, losses[1:]))


def test_unknown_method():
    with pytest.raises(HashIndexError, match="unknown method 'nope'"):
        create_method("nope", 16, 0)


def test_tiny_bench_writes_table_csv_and_plots(tmp_path):
    from indexer.bench.run import run_bench

    out = run_bench("synthetic", ["lsh", "itq"], [16], 1, tmp_path / "out", tmp_path / "cache",
                    size=1500, show_progress=False)
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
        out = run_bench("synthetic", ["lsh", "itq"], [16], 1, tmp_path / f"out{jobs}",
                        tmp_path / "cache", size=1200, show_progress=False, jobs=jobs)
        rows = (out / "results.csv").read_text().splitlines()
        fit_column = rows[0].split(",").index("fit_seconds")
        return [",".join(v for i, v in enumerate(r.split(",")) if i != fit_column) for r in rows]

    assert table(2) == table(1)
