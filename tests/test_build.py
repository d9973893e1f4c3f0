"""indexer.build: every input format, what lands in the index, atomicity and the cache."""

import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import SEGMENT, FakeEmbedder, build, corpus, write_input

from hashindex.codes import hamming_distance
from hashindex.encoding import encode_codes
from hashindex.engine import HashIndex
from hashindex.errors import HashIndexError
from hashindex.model_io import load_model
from hashindex.models import DEFAULT_VARIANT
from hashindex.store.layout import FAISS_INDEX_FILE as INDEX_FILE
from hashindex.store.manifest import read_manifest


def read_shards(index):
    return pq.read_table(sorted((index / SEGMENT / "shards").glob("*.parquet"))).to_pylist()


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv", "textdir"])
def test_build_from_each_format(tmp_path, fmt):
    docs = corpus(90)
    source = write_input(docs, tmp_path / "input", fmt)
    embedder = FakeEmbedder()
    id_column = None if fmt == "textdir" else "doc"
    report = build(source, tmp_path / "index", embedder, id_column=id_column, shard_rows=40,
                   store_embeddings=True)
    index = tmp_path / "index"
    assert report.documents == 90
    rows = read_shards(index)
    assert len(rows) == 90 and len(list((index / SEGMENT / "shards").glob("*.parquet"))) == 3
    by_text = {d["text"]: d for d in docs}
    for row in rows:
        original = by_text[row["text"]]
        if fmt == "textdir":
            assert row["id"] == f"{original['topic']}/{original['doc']}.txt"
        else:
            assert row["id"] == original["doc"]
            assert row["topic"] == original["topic"] and row["year"] == original["year"]

    # the code column equals the encoder's codes for the same texts
    model = load_model(index / "encoder")
    expected = encode_codes(model, embedder.embed([r["text"] for r in rows]))
    codes = np.array([np.frombuffer(r["code"], dtype=np.uint8) for r in rows])
    assert np.array_equal(codes, expected)
    vectors = HashIndex.open(index).vectors  # int8 with a scale per row, by row
    assert vectors.dtype == "int8" and len(vectors) == 90
    stored = vectors.rows(np.arange(90))
    assert np.allclose(stored, embedder.embed([r["text"] for r in rows]), atol=1 / 127)

    # the table's buckets equal a brute-force grouping of the codes
    opened = HashIndex.open(index)
    table = opened.backend("table").table
    brute: dict[bytes, list[int]] = {}
    for row_id, code in enumerate(codes):
        brute.setdefault(code.tobytes(), []).append(row_id)
    got = {code.tobytes(): sorted(table.rows_of_buckets(np.array([b])).tolist())
           for b, code in enumerate(table.bucket_codes())}
    assert got == brute

    # the FAISS index holds every code, in row order
    faiss_index = opened.backend("flat").index
    assert faiss_index.ntotal == 90
    assert np.array_equal(faiss_index.reconstruct_n(0, 90), codes)


def test_manifest_describes_the_build(tmp_path):
    source = write_input(corpus(30), tmp_path / "in", "jsonl")
    build(source, tmp_path / "index", FakeEmbedder(), backend="hash")
    manifest = read_manifest(tmp_path / "index")
    assert manifest.documents == 30 and manifest.bits == 16
    assert manifest.backend == "hash" and manifest.variant == DEFAULT_VARIANT
    assert (manifest.embedding_model, manifest.dimension) == ("fake-bow-32", 32)
    assert manifest.metadata_columns == ["topic", "year"]
    assert manifest.backend_options == {"prefix_bits": 20}
    assert set(manifest.files) >= {"encoder/config.json", "encoder/model.safetensors",
                                      *(f"{SEGMENT}/{name}" for name in (
                                          "shards/part-00000.parquet", "table/keys.npy",
                                          "table/rows.npy", f"faiss/{INDEX_FILE}",
                                          "faiss/ids.npy"))}


@pytest.mark.parametrize("victim", [f"{SEGMENT}/shards/part-00000.parquet",
                                    f"{SEGMENT}/table/rows.npy", f"{SEGMENT}/faiss/{INDEX_FILE}"])
@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corruption_is_reported_by_name(tmp_path, victim, damage):
    source = write_input(corpus(30), tmp_path / "in", "jsonl")
    build(source, tmp_path / "index", FakeEmbedder())
    path = tmp_path / "index" / victim
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    path.write_bytes(bytes(data))
    # a truncation is seen by every open (sizes); a flipped byte by the sha256 pass (verify)
    with pytest.raises(HashIndexError, match=victim.split("/")[-1]):
        HashIndex.open(tmp_path / "index", verify=damage == "flip")


def test_failure_mid_write_keeps_previous_index(tmp_path, monkeypatch):
    source = write_input(corpus(40), tmp_path / "in", "jsonl")
    build(source, tmp_path / "index", FakeEmbedder())
    before = read_manifest(tmp_path / "index")

    import hashindex.store.shard_writer as shard_writer

    def explode(self, *args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(shard_writer.ShardWriter, "write", explode)
    with pytest.raises(RuntimeError, match="disk on fire"):
        build(source, tmp_path / "index", FakeEmbedder(), bits=32, overwrite=True)
    assert read_manifest(tmp_path / "index") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "index"]


def test_rebuild_reuses_embedding_cache(tmp_path):
    source = write_input(corpus(50), tmp_path / "in", "jsonl")
    first = FakeEmbedder()
    report = build(source, tmp_path / "a", first, cache_dir=tmp_path / "cache")
    assert first.texts == 50 and report.embedded == 50
    second = ModelNeverLoaded()
    report = build(source, tmp_path / "b", second, cache_dir=tmp_path / "cache", bits=32,
                   variant="vanilla")
    assert second.calls == 0 and report.embedded == 0
    assert report.documents == 50


class ModelNeverLoaded(FakeEmbedder):
    """Asking a real embedder for its dimension loads the model: a cached rebuild must not."""

    @property
    def dimension(self):
        raise AssertionError("the text model was loaded for its dimension")


def test_interrupted_build_resumes_from_cache(tmp_path, monkeypatch):
    source = write_input(corpus(60), tmp_path / "in", "jsonl")

    class DiesOnSecondBatch(FakeEmbedder):
        def embed(self, texts, show_progress=False):
            if self.calls == 1:
                raise KeyboardInterrupt
            return super().embed(texts)

    with pytest.raises(KeyboardInterrupt):
        build(source, tmp_path / "index", DiesOnSecondBatch(), cache_dir=tmp_path / "c",
              batch_rows=25)
    assert not (tmp_path / "index").exists()
    resumed = FakeEmbedder()
    build(source, tmp_path / "index", resumed, cache_dir=tmp_path / "c", batch_rows=25)
    assert resumed.texts == 35  # the first 25 came from the cache


def test_precomputed_embeddings_need_no_model(tmp_path, monkeypatch):
    import indexer.build.text_model

    def no_model(*args, **kwargs):
        raise AssertionError("the text model must not be loaded")

    monkeypatch.setattr(indexer.build.text_model, "Embedder", no_model)
    docs = corpus(40)
    vectors = FakeEmbedder().embed([d["text"] for d in docs])
    for d, v in zip(docs, vectors):
        d["vec"] = v.tolist()
    source = write_input(docs, tmp_path / "in", "parquet")
    build(source, tmp_path / "index", None, embedding_column="vec")
    opened = HashIndex.open(tmp_path / "index")
    assert opened.manifest.embedding_model == "precomputed"
    assert "vec" not in opened.metadata_columns
    result = opened.search(vectors[3], k=1)
    assert result.hits[0].id == docs[3]["doc"] and result.hits[0].distance == 0


def test_reused_encoder_gives_same_codes(tmp_path):
    source = write_input(corpus(40), tmp_path / "in", "jsonl")
    build(source, tmp_path / "a", FakeEmbedder())
    build(source, tmp_path / "b", FakeEmbedder(), encoder=str(tmp_path / "a" / "encoder"))
    a, b = read_shards(tmp_path / "a"), read_shards(tmp_path / "b")
    assert [r["code"] for r in a] == [r["code"] for r in b]
    assert read_manifest(tmp_path / "b").train is None


def test_skip_empty_drops_rows(tmp_path):
    docs = corpus(20)
    docs[3]["text"] = "  "
    docs[7]["text"] = None
    source = write_input(docs, tmp_path / "in", "jsonl")
    report = build(source, tmp_path / "index", FakeEmbedder(), skip_empty=True)
    assert report.documents == 18 and report.skipped == 2
    ids = {r["id"] for r in read_shards(tmp_path / "index")}
    assert "d0003" not in ids and "d0007" not in ids


def test_neighbours_by_code_share_topic(tmp_path):
    docs = corpus(200)
    source = write_input(docs, tmp_path / "in", "jsonl")
    build(source, tmp_path / "index", FakeEmbedder(), bits=32)
    rows = read_shards(tmp_path / "index")
    codes = np.array([np.frombuffer(r["code"], dtype=np.uint8) for r in rows])
    topics = np.array([r["topic"] for r in rows])
    same = []
    for i in range(len(codes)):
        distances = hamming_distance(codes[i], codes)
        distances[i] = 10**6
        same.append(topics[distances.argmin()] == topics[i])
    assert np.mean(same) > 0.6  # chance is 0.25


@pytest.mark.parametrize("content, fragment", [
    ("{not json", "is corrupted (not valid JSON"),
    ('{"format_version": 999}', "index format version 999"),
])
def test_unreadable_or_foreign_manifest_is_named(tmp_path, content, fragment):
    build(write_input(corpus(10), tmp_path / "docs", "jsonl"), tmp_path / "index",
          FakeEmbedder())
    (tmp_path / "index" / "manifest.json").write_text(content)
    with pytest.raises(HashIndexError) as error:
        read_manifest(tmp_path / "index")
    assert "manifest.json" in str(error.value) and fragment in str(error.value)
    assert "rebuild the index" in str(error.value)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv"])
def test_a_column_named_id_holds_the_ids(tmp_path, fmt):
    docs = [{"id": f"doc-{i}", "text": d["text"], "topic": d["topic"]}
            for i, d in enumerate(corpus(30))]
    source = write_input(docs, tmp_path / "in", fmt)
    build(source, tmp_path / "a", FakeEmbedder(), id_column=None)
    rows = read_shards(tmp_path / "a")
    assert [r["id"] for r in rows] == [d["id"] for d in docs]
    assert read_manifest(tmp_path / "a").metadata_columns == ["topic"]
    docs_without = [{"text": d["text"]} for d in docs]
    build(write_input(docs_without, tmp_path / "plain", fmt), tmp_path / "c", FakeEmbedder(),
          id_column=None)
    assert [r["id"] for r in read_shards(tmp_path / "c")] == [str(i) for i in range(1, 31)]


def test_id_column_flag_overrides_the_id_column(tmp_path):
    docs = [{"id": f"doc-{i}", "key": f"k{i}", "text": d["text"]}
            for i, d in enumerate(corpus(20))]
    source = write_input(docs, tmp_path / "in", "jsonl")
    build(source, tmp_path / "a", FakeEmbedder(), id_column="key")
    rows = read_shards(tmp_path / "a")
    assert [r["id"] for r in rows] == [d["key"] for d in docs]
    assert [r["meta_id"] for r in rows] == [d["id"] for d in docs]  # kept, as metadata
