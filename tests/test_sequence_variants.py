"""The sequence variants (convolutional, recurrent) over token embeddings: shapes, save/load,
training, a build whose documents find themselves by their own text, the living index and the
errors for inputs without text."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import FAST_TRAIN, FakeEmbedder, build, corpus, vector_docs, write_input

import hashindex.embedding.embedder
import indexer.build.text_model
from hashindex.app.cli import main
from hashindex.engine import HashIndex, Like
from hashindex.errors import HashIndexError
from hashindex.model_io import load_model, save_model
from hashindex.models import create_model
from hashindex.models.config import ModelConfig
from hashindex.models.options import ConvolutionalOptions, RecurrentOptions
from hashindex.models.sequence import pack
from hashindex.training import TrainConfig, train

VARIANTS = {"convolutional": ConvolutionalOptions(max_tokens=10, channels=24),
            "recurrent": RecurrentOptions(max_tokens=10, channels=12)}


def sequences(n=120, steps=10, d=16, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.normal(size=(n, steps, d)).astype(np.float32)
    lengths = rng.integers(2, steps + 1, n)
    for i, length in enumerate(lengths):
        tokens[i, length:] = 0
    pooled = tokens.sum(axis=1) / lengths[:, None]
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    return pooled.astype(np.float32), tokens, lengths


@pytest.mark.parametrize("variant", VARIANTS)
def test_shapes_training_and_save_load(variant, tmp_path):
    pooled, tokens, lengths = sequences()
    rows = pack(pooled, tokens, lengths)
    model = create_model(ModelConfig(variant, 16, 16, VARIANTS[variant]))
    model.fit_normalization(torch.from_numpy(rows))
    out = model(torch.from_numpy(rows[:5]))
    assert out["logits"].shape == (5, 16) and out["reconstruction"].shape == (5, 16)
    result = train(rows, variant, 16, TrainConfig(epochs=8, show_progress=False),
                   VARIANTS[variant], input_dim=16)
    first, last = result.history[0], result.history[-1]
    assert last["reconstruction"] < first["reconstruction"]
    if variant == "convolutional":  # both of its terms are reported
        assert {"pooled_reconstruction", "token_reconstruction"} <= set(last)
    codes = result.model.export_encoder().encode_tokens(pooled, tokens, lengths)
    assert codes.shape == (120, 2) and codes.dtype == np.uint8
    save_model(result.model, tmp_path / "model")
    assert not (tmp_path / "model" / "code_encoder.npz").exists()
    again = load_model(tmp_path / "model").export_encoder()
    assert (again.encode_tokens(pooled, tokens, lengths) == codes).all()
    # padding beyond a text's length never changes its code
    noisy = tokens.copy()
    for i, length in enumerate(lengths):
        noisy[i, length:] = 5.0
    assert (again.encode_tokens(pooled, noisy, lengths) == codes).all()


@pytest.mark.parametrize("kernel", [1, 2, 4, 5])
def test_any_kernel_width_keeps_the_sequence_length(kernel):
    pooled, tokens, lengths = sequences(n=6)
    model = create_model(ModelConfig("convolutional", 16, 16, ConvolutionalOptions(
        max_tokens=10, channels=8, kernel=kernel)))
    out = model(torch.from_numpy(pack(pooled, tokens, lengths)))
    assert out["logits"].shape == (6, 16) and torch.isfinite(model.loss_function(out)["loss"])


@pytest.fixture()
def fake_text_model(monkeypatch):
    monkeypatch.setattr(indexer.build.text_model, "Embedder", FakeEmbedder)
    monkeypatch.setattr(hashindex.embedding.embedder, "Embedder", FakeEmbedder)


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_document_finds_itself_by_its_own_text(variant, tmp_path, fake_text_model):
    docs = corpus(90)
    source = write_input(docs, tmp_path / "docs", "jsonl")
    result = CliRunner().invoke(main, [
        "build", str(source), "--out", str(tmp_path / "idx"), "--id-column", "doc",
        "--variant", variant, "--bits", "32", "--epochs", "6", "--store-embeddings",
        "--quiet", "--no-cache", "--option", "max_tokens=8", "--option", "channels=16"])
    assert result.exit_code == 0, result.output
    index = HashIndex.open(tmp_path / "idx")
    assert index.manifest.variant == variant and index.encoder.reads_tokens
    for doc in docs[::13]:  # the build's code and the query's are the same
        hit = index.search(doc["text"], k=1, backend="flat").hits[0]
        assert hit.distance == 0
    batch = index.search_batch([d["text"] for d in docs[:5]], k=1)
    assert all(r.hits[0].distance == 0 for r in batch)
    liked = index.search(Like(docs[4]["doc"]), k=3)
    assert docs[4]["doc"] not in [h.id for h in liked.hits]
    assert liked.reranked  # by the stored embedding, around the stored code
    with pytest.raises(HashIndexError, match="query it with text or a code"):
        index.search(np.ones(32, np.float32), k=3)
    more = write_input(corpus(100)[90:], tmp_path / "more", "jsonl")
    added = CliRunner().invoke(main, ["add", str(tmp_path / "idx"), str(more), "--quiet"])
    assert added.exit_code == 0, added.output
    grown = HashIndex.open(tmp_path / "idx")
    text = corpus(100)[95]["text"]
    assert grown.search(text, k=1).hits[0].distance == 0 and len(grown) == 100


def test_inputs_without_text_are_refused(tmp_path):
    vectors = write_input(vector_docs(20, "v"), tmp_path / "vectors", "parquet")
    for variant in VARIANTS:
        with pytest.raises(HashIndexError, match="reads the text model's token embeddings"):
            build(vectors, tmp_path / variant, embedding_column="vec", variant=variant)
    result = CliRunner().invoke(main, ["build", str(tmp_path / "docs.jsonl"), "--out",
                                       str(tmp_path / "r"), "--variant", "recurrent",
                                       "--engine", "ray"])
    assert result.exit_code == 2 and "build it with --engine local" in result.stderr


class CountingEmbedder(FakeEmbedder):
    def __init__(self):
        super().__init__()
        self.token_texts = []

    def embed_tokens(self, texts, max_tokens):
        self.token_texts.append(len(texts))
        return super().embed_tokens(texts, max_tokens)


def test_training_keeps_a_bounded_sample(tmp_path, fake_text_model):
    """Tokens of the first train_documents texts are kept for training; encoding embeds the
    tokens again batch by batch (batches of 25 here) and never holds them all."""
    source = write_input(corpus(80), tmp_path / "docs", "jsonl")
    embedder = CountingEmbedder()
    report = build(source, tmp_path / "idx", embedder, variant="convolutional",
                   variant_options=ConvolutionalOptions(max_tokens=6, channels=8,
                                                        train_documents=30),
                   train_config=FAST_TRAIN, batch_rows=25)
    assert report.documents == 80
    assert embedder.token_texts == [25, 5, 25, 25, 25, 5]  # the sample, then each batch
    assert HashIndex.open(tmp_path / "idx").manifest.model["options"]["train_documents"] == 30


def test_bench_runs_the_sequence_variants_on_a_text_dataset(tmp_path, monkeypatch):
    import hashindex.baselines.autoencoder as autoencoder
    from indexer.bench.run import DEFAULT_METHODS, BenchConfig, run_bench

    assert not any(m in DEFAULT_METHODS for m in ("ae:convolutional", "ae:recurrent"))
    monkeypatch.setattr(autoencoder, "TrainConfig",
                        lambda **kw: TrainConfig(epochs=2, max_train_docs=400, **kw))
    out = run_bench(BenchConfig(dataset="stdlib-docs", methods=("ae:convolutional",
                                                                 "ae:recurrent", "itq"),
                                bits=(16,), out=tmp_path / "report",
                                cache_dir=tmp_path / "cache", seeds=1, show_progress=False),
                    embedder=FakeEmbedder())
    report = (out / "report.md").read_text()
    assert "| ae:convolutional | 16 |" in report and "| ae:recurrent | 16 |" in report
    assert "Runs that failed" not in report
    assert "- `ae:recurrent`: autoencoder: a bidirectional GRU" in report
