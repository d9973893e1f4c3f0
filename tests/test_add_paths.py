"""One add path (#32): the command line's `hashindex add`, the Python `Index.add` and the
service's POST /documents take what they need from the IndexWriter (the manifest read once per
change, no reader opened), and given the same documents they make the same index."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from helpers import FakeEmbedder, build, corpus, vector_docs, write_input

import hashindex
import hashindex.embedding.embedder
from hashindex.app.cli import main
from hashindex.errors import HashIndexError
from hashindex.segments.writer import IndexWriter
from hashindex.store.layout import MANIFEST_FILE
from hashindex.store.manifest import read_manifest
from indexer.documents import ColumnOptions
from indexer.update import AddConfig, add_documents

DIM = 16
COUNTING: list[list[str]] = []  # while a test counts, the manifest files opened


def count_opens(event: str, args: tuple) -> None:
    """An audit hook (installed once: hooks cannot be removed): every open of a manifest.json,
    by open() or os.open, whoever reads it (read_manifest, manifest_identity, a reader)."""
    if event == "open" and COUNTING and isinstance(args[0], (str, bytes, Path)) \
            and Path(str(args[0])).name == MANIFEST_FILE:
        COUNTING[-1].append(str(args[0]))


sys.addaudithook(count_opens)


class manifest_reads:
    """`with manifest_reads() as reads:` lists the opens of manifest.json inside the block."""

    def __enter__(self) -> list[str]:
        COUNTING.append([])
        return COUNTING[-1]

    def __exit__(self, *exc) -> None:
        COUNTING.pop()


@pytest.fixture(scope="module")
def vectors_index(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("vectors")
    source = write_input(vector_docs(60, "a", seed=1, dim=DIM), folder / "docs", "parquet")
    build(source, folder / "idx", embedding_column="vec", bits=32, store_embeddings=True)
    return folder / "idx"


def copy(index: Path, to: Path) -> Path:
    shutil.copytree(index, to)
    return to


def test_an_add_reads_the_manifest_once(vectors_index, tmp_path):
    """Before #32 one add read it six times (the writer twice, a HashIndex opened for the
    encoder three times, the commit once more), seven with a column flag."""
    new = write_input(vector_docs(8, "n", seed=2, dim=DIM), tmp_path / "new", "parquet")
    index = copy(vectors_index, tmp_path / "idx")
    with manifest_reads() as reads:
        add_documents(AddConfig(str(index), str(new), columns=ColumnOptions(
            id_column="doc", embedding_column="vec"), show_progress=False))
    assert len(reads) == 1, reads
    more = write_input(vector_docs(8, "m", seed=3, dim=DIM), tmp_path / "more", "parquet")
    with manifest_reads() as reads:  # the command line, with a column flag
        result = CliRunner().invoke(main, ["add", str(index), str(more), "--quiet",
                                           "--embedding-column", "vec"])
    assert result.exit_code == 0, result.output
    assert len(reads) == 1, reads
    docs = vector_docs(3, "s", seed=4, dim=DIM)
    with manifest_reads() as reads:  # the service's: documents held in memory
        with IndexWriter(index) as writer:
            writer.add([d["doc"] for d in docs], [d["text"] for d in docs],
                       np.array([d["vec"] for d in docs], np.float32),
                       pa.table({"year": [d["year"] for d in docs]}))
            assert writer.manifest == read_manifest(index)  # as committed, not read back
    assert len(reads) == 2, reads  # and the check above
    assert read_manifest(index).documents == 60 + 8 + 8 + 3


def live_documents(index: Path) -> pa.Table:
    """Every live document as stored (id, text, code, metadata columns), in id order."""
    opened = hashindex.open(index).engine
    table = opened.shards.take(opened.live_rows())
    order = np.argsort(np.asarray(table.column("id").to_pylist(), dtype=object))
    return table.take(pa.array(order))


def add_three_ways(base: Path, tmp_path: Path, docs: list[dict], *, vectors: bool,
                   upsert: bool) -> list[Path]:
    """The same documents added to three copies of `base` by the three paths."""
    from fastapi.testclient import TestClient

    from hashindex.app.serve.app import ServeSettings, create_app

    source = write_input(docs, tmp_path / "new", "parquet")
    by_cli, by_python, by_service = (copy(base, tmp_path / name)
                                     for name in ("cli", "python", "service"))
    flags = ["--upsert"] if upsert else []
    result = CliRunner().invoke(main, ["add", str(by_cli), str(source), "--quiet", *flags])
    assert result.exit_code == 0, result.output
    embedder = None if vectors else FakeEmbedder()
    hashindex.open(by_python, embedder=embedder).add(docs, upsert=upsert)
    body = {"upsert": upsert, "documents": [
        {"id": d["doc"], "text": d["text"], "metadata": {"year": d["year"]},
         **({"embedding": d["vec"]} if vectors else {})} for d in docs]}
    settings = ServeSettings(allow_writes=True, load_before_listening=True,
                             reload_interval_s=0)
    with TestClient(create_app(str(by_service), settings)) as client:
        answer = client.post("/documents", json=body)
    assert answer.status_code == 200, answer.text
    return [by_cli, by_python, by_service]


@pytest.mark.parametrize("upsert", [False, True])
def test_the_three_add_paths_make_the_same_index_of_vectors(vectors_index, tmp_path, upsert):
    docs = vector_docs(7, "n", seed=5, dim=DIM)
    if upsert:  # two documents replaced, one of them with another direction
        docs += [dict(vector_docs(1, "a", seed=6, dim=DIM, start=3)[0]),
                 dict(vector_docs(12, "a", seed=1, dim=DIM)[11], text="new words")]
    paths = add_three_ways(vectors_index, tmp_path, docs, vectors=True, upsert=upsert)
    tables = [live_documents(p) for p in paths]
    assert tables[0].num_rows == 60 + 7
    assert tables[1].equals(tables[0]) and tables[2].equals(tables[0])
    manifests = [read_manifest(p) for p in paths]
    assert {(m.documents, m.generation, len(m.segments)) for m in manifests} == \
        {(67, 2, 2)}
    vectors = [hashindex.open(p).engine.vectors for p in paths]
    rows = np.arange(manifests[0].rows)
    assert all(np.array_equal(v.rows(rows), vectors[0].rows(rows)) for v in vectors[1:])


def test_the_three_add_paths_make_the_same_index_of_texts(tmp_path, monkeypatch):
    monkeypatch.setattr(hashindex.embedding.embedder, "Embedder", FakeEmbedder)
    docs = corpus(80, seed=3)
    source = write_input(docs[:60], tmp_path / "docs", "parquet")
    build(source, tmp_path / "base", FakeEmbedder(), store_embeddings=True)
    new = [{k: d[k] for k in ("doc", "text", "year")} for d in docs[60:]]
    paths = add_three_ways(tmp_path / "base", tmp_path, new, vectors=False, upsert=False)
    tables = [live_documents(p) for p in paths]
    assert tables[0].num_rows == 80
    assert tables[1].equals(tables[0]) and tables[2].equals(tables[0])


def test_the_id_checks_are_one_for_every_path(vectors_index, tmp_path):
    """The service's documents meet the checks a file's do: a taken id is named with its
    document (counted from 0 there, as the request's list is), a repeated id with both."""
    index = copy(vectors_index, tmp_path / "idx")
    docs = vector_docs(3, "a", seed=7, dim=DIM, start=4)  # a-4, a-5, a-6: in the index
    vectors = np.array([d["vec"] for d in docs], np.float32)
    with IndexWriter(index) as writer:
        with pytest.raises(HashIndexError) as taken:
            writer.add(["new", "a-5", "a-6"], ["x"] * 3, vectors, upsert=False)
        with pytest.raises(HashIndexError) as twice:
            writer.add(["b", "c", "b"], ["x"] * 3, vectors)
    assert str(taken.value) == (f"documents: id(s) 'a-5', 'a-6' (document(s) 1, 2) are "
                                f"already in index {index} (2 in this batch); upsert to "
                                "replace them")
    assert str(twice.value) == "duplicate id 'b' (documents 0 and 2); ids must be unique"
    source = write_input(vector_docs(2, "a", seed=8, dim=DIM, start=5), tmp_path / "f",
                         "parquet")
    with pytest.raises(HashIndexError) as from_file:
        add_documents(AddConfig(str(index), str(source), show_progress=False))
    assert str(from_file.value) == (f"{source}: id(s) 'a-5', 'a-6' (document(s) 1, 2) are "
                                    f"already in index {index} (2 in this batch); pass "
                                    "--upsert to replace them")
    assert read_manifest(index).generation == 1
