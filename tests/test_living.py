"""A living index: add, delete, compact and upgrade, each one committed generation.

The central property: after any sequence of adds, upserts, deletes and compactions, every
query answers exactly as a fresh build of the same live documents with the same encoder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from helpers import FakeEmbedder, build, corpus, vector_docs, write_input
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hashindex.embedding.embedder
from hashindex.app.cli import main
from hashindex.engine import HashIndex
from hashindex.errors import HashIndexError
from hashindex.segments import reading
from hashindex.segments import writer as writer_module
from hashindex.segments.writer import IndexWriter, NothingToDo
from hashindex.store.layout import LOCK_FILE, MANIFEST_FILE
from hashindex.store.manifest import read_manifest
from indexer.documents import ColumnOptions
from indexer.update import AddConfig, add_documents

DIM = 16
FORMAT3 = Path(__file__).parent / "data" / "format3"
VECTORS = ColumnOptions(id_column="doc", embedding_column="vec")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line(result, code, *fragments):
    lines = [x for x in result.stderr.strip().splitlines() if not x.startswith("note:")]
    assert result.exit_code == code and len(lines) == 1, (result.exit_code, result.output)
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def vector_build(path: Path, docs: list[dict], backend: str = "flat", **options) -> Path:
    source = write_input(docs, path.parent / f"{path.name}-input", "parquet")
    build(source, path, embedding_column="vec", bits=32, backend=backend,
          store_embeddings=True, **options)
    return path


def add(index: Path, docs: list[dict], name: str, upsert: bool = False):
    source = write_input(docs, index.parent / name, "parquet")
    return add_documents(AddConfig(index=str(index), input=str(source), columns=VECTORS,
                                   upsert=upsert, show_progress=False))


def answers(index: HashIndex, queries: np.ndarray, backend: str = "table", k: int = 7,
            **options) -> list:
    return [[(h.id, h.distance, round(h.score, 5)) for h in
             index.search(q, k=k, backend=backend, **options).hits] for q in queries]


def disk_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def assert_clean(root: Path) -> None:
    """Every file on disk is one the current generation uses (or the manifest, the lock)."""
    assert disk_files(root) == set(read_manifest(root).files) | {MANIFEST_FILE, LOCK_FILE}


@pytest.fixture()
def base(tmp_path):
    return vector_build(tmp_path / "index", vector_docs(120, "a", seed=1, dim=DIM))


QUERIES = np.random.default_rng(9).normal(size=(6, DIM)).astype(np.float32)


# ---- equal to a rebuild ---------------------------------------------------------------------
operations = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(1, 40)),
    st.tuples(st.just("upsert"), st.integers(1, 30)),
    st.tuples(st.just("delete"), st.integers(1, 25)),
    st.tuples(st.just("compact"), st.just(0)),
), min_size=1, max_size=5)


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=operations, seed=st.integers(0, 10_000), small=st.sampled_from([1, 50, 10**6]),
       merge_at=st.sampled_from([1, 10]))
def test_changes_answer_as_a_rebuild_of_the_live_documents(tmp_path_factory, steps, seed,
                                                           small, merge_at):
    """`small`: below it segments are searched as one table (1: each alone) and merged once
    more than `merge_at` of them trail the index."""
    before = reading.SMALL_SEGMENT_ROWS, writer_module.MERGE_SMALL_SEGMENTS
    reading.SMALL_SEGMENT_ROWS, writer_module.MERGE_SMALL_SEGMENTS = small, merge_at
    folder = tmp_path_factory.mktemp("living")
    try:
        live = apply_changes(folder, steps, seed)
        changed = HashIndex.open(folder / "index", verify=True)
        assert len(changed) == len(live)
        if not live:
            assert all(not r for r in answers(changed, QUERIES))
            return
        rebuilt_input = write_input(live, folder / "live", "parquet")
        build(rebuilt_input, folder / "rebuilt", embedding_column="vec", bits=32,
              store_embeddings=True, encoder=str(folder / "index" / "encoder"))
        rebuilt = HashIndex.open(folder / "rebuilt")
        for backend in ("table", "flat"):  # exact settings (each index tunes its own default)
            assert (answers(changed, QUERIES, backend, rerank=False)
                    == answers(rebuilt, QUERIES, backend, rerank=False))
            # a budget holding every row (a smaller one cuts through ties at its last
            # distance, broken by row: the two indexes number their rows differently)
            assert (answers(changed, QUERIES, backend, rerank_candidates=len(live))
                    == answers(rebuilt, QUERIES, backend, rerank_candidates=len(live)))
        assert answers(changed, QUERIES, "exact") == answers(rebuilt, QUERIES, "exact")
        for code in [bytes(c) for c in rebuilt.all_codes()[:3]]:
            query = np.frombuffer(code, dtype=np.uint8)
            assert answers(changed, [query], k=15) == answers(rebuilt, [query], k=15)
        assert (answers(changed, QUERIES, "exact", filter={"year": {"gte": 2002}})
                == answers(rebuilt, QUERIES, "exact", filter={"year": {"gte": 2002}}))
    finally:
        reading.SMALL_SEGMENT_ROWS, writer_module.MERGE_SMALL_SEGMENTS = before


def apply_changes(folder: Path, steps, seed: int) -> list[dict]:
    """Build an index of 60 documents in folder/index and apply `steps` to it, checking after
    each that no stray file is left; the live documents, in index order."""
    rng = np.random.default_rng(seed)
    live = vector_docs(60, "a", seed=seed, dim=DIM)
    vector_build(folder / "index", live)
    made = len(live)
    for number, (operation, count) in enumerate(steps):
        if operation == "add":
            new = vector_docs(count, "n", seed=seed + number + 1, dim=DIM, start=made)
            made += count
            add(folder / "index", new, f"add{number}")
            live += new
        elif operation == "upsert" and live:
            picked = sorted(rng.choice(len(live), min(count, len(live)), replace=False))
            new = vector_docs(len(picked), "u", seed=seed + 100 + number, dim=DIM)
            for doc, old in zip(new, [live[i] for i in picked]):
                doc["doc"] = old["doc"]
            add(folder / "index", new, f"upsert{number}", upsert=True)
            gone = {live[i]["doc"] for i in picked}
            live = [d for d in live if d["doc"] not in gone] + new
        elif operation == "delete" and live:
            picked = set(rng.choice([d["doc"] for d in live], min(count, len(live)),
                                    replace=False))
            with IndexWriter(folder / "index") as writer:
                assert writer.delete(sorted(picked)).deleted == len(picked)
            live = [d for d in live if d["doc"] not in picked]
        elif operation == "compact":
            with IndexWriter(folder / "index") as writer:
                try:
                    writer.compact()
                except NothingToDo:
                    pass
        assert_clean(folder / "index")
    return live


# ---- the commands --------------------------------------------------------------------------
def test_add_delete_compact_from_the_command_line(base, tmp_path):
    new = write_input(vector_docs(30, "b", seed=2, dim=DIM), tmp_path / "new", "parquet")
    added = run("add", base, new, "--quiet")
    assert added.exit_code == 0 and "added 30 documents" in added.output, added.output
    assert "generation 2" in added.output
    deleted = run("delete", base, "a-1", "b-3", "ghost")
    assert deleted.exit_code == 0 and "deleted 2 documents" in deleted.output
    assert "1 id(s) not in the index: ghost" in deleted.stderr
    info = run("info", base)
    assert "148 live, 2 deleted" in info.output and "segments             2:" in info.output
    assert "29 of 148 live documents" in info.output
    assert "generation           3 (last change: delete" in info.output
    compacted = run("compact", base)
    assert compacted.exit_code == 0 and "2 deleted rows dropped" in compacted.output
    again = run("compact", base)
    assert again.exit_code == 0 and "nothing to compact" in again.output
    index = HashIndex.open(base, verify=True)
    assert len(index) == 148 and len(index.manifest.segments) == 1
    assert index.manifest.segments[0].trained_rows == 119  # a-1 was a trained document
    with pytest.raises(HashIndexError, match="no document with id 'a-1'"):
        index.document("a-1")
    assert index.document("b-29").id == "b-29"
    assert_clean(base)


def test_ids_file_and_strict_delete(base, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("a-5\n\na-6\nnobody\n")
    before = read_manifest(base)
    one_line(run("delete", base, "--ids", ids, "--strict"), 2, "nobody", "nothing was deleted")
    assert read_manifest(base) == before
    result = run("delete", base, "--ids", ids)
    assert result.exit_code == 0 and "deleted 2 documents" in result.output
    unchanged = run("delete", base, "a-5")
    assert "deleted 0 documents" in unchanged.output and "unchanged" in unchanged.output
    assert read_manifest(base).generation == 2
    one_line(run("delete", base), 2, "no ids to delete")


def test_bad_adds_are_one_line_and_change_nothing(base, tmp_path):
    before = read_manifest(base)
    files = disk_files(base)
    again = write_input(vector_docs(5, "a", seed=1, dim=DIM), tmp_path / "again", "parquet")
    one_line(run("add", "--quiet", base, again), 2, "'a-0'", "already in index", "--upsert")
    twice = vector_docs(3, "c", dim=DIM) + vector_docs(1, "c", dim=DIM)
    one_line(run("add", "--quiet", base, write_input(twice, tmp_path / "twice", "parquet")), 2,
             "duplicate id 'c-0'")
    wide = write_input(vector_docs(4, "w", dim=DIM + 1), tmp_path / "wide", "parquet")
    one_line(run("add", "--quiet", base, wide), 2, "dimension 17", "16-dimensional")
    extra = [dict(d, colour="red") for d in vector_docs(3, "e", dim=DIM)]
    extra = write_input(extra, tmp_path / "extra", "parquet")
    one_line(run("add", "--quiet", base, extra), 2, "colour", "not among the index's metadata")
    no_ids = [{k: v for k, v in d.items() if k != "doc"} for d in vector_docs(3, "n", dim=DIM)]
    one_line(run("add", "--quiet", base, write_input(no_ids, tmp_path / "noids", "parquet"),
                 "--id-column", "doc"), 2, "no column 'doc' for --id-column")
    one_line(run("add", "--quiet", base, tmp_path / "missing.jsonl"), 2, "does not exist")
    one_line(run("add", "--quiet", tmp_path / "nowhere", again), 2, "does not exist")
    assert read_manifest(base) == before and disk_files(base) - {LOCK_FILE} == files
    shard = next((base / "segments" / "seg-000001" / "shards").glob("*.parquet"))
    with open(shard, "ab") as handle:
        handle.write(b"x")  # fails the size check every open makes
    one_line(run("add", "--quiet", base, write_input(vector_docs(2, "z", dim=DIM), tmp_path / "z",
                                          "parquet")), 2, "part-00000.parquet", "truncated")


def test_upsert_replaces_in_one_generation(base, tmp_path):
    new = vector_docs(10, "a", seed=5, dim=DIM)  # ids a-0..a-9 again, other vectors
    report = add(base, new, "upsert", upsert=True)
    assert (report.added, report.replaced, report.generation) == (10, 10, 2)
    index = HashIndex.open(base)
    assert len(index) == 120
    stored = index.vectors.rows(np.array([index.row_of("a-3")]))[0]
    vector = np.asarray(new[3]["vec"], np.float32)
    assert np.allclose(stored, vector / np.linalg.norm(vector), atol=0.02)  # stored unit length
    with IndexWriter(base):  # a writer that changes nothing commits nothing
        pass
    assert read_manifest(base).generation == 2
    assert add(base, new, "upsert2", upsert=True).replaced == 10


def test_text_add_embeds_with_the_index_model(tmp_path, monkeypatch):
    monkeypatch.setattr(hashindex.embedding.embedder, "Embedder", FakeEmbedder)
    docs = corpus(80)
    source = write_input(docs[:60], tmp_path / "first", "jsonl")
    build(source, tmp_path / "index", FakeEmbedder(), store_embeddings=True)
    more = write_input(docs[60:], tmp_path / "more", "jsonl")
    result = run("add", tmp_path / "index", more, "--quiet")
    assert result.exit_code == 0, result.output
    index = HashIndex.open(tmp_path / "index")
    hit = index.search(docs[70]["text"], k=1).hits[0]
    assert hit.id == docs[70]["doc"] and hit.metadata["topic"] == docs[70]["topic"]
    whole = write_input(docs, tmp_path / "whole", "jsonl")
    build(whole, tmp_path / "rebuilt", FakeEmbedder(), store_embeddings=True,
          encoder=str(tmp_path / "index" / "encoder"))
    rebuilt = HashIndex.open(tmp_path / "rebuilt")
    for doc in docs[::9]:
        assert (answers(index, [doc["text"]]) == answers(rebuilt, [doc["text"]]))


def test_a_reader_keeps_its_generation(base, tmp_path):
    pinned = HashIndex.open(base)
    before = answers(pinned, QUERIES)
    add(base, vector_docs(40, "b", seed=3, dim=DIM), "more")
    with IndexWriter(base) as writer:
        writer.delete([f"a-{i}" for i in range(0, 120, 3)])
        writer.compact()  # the files the pinned reader opened are removed now
    assert not (base / "segments" / "seg-000001").exists()
    assert answers(pinned, QUERIES) == before
    assert answers(HashIndex.open(base), QUERIES) != before


def test_one_writer_at_a_time_and_a_dead_one_is_recovered(base):
    with IndexWriter(base):
        with pytest.raises(HashIndexError, match="being changed by another writer"):
            IndexWriter(base).__enter__()
        one_line(run("delete", base, "a-1"), 2, "another writer", "wait for it")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from hashindex.segments.writer import "
         "IndexWriter; w = IndexWriter(sys.argv[1]).__enter__(); print('held', flush=True); "
         "time.sleep(60)", str(base)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        one_line(run("delete", base, "a-1"), 2, f"pid {holder.pid}")
    finally:
        holder.kill()
        holder.wait(timeout=30)
    result = run("delete", base, "a-1")
    assert result.exit_code == 0, result.output
    assert f"left by a writer that died (pid {holder.pid})" in result.stderr


def test_a_rebuild_waits_for_a_writer_then_replaces_the_index(base, monkeypatch):
    import threading

    import hashindex.store.publish

    source = base.parent / "index-input.parquet"
    monkeypatch.setattr(hashindex.store.publish, "PUBLISH_WAIT_SECONDS", 0.3)
    with IndexWriter(base):
        with pytest.raises(HashIndexError, match="another writer"):
            build(source, base, embedding_column="vec", bits=32, overwrite=True)
    assert len(HashIndex.open(base)) == 120
    monkeypatch.setattr(hashindex.store.publish, "PUBLISH_WAIT_SECONDS", 30)
    holder = IndexWriter(base).__enter__()
    threading.Timer(1.0, holder.__exit__, (None, None, None)).start()
    build(source, base, embedding_column="vec", bits=32, overwrite=True, shard_rows=50)
    assert len(HashIndex.open(base).manifest.shards) == 3  # the rebuild, once the writer left


# ---- format 3 --------------------------------------------------------------------------------
@pytest.fixture()
def format3(tmp_path):
    copy = tmp_path / "old"
    shutil.copytree(FORMAT3 / "index", copy)
    return copy


def test_a_format3_index_opens_read_only_and_upgrades_in_place(format3, tmp_path, monkeypatch):
    monkeypatch.setattr(hashindex.embedding.embedder, "Embedder", FakeEmbedder)
    texts = [json.loads(line)["text"] for line in (FORMAT3 / "docs.jsonl").open()][:5]
    old = HashIndex.open(format3)
    assert old.manifest.legacy and len(old) == 40
    before = answers(old, texts)
    info = run("info", format3)
    assert info.exit_code == 0 and "read-only: `hashindex upgrade`" in info.output
    assert "hashindex upgrade" in run("query", format3, texts[0]).stderr
    more = write_input(corpus(45)[40:], tmp_path / "more", "jsonl")
    one_line(run("add", format3, more), 2, "format 3", f"hashindex upgrade {format3}")
    one_line(run("delete", format3, "d0001"), 2, "format 3")
    result = run("upgrade", format3)
    assert result.exit_code == 0 and "now takes add, delete and compact" in result.output
    assert_clean(format3)
    assert not (format3 / "shards").exists() and (format3 / "segments" / "seg-000001").is_dir()
    upgraded = HashIndex.open(format3, verify=True)
    assert not upgraded.manifest.legacy and answers(upgraded, texts) == before
    assert answers(old, texts) == before  # the reader opened before keeps its files
    assert "already in format 4" in run("upgrade", format3).output
    assert run("add", format3, more, "--quiet").exit_code == 0
    assert len(HashIndex.open(format3)) == 45


def test_info_json_reports_drift(base, tmp_path):
    add(base, vector_docs(200, "b", seed=4, dim=DIM), "many")
    result = run("info", base, "--json")
    drift = json.loads(result.output)["drift"]
    assert drift["added"] == 200 and drift["trained"] == 120
    assert drift["added_share"] == pytest.approx(200 / 320) and drift["retrain_hint"]
    assert "consider a rebuild" in run("info", base).output


def test_shards_of_an_add_hold_its_documents(base, tmp_path):
    add(base, vector_docs(7, "s", seed=6, dim=DIM), "seven")
    segment = read_manifest(base).segments[-1]
    table = pq.read_table(base / segment.shards[0]["file"])
    assert table.column("id").to_pylist() == [f"s-{i}" for i in range(7)]
    assert segment.origin == "add" and segment.rows == 7 and segment.trained_rows == 0


def test_an_interrupted_clean_up_keeps_the_committed_generation(base, monkeypatch):
    """Whatever stops a writer after its commit's rename (Ctrl-C, SIGTERM, a file it cannot
    remove), the generation it published stays whole."""
    from hashindex.store.pending import PendingChange

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(PendingChange, "finish", interrupted)
    with pytest.raises(KeyboardInterrupt):
        add(base, vector_docs(5, "k", seed=8, dim=DIM), "five")
    monkeypatch.undo()
    index = HashIndex.open(base, verify=True)
    assert len(index) == 125 and index.document("k-4").id == "k-4"


def test_the_identity_of_a_generation_is_its_manifest(base):
    """Two commits may leave manifest.json on a reused inode number: identity is its content."""
    from hashindex.store.manifest import manifest_identity

    seen = {manifest_identity(base)}
    for i in range(4):
        with IndexWriter(base) as writer:
            writer.delete([f"a-{i}"])
        seen.add(manifest_identity(base))
    assert len(seen) == 5


def test_small_adds_are_merged_past_the_policy_limit(base, monkeypatch):
    monkeypatch.setattr(writer_module, "MERGE_SMALL_SEGMENTS", 3)
    reports = [add(base, vector_docs(6, f"m{number}", seed=20 + number, dim=DIM),
                   f"small{number}") for number in range(5)]
    assert [r.merged for r in reports] == [0, 0, 4, 0, 0]
    report, manifest = reports[-1], read_manifest(base)
    # the base (120 rows: small too) and the first three adds are merged at the third add
    assert report.merged == 0 and [s.origin for s in manifest.segments] == ["merge", "add", "add"]
    assert manifest.segments[0].trained_rows == 120 and len(HashIndex.open(base)) == 150
    assert [h["operation"] for h in manifest.history][-4:] == ["add", "merge", "add", "add"]
    assert_clean(base)


def test_a_few_added_documents_are_too_few_to_judge_drift(base):
    add(base, vector_docs(3, "f", seed=9, dim=DIM), "few")
    line = run("info", base).output
    assert "3 of 123 live documents" in line and "too few to judge" in line
    assert "consider a rebuild" not in line


def test_documents_added_in_memory_are_stored_unit_length(base):
    """IndexWriter.add (the service's add path) stores cosines' vectors: a vector ×1000 is
    stored at length 1, an all-zero one is refused and nothing is committed."""
    vector = np.random.default_rng(9).normal(size=DIM).astype(np.float32)
    with IndexWriter(base) as writer:
        writer.add(["big"], ["a big vector"], (1000 * vector)[None])
        with pytest.raises(HashIndexError, match="all zeros"):
            writer.add(["zero"], ["no direction"], np.zeros((1, DIM), np.float32))
    index = HashIndex.open(base)
    stored = index.vectors.rows(np.array([index.row_of("big")]))[0]
    assert np.allclose(stored, vector / np.linalg.norm(vector), atol=0.02)
    assert read_manifest(base).generation == 2 and len(index) == 121
