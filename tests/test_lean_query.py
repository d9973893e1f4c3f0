"""A text query's lean path (embedding/lean.py: tokenizers, the export, numpy pooling) gives
the vectors sentence-transformers' own modules give, finds every document's own text at
distance 0, and a query through it imports neither torch nor sentence-transformers (nor
pandas, which pyarrow's `pa.array` would pull in)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import FAST_TRAIN

from hashindex.embedding.embedder import Embedder, resolve_model_path
from hashindex.embedding.lean import lean_layout, pool
from hashindex.engine import HashIndex
from indexer.build import BuildConfig, build_index
from indexer.samples import bundled_sample_texts

TEXTS = bundled_sample_texts()
TRICKY = ["", "   padded on both sides   ", "UPPER case Words", "naïve café — ünïcode ✓",
          "tabs\tand\nnewlines", " ".join(["a long text to be cut"] * 120)]
CALIBRATION = TEXTS[-64:]


@pytest.mark.parametrize("backend, quantize", [("openvino", "none"), ("onnx", "none"),
                                               ("openvino", "int8")])
def test_lean_vectors_are_sentence_transformers_vectors(backend, quantize):
    texts = TEXTS[:48] + TRICKY
    full = Embedder(backend=backend, quantize=quantize, calibration_texts=CALIBRATION)
    expected = full.embed(texts)
    lean = Embedder(backend=backend, quantize=quantize, calibration_texts=CALIBRATION,
                    lean=True)
    got = lean.embed(texts)
    assert lean._model is None  # sentence-transformers was not loaded
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=2e-6)
    assert lean.truncated == full.truncated == 1


def test_lean_path_finds_every_document_at_distance_zero_without_torch(tmp_path):
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n"
                            for i, t in enumerate(TEXTS[:120])))
    build_index(BuildConfig(input=str(docs), out=str(tmp_path / "idx"), bits=64,
                            show_progress=False), train_config=FAST_TRAIN)
    index = HashIndex.open(tmp_path / "idx")
    queried = index.embed_texts(TEXTS[:120])
    assert index.embedder()._model is None  # the lean path ran
    codes = index.encoder.encode(np.stack([q.embedding for q in queried]))
    assert np.array_equal(codes, index.all_codes())
    script = ("import sys; from hashindex.engine import HashIndex; "
              f"hits = HashIndex.open({str(tmp_path / 'idx')!r}).search({TEXTS[7]!r}, k=1).hits; "
              "assert hits[0].id == 'd7' and hits[0].distance == 0, hits; "
              "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'pandas') "
              "if m in sys.modules]; assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_layouts_lean_cannot_follow_go_through_sentence_transformers(tmp_path):
    assert lean_layout(resolve_model_path("all-MiniLM-L6-v2")).pooling == "mean_tokens"
    folder = tmp_path / "model"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "tokenizer.json").write_text("{}")
    (folder / "sentence_bert_config.json").write_text('{"max_seq_length": 128}')
    (folder / "1_Pooling" / "config.json").write_text(
        '{"word_embedding_dimension": 8, "pooling_mode_mean_tokens": true}')
    modules = [{"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    (folder / "modules.json").write_text(json.dumps(modules))
    assert lean_layout(folder).max_seq_length == 128
    dense = {"idx": 2, "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
    (folder / "modules.json").write_text(json.dumps(modules + [dense]))
    assert lean_layout(folder) is None
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling" / "config.json").write_text(
        '{"word_embedding_dimension": 8, "pooling_mode_mean_tokens": true, '
        '"pooling_mode_max_tokens": true}')
    assert lean_layout(folder) is None  # two modes concatenated: not followed


def test_pooling_modes_match_their_definitions():
    states = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    mask = np.array([[1, 1, 0], [1, 1, 1]])
    assert np.array_equal(pool(states, mask, "cls_token"), states[:, 0])
    assert np.allclose(pool(states, mask, "mean_tokens")[0], states[0, :2].mean(axis=0))
    assert np.allclose(pool(states, mask, "max_tokens")[0], states[0, 1])
    assert np.allclose(pool(states, mask, "mean_sqrt_len_tokens")[1],
                       states[1].sum(axis=0) / np.sqrt(3))
