"""The text model's runtimes: each gives unit-norm vectors close to torch fp32's, a text's
vector does not depend on its batch or on the number of workers, the cache keeps runtimes
apart, and an index embeds its queries the way it embedded its documents."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import FAST_TRAIN

from hashindex.app.cli import main
from hashindex.embedding.cache import EmbeddingCache, embed_with_cache
from hashindex.embedding.embedder import Embedder, EmbeddingSpec, length_sorted_batches
from hashindex.embedding.export import EXPORT_METHOD, LEGACY_EXPORT_METHOD, export_checksum
from hashindex.embedding.padding import padded_batches, padded_length
from hashindex.embedding.pool import split_sorted
from hashindex.engine import HashIndex
from hashindex.errors import HashIndexError
from hashindex.store.layout import EXPORTED_MODEL_FILE, TEXT_MODEL_DIR
from indexer.build import BuildConfig, build_index
from indexer.samples import bundled_sample_texts

TEXTS = bundled_sample_texts()
SAMPLE = TEXTS[:64]
CALIBRATION = TEXTS[-64:]  # other texts than the ones compared


@pytest.fixture(scope="module")
def reference():
    return Embedder(backend="torch").embed(SAMPLE)


def make(backend, quantize="none", **kwargs):
    return Embedder(backend=backend, quantize=quantize, calibration_texts=CALIBRATION,
                    **kwargs)


@pytest.mark.parametrize("backend, quantize, bound", [
    ("onnx", "none", 0.99), ("openvino", "none", 0.99), ("onnx", "int8", 0.97),
    ("openvino", "int8", 0.97)])
def test_runtime_is_close_to_torch_and_batch_invariant(reference, backend, quantize, bound):
    embedder = make(backend, quantize)
    vectors = embedder.embed(SAMPLE)
    assert vectors.shape == (len(SAMPLE), 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosine = np.sum(vectors * reference, axis=1)
    assert cosine.mean() >= bound and np.percentile(cosine, 1) >= bound - 0.02, cosine.mean()
    # the same text alone, and in a batch of other lengths, gives the same vector (exactly:
    # each text is padded to a length of its own, padding.py)
    alone = np.stack([embedder.embed([text])[0] for text in SAMPLE])
    mixed = embedder.embed(SAMPLE[:6][::-1] + TEXTS[200:230])[:6][::-1]
    assert np.array_equal(alone, vectors)
    assert np.array_equal(mixed, vectors[:6])


def test_length_bucketing_keeps_the_order(reference):
    one_by_one = Embedder(backend="torch", batch_size=1).embed(SAMPLE[:12])
    assert np.allclose(one_by_one, reference[:12], atol=2e-5)


def test_token_budget_batches_cover_every_row_once_within_bounds(reference):
    texts = ["x" * n for n in (5, 3000, 40, 900, 12, 2000, 7, 600)] * 5
    batches = length_sorted_batches(texts, size=4, tokens=600, longest=256)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(len(texts)))
    lengths = [len(texts[i]) for i in rows]
    assert lengths == sorted(lengths)  # shortest first
    for batch in batches:
        estimate = min(256, max(len(texts[i]) for i in batch) // 4 + 2)
        assert len(batch) <= 4 and (len(batch) == 1 or len(batch) * estimate <= 600)
    assert max(len(b) for b in batches) == 4 and min(len(b) for b in batches) < 4
    # the vectors do not depend on how the texts were batched
    unbounded = make("openvino", "int8", batch_tokens=0).embed(SAMPLE)
    tight = make("openvino", "int8", batch_tokens=64).embed(SAMPLE)
    assert np.allclose(unbounded, tight, atol=2e-5)
    assert np.sum(tight * reference, axis=1).mean() >= 0.99


def test_token_vectors_do_not_depend_on_the_batch_either():
    """A sequence variant reads token vectors: a query alone gets its document's exactly."""
    embedder = make("openvino", "int8")
    texts = SAMPLE[:24] + TEXTS[200:240]  # long and short texts together: padding in a batch
    pooled, tokens, lengths = embedder.embed_tokens(texts, 24)
    for i in range(24):
        alone = embedder.embed_tokens([texts[i]], 24)
        assert np.array_equal(alone[0][0], pooled[i]) and np.array_equal(alone[1][0], tokens[i])
        assert alone[2][0] == lengths[i]
    assert np.array_equal(pooled, embedder.embed(texts))


def test_padded_lengths_depend_on_the_text_alone():
    assert [padded_length(n, 256) for n in (1, 16, 17, 33, 65, 129, 250, 256)] == \
        [1, 16, 18, 36, 72, 144, 256, 256]
    assert padded_length(300, 256) == 300 and padded_length(20, 16) == 20
    batches = padded_batches([5, 40, 7, 38, 5, 200], size=2, tokens=0, longest=256)
    assert [(n, rows.tolist()) for n, rows in batches] == \
        [(5, [0, 4]), (7, [2]), (40, [1, 3]), (208, [5])]
    capped = [rows.tolist() for _, rows in padded_batches([9] * 7, 64, 20, 256)]
    assert sorted(sum(capped, [])) == list(range(7)) and all(len(r) <= 2 for r in capped)


def test_legacy_indexes_keep_the_export_they_were_checked_against():
    """Indexes from before the attention trace was recorded were exported with torch's
    default trace: their records map to it, and it differs from today's export."""
    legacy = EmbeddingSpec.from_record("sentence-transformers/all-MiniLM-L6-v2",
                                       {"backend": "onnx", "quantize": "none"})
    assert legacy.export_method == LEGACY_EXPORT_METHOD
    assert EmbeddingSpec.from_record(legacy.model, legacy.to_dict()).export_method == ""
    old, new = Embedder.from_spec(legacy), Embedder(backend="onnx")
    assert new.export_method == EXPORT_METHOD and new.spec.to_dict()["export_method"]
    assert old.exported_file != new.exported_file
    assert export_checksum(old.exported_file) != export_checksum(new.exported_file)
    assert old.cache_name != new.cache_name
    assert np.allclose(old.embed(SAMPLE[:8]), new.embed(SAMPLE[:8]), atol=1e-4)


def test_workers_give_the_vectors_one_process_gives():
    texts = TEXTS[300:400]
    single = make("openvino", batch_size=16).embed(texts)
    pooled = make("openvino", batch_size=16, workers=2)
    try:
        vectors = pooled.embed(texts)
    finally:
        pooled.close()
    assert np.allclose(vectors, single, atol=2e-5)


def test_a_cached_pass_with_workers_gives_the_vectors_and_cut_counts_of_one(tmp_path):
    texts = TEXTS[400:700]  # more than one chunk of the cache, each whole to one worker
    single = make("openvino", max_tokens=24)
    expected, _ = embed_with_cache(texts, single, None)
    pooled = make("openvino", workers=2, max_tokens=24)
    try:
        cache = EmbeddingCache(tmp_path, pooled.cache_name)
        vectors, computed = embed_with_cache(texts, pooled, cache)
    finally:
        pooled.close()
    assert computed == len(set(texts))
    assert np.allclose(vectors, expected, atol=2e-5)
    assert pooled.truncated == single.truncated > 0


def test_a_sorted_call_is_split_into_contiguous_chunks_longest_first():
    ranges = split_sorted(1000, 2, 64)
    assert len(ranges) == 8 and ranges[0].stop == 1000 and ranges[-1].start == 0
    assert sorted(row for r in ranges for row in r) == list(range(1000))
    short = split_sorted(300, 2, 64)
    assert sum(len(r) for r in short) == 300 and all(len(r) >= 64 for r in short)


def test_truncation_is_counted():
    embedder = Embedder(backend="openvino", max_tokens=16)
    embedder.embed(SAMPLE)
    tokenizer = embedder._load()[0].tokenizer
    longer = sum(len(tokenizer(text)["input_ids"]) > 16 for text in SAMPLE)
    assert embedder.max_tokens == 16 and embedder.truncated == longer > 0
    # at the limit exactly is not cut; one token more is ([CLS] + 14 words + [SEP] = 16)
    before = embedder.truncated
    embedder.embed([" ".join(["word"] * 14), " ".join(["word"] * 15)])
    assert embedder.truncated == before + 1


def test_cache_keeps_runtimes_and_calibrations_apart(tmp_path):
    names = {make("torch").cache_name, make("onnx").cache_name, make("openvino").cache_name,
             make("openvino", "int8").cache_name,
             Embedder(backend="openvino", quantize="int8",
                      calibration_texts=TEXTS[:64]).cache_name}
    assert len(names) == 5
    paths = {EmbeddingCache(tmp_path, name).path for name in names}
    assert len(paths) == 5


def test_a_changed_export_is_refused():
    with pytest.raises(HashIndexError, match="differs from the one the index was built with"):
        make("openvino", expected_sha256="0" * 64).embed(["a text"])


def write_docs(path, texts):
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n"
                            for i, t in enumerate(texts)))
    return path


def test_int8_index_carries_its_model_and_finds_its_own_documents(tmp_path, monkeypatch):
    docs = write_docs(tmp_path / "docs.jsonl", TEXTS[:80])
    report = build_index(BuildConfig(input=str(docs), out=str(tmp_path / "idx"), bits=32,
                                     quantize="int8", calibrate_on_input=True,
                                     cache_dir=str(tmp_path / "cache"),
                                     show_progress=False), train_config=FAST_TRAIN)
    assert report.embedded == 80
    index = HashIndex.open(tmp_path / "idx")
    record = index.manifest.embedding
    assert record["backend"] == "openvino" and record["quantize"] == "int8"
    assert "80 documents from the first 80" in record["calibration"]
    assert (tmp_path / "idx" / TEXT_MODEL_DIR / EXPORTED_MODEL_FILE).exists()
    info = CliRunner().invoke(main, ["info", str(tmp_path / "idx")]).output
    assert "embedded by          openvino, quantize int8, calibrated on 80 documents" in info
    # a copy of the index on a machine whose cache is empty embeds queries the same way
    monkeypatch.setenv("HASHINDEX_CACHE", str(tmp_path / "empty-cache"))
    index = HashIndex.open(tmp_path / "idx")
    for row in (0, 17, 55):
        hit = index.search(TEXTS[row], k=1).hits[0]
        assert hit.distance == 0 and hit.id == f"d{row}"
    assert not (tmp_path / "empty-cache" / "exports").exists()  # nothing re-exported


def test_int8_is_calibrated_once_per_model_on_the_bundled_set(tmp_path):
    """Two corpora built with --quantize int8 share one export (calibrated on the bundled set,
    made by the first build, taken from the cache by the second); --calibrate-on-input makes
    its own."""
    cache = tmp_path / "cache"

    def exports():
        return sorted(p.name for p in (cache / "exports").iterdir())

    for name, texts in (("a", TEXTS[:40]), ("b", TEXTS[40:90])):
        docs = write_docs(tmp_path / f"{name}.jsonl", texts)
        build_index(BuildConfig(input=str(docs), out=str(tmp_path / name), bits=32,
                                quantize="int8", cache_dir=str(cache), show_progress=False),
                    train_config=FAST_TRAIN)
        record = HashIndex.open(tmp_path / name).manifest.embedding
        assert "bundled calibration set" in record["calibration"]
        if name == "a":
            first = exports()
    assert exports() == first  # the second corpus made no export of its own
    assert HashIndex.open(tmp_path / "a").manifest.embedding["model_sha256"] == \
        HashIndex.open(tmp_path / "b").manifest.embedding["model_sha256"]
    docs = write_docs(tmp_path / "c.jsonl", TEXTS[:50])
    build_index(BuildConfig(input=str(docs), out=str(tmp_path / "c"), bits=32, quantize="int8",
                            calibrate_on_input=True, cache_dir=str(cache),
                            show_progress=False), train_config=FAST_TRAIN)
    assert len(exports()) == len(first) + 1


def test_fp32_export_is_remade_and_checked_when_the_cache_is_gone(tmp_path, monkeypatch):
    docs = write_docs(tmp_path / "docs.jsonl", TEXTS[:60])
    build_index(BuildConfig(input=str(docs), out=str(tmp_path / "idx"), bits=32,
                            embed_backend="onnx", cache_dir=str(tmp_path / "cache"),
                            show_progress=False), train_config=FAST_TRAIN)
    monkeypatch.setenv("HASHINDEX_CACHE", str(tmp_path / "other-cache"))
    index = HashIndex.open(tmp_path / "idx")
    assert index.manifest.embedding["backend"] == "onnx"
    hit = index.search(TEXTS[7], k=1).hits[0]
    assert hit.distance == 0 and hit.id == "d7"
    assert index.embedder().backend == "onnx"
    # the same build with torch embeds everything again: its numbers are cached apart
    report = build_index(BuildConfig(input=str(docs), out=str(tmp_path / "idx2"), bits=32,
                                     embed_backend="torch", cache_dir=str(tmp_path / "cache"),
                                     show_progress=False), train_config=FAST_TRAIN)
    assert report.embedded == 60


@pytest.mark.parametrize("flags, fragment", [
    (["--embed-backend", "bogus"], "--embed-backend 'bogus' is unknown"),
    (["--embed-backend", "torch", "--quantize", "int8"], "--quantize 'int8' is not available"),
    (["--quantize", "int4"], "--quantize 'int4' is not available"),
    (["--device", "cuda"], "--device cuda needs --embed-backend torch"),
    (["--embed-workers", "0"], "--embed-workers 0 must be at least 1"),
])
def test_bad_runtime_flags_are_one_line(tmp_path, flags, fragment):
    docs = write_docs(tmp_path / "docs.jsonl", TEXTS[:5])
    result = CliRunner().invoke(main, ["build", str(docs), "--out", str(tmp_path / "idx"),
                                       "--quiet", *flags])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], lines
    assert not (tmp_path / "idx").exists()


def test_a_dead_worker_is_one_error():
    import os
    import signal

    pooled = make("openvino", batch_size=8, workers=2)
    try:
        pooled.embed(TEXTS[:40])
        victim = next(iter(pooled._pool.executor._processes))
        os.kill(victim, signal.SIGKILL)
        with pytest.raises(HashIndexError, match="an embedding worker died"):
            pooled.embed(TEXTS[40:80])
    finally:
        pooled.close()


def test_workers_stop_when_their_parent_is_killed(tmp_path):
    """A build killed with -9 cannot stop its pool: each worker notices and ends, instead of
    waiting forever with its model loaded."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from hashindex.embedding.embedder import Embedder\n"
        "if __name__ == '__main__':\n"
        "    texts = [line for line in open(sys.argv[1]).read().split('\\n') if line]\n"
        "    pooled = Embedder(backend='openvino', batch_size=8, workers=2)\n"
        "    pooled.embed(texts)\n"
        "    print(*pooled._pool.executor._processes, flush=True)\n"
        "    time.sleep(600)\n")
    (tmp_path / "texts.txt").write_text("\n".join(t.replace("\n", " ") for t in TEXTS[:40]))
    parent = subprocess.Popen([sys.executable, str(script), str(tmp_path / "texts.txt")],
                              stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    workers = []
    try:
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(workers) == 2
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 60
        while any(alive(pid) for pid in workers):
            assert time.monotonic() < deadline, "an embedding worker outlived its parent"
            time.sleep(0.2)
    finally:
        parent.kill()
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper has ended)."""
    from pathlib import Path

    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except FileNotFoundError:
        return False


def test_an_export_killed_midway_is_cleaned_up_by_the_next(tmp_path):
    """kill -9 while the model is being exported: no index, no export published; the next
    build removes the dead export's folder, exports again and publishes."""
    import os
    import subprocess
    import sys

    from hashindex.faults import KILL_AT

    docs = write_docs(tmp_path / "docs.jsonl", TEXTS[:20])
    command = [sys.executable, "-m", "hashindex.app.cli", "build", str(docs), "--out",
               str(tmp_path / "idx"), "--bits", "16", "--epochs", "1", "--quiet",
               "--embed-backend", "onnx", "--cache-dir", str(tmp_path / "cache")]
    killed = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={**os.environ, KILL_AT: "export"})
    assert killed.returncode == -9, killed.stderr
    exports = tmp_path / "cache" / "exports"
    assert [p for p in exports.iterdir() if ".tmp-" in p.name]
    assert not (tmp_path / "idx").exists()
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "left by a build that died" in again.stderr
    assert [p.name for p in exports.iterdir()] == [next(exports.iterdir()).name]
    assert (next(exports.iterdir()) / "model.onnx.sha256").exists()
    hits = HashIndex.open(tmp_path / "idx").search(TEXTS[3], k=20).hits
    assert any(h.id == "d3" and h.distance == 0 for h in hits)


def test_auto_quantization_is_int8_where_the_runtime_takes_it():
    def config(**changes):
        return BuildConfig(input="in.jsonl", out="out", **changes)

    assert config().quantize == "none" and config().quantization == "none"  # the default
    assert config(quantize="auto").quantization == "int8"
    assert config(embed_backend="onnx", quantize="auto").quantization == "int8"
    assert config(embed_backend="torch", quantize="auto").quantization == "none"  # no int8
    config(embed_backend="torch").check()  # the default is valid with every runtime
    assert config(quantize="none").quantization == "none"
    assert Embedder(backend="torch", quantize="auto").quantize == "none"
