"""`hashindex bench` on a user's own labelled file: read like a build's input, embedded
through the build's cache (or from a vector column), split like the named datasets."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import FakeEmbedder, corpus, write_input

import hashindex.embedding.embedder
from hashindex.app.cli import main
from hashindex.errors import HashIndexError
from indexer.bench.datasets import UserDataset, load_user_dataset
from indexer.bench.run import BenchConfig, run_bench


@pytest.fixture(autouse=True)
def fake_text_model(monkeypatch):
    monkeypatch.setattr(hashindex.embedding.embedder, "Embedder", FakeEmbedder)


def labelled(tmp_path, n=400, fmt="jsonl", vectors=False, labels=None):
    docs = corpus(n)
    for i, d in enumerate(docs):
        if labels is not None:
            d["topic"] = labels[i % len(labels)]
        if vectors:
            d["vec"] = FakeEmbedder().embed([d["text"]])[0].tolist()
            del d["text"]
    return write_input(docs, tmp_path / "mine", fmt)


def config(tmp_path, dataset, **changes):
    return BenchConfig(**{"dataset": dataset, "methods": ("lsh", "itq"), "bits": (16,),
                          "out": tmp_path / "report", "cache_dir": tmp_path / "bench-cache",
                          "seeds": 1, "show_progress": False, **changes})


def test_bench_on_a_labelled_text_file(tmp_path, monkeypatch):
    source = labelled(tmp_path)
    monkeypatch.setenv("HASHINDEX_CACHE", str(tmp_path / "cache"))
    out = run_bench(config(tmp_path, UserDataset(str(source), "topic")))
    report = (out / "report.md").read_text()
    assert "mine.jsonl: 400 texts embedded with fake-bow-32, labels from column topic" in report
    assert "4 labels" in report and "| itq | 16 |" in report
    second = FakeEmbedder()
    again = load_user_dataset(UserDataset(str(source), "topic"), embedder=second,
                              cache_dir=tmp_path / "cache")
    assert second.calls == 0 and again.embeddings.shape == (400, 32)  # all from the cache


def test_bench_on_precomputed_vectors_needs_no_text(tmp_path):
    source = labelled(tmp_path, fmt="parquet", vectors=True)
    data = load_user_dataset(UserDataset(str(source), "topic", embedding_column="vec"))
    assert data.embeddings.shape == (400, 32) and len(data.label_names) == 4
    out = run_bench(config(tmp_path, UserDataset(str(source), "topic", embedding_column="vec")))
    assert "vectors from column vec" in (out / "report.md").read_text()


@pytest.mark.parametrize("case, fragment", [
    ("missing label column", "no column 'genre' for --label-column"),
    ("one label", "holds one label only ('all')"),
    ("too few documents", "needs at least 100 there"),
])
def test_bench_user_file_errors(tmp_path, case, fragment):
    if case == "missing label column":
        dataset = UserDataset(str(labelled(tmp_path)), "genre")
    elif case == "one label":
        dataset = UserDataset(str(labelled(tmp_path, labels=["all"])), "topic")
    else:
        dataset = UserDataset(str(labelled(tmp_path, n=60)), "topic")
    with pytest.raises(HashIndexError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        run_bench(config(tmp_path, dataset))


def test_bench_command_on_a_user_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HASHINDEX_CACHE", str(tmp_path / "cache"))
    source = labelled(tmp_path)
    run = lambda *a: CliRunner().invoke(main, [str(x) for x in a])  # noqa: E731
    result = run("bench", "--dataset", source, "--label-column", "topic", "--methods",
                 "itq,spectral", "--bits", "16,32", "--seeds", "1", "--out", tmp_path / "r",
                 "--quiet")
    assert result.exit_code == 0, result.output
    assert "| spectral | 32 |" in result.output
    result = run("bench", "--dataset", source, "--out", tmp_path / "r2")
    assert result.exit_code == 2 and "--label-column" in result.stderr


def test_spectral_hashing_gives_balanced_bits_that_keep_neighbours(clustered):
    from hashindex.baselines import create_method
    from hashindex.codes import hamming_distance_matrix

    points, labels = clustered
    method = create_method("spectral", 32, 0).fit(points)
    codes = method.encode(points)
    assert codes.shape == (len(points), 4)
    bits = np.unpackbits(codes, axis=1)
    assert 0.2 < bits.mean() < 0.8
    distances = hamming_distance_matrix(codes, codes)
    np.fill_diagonal(distances, 10**6)
    assert (labels[distances.argmin(axis=1)] == labels).mean() > 0.8  # chance is 1/8


def test_a_variant_with_other_options_is_its_own_method(tmp_path, clustered):
    from hashindex.baselines import create_method, describe_method

    method = create_method("ae:deep+hidden=32", 16, seed=0)
    assert method.options.hidden == (32,)
    assert describe_method("ae:deep+hidden=32").endswith("(hidden=32)")
    with pytest.raises(HashIndexError, match="no option"):
        create_method("ae:deep+noise=masking", 16, seed=0)
    with pytest.raises(HashIndexError, match="only ae:<variant> takes"):
        create_method("itq+bits=3", 16, seed=0)
    with pytest.raises(HashIndexError, match="no option"):
        run_bench(config(tmp_path, "synthetic", methods=("ae:vanilla+hidden=3",), size=500))
