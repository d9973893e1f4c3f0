"""The packaged text model loads offline and gives unit-norm 384-d embeddings."""

import numpy as np

from hashindex.embedding.embedder import DEFAULT_MODEL, Embedder, resolve_model_path


def test_packaged_minilm_loads_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model_path(DEFAULT_MODEL) != DEFAULT_MODEL  # a local folder, not the hub
    embedder = Embedder("all-MiniLM-L6-v2")
    assert embedder.name == DEFAULT_MODEL
    vectors = embedder.embed(["open a gzip file", "read a compressed file", "launch a rocket"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_loading_draws_no_weights_bar_and_keeps_the_setting(monkeypatch, capfd):
    from transformers.utils import logging as transformers_logging

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    transformers_logging.enable_progress_bar()
    Embedder(DEFAULT_MODEL).embed(["one text"])
    assert "Loading weights" not in capfd.readouterr().err
    assert transformers_logging.is_progress_bar_enabled()
