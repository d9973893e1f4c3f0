"""`build --engine ray`: the passes on Ray Data, on a local Ray started once for the module
(num_cpus=2, no dashboard). Same codes and answers as the local engine; resume after a failed
build; a killed worker retried without losing or doubling a document; bad inputs one line."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import FAST_TRAIN, FakeEmbedder, corpus, vector_docs, write_input

from hashindex.app.cli import main
from hashindex.engine import HashIndex
from hashindex.errors import HashIndexError
from indexer.build import BuildConfig, build_index
from indexer.documents import ColumnOptions

ray = pytest.importorskip("ray")
TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


class FailingEmbedder(FakeEmbedder):
    """Fails on one text: a build that dies partway (its other parts are kept)."""

    def __init__(self, poison: str):
        super().__init__()
        self.poison = poison

    def embed(self, texts, show_progress=False):
        if any(self.poison in t for t in texts):
            raise HashIndexError(f"the model failed on {self.poison.strip()}")
        return super().embed(texts)


class PidEmbedder(FakeEmbedder):
    """Writes its process id where the test finds it, then embeds slowly: a worker to kill."""

    def __init__(self, folder: str, delay: float):
        super().__init__()
        self.folder, self.delay = folder, delay

    def embed(self, texts, show_progress=False):
        Path(self.folder, str(os.getpid())).touch()
        time.sleep(self.delay)
        return super().embed(texts)


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": f"{ROOT}:{TESTS}"}})
    yield
    ray.shutdown()


def config(source, out, engine, tmp_path, **options) -> BuildConfig:
    columns = options.pop("columns", ColumnOptions(id_column="doc"))
    return BuildConfig(input=str(source), out=str(out), columns=columns, bits=32,
                       store_embeddings=True, engine=engine,
                       show_progress=options.pop("show_progress", False),
                       cache_dir=str(tmp_path / "cache"), use_cache=False,
                       batch_rows=options.pop("batch_rows", 25), **options)


def answers(path, queries) -> list:
    index = HashIndex.open(path, embedder=FakeEmbedder())  # an exact setting: the two builds
    # time their own tuning, and may pick different (equally good) default settings
    return [[(h.id, h.distance, round(h.score, 5))
             for h in index.search(q, k=6, backend="exact").hits] for q in queries]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_same_codes_and_answers_as_the_local_engine(tmp_path, fmt):
    docs = corpus(130)
    source = write_input(docs, tmp_path / "docs", fmt)
    local = build_index(config(source, tmp_path / "local", "local", tmp_path),
                        train_config=FAST_TRAIN, embedder=FakeEmbedder())
    distributed = build_index(config(source, tmp_path / "ray", "ray", tmp_path, embed_workers=2),
                              train_config=FAST_TRAIN, embedder=FakeEmbedder())
    assert distributed.documents == local.documents == 130
    a, b = HashIndex.open(tmp_path / "local"), HashIndex.open(tmp_path / "ray")
    differ = np.count_nonzero((a.all_codes() != b.all_codes()).any(axis=1))
    assert differ == 0, f"{differ} of 130 codes differ"
    assert len(b.manifest.shards) == 6  # one shard per part of 25 rows
    queries = [d["text"] for d in docs[::17]]
    assert answers(tmp_path / "local", queries) == answers(tmp_path / "ray", queries)
    assert b.document("d0077").metadata == a.document("d0077").metadata


def test_precomputed_embeddings_from_the_command_line(tmp_path):
    source = write_input(vector_docs(90, "v", dim=16), tmp_path / "vectors", "parquet")
    args = ["build", str(source), "--embedding-column", "vec", "--id-column", "doc", "--bits",
            "32", "--epochs", "2", "--quiet", "--no-cache"]
    assert CliRunner().invoke(main, [*args, "--out", str(tmp_path / "l")]).exit_code == 0
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "r"), "--engine", "ray"])
    assert result.exit_code == 0, result.output
    a, b = HashIndex.open(tmp_path / "l"), HashIndex.open(tmp_path / "r")
    assert (a.all_codes() == b.all_codes()).all() and len(b) == 90


def test_a_failed_build_resumes_with_the_parts_it_embedded(tmp_path):
    docs = corpus(100)
    source = write_input(docs, tmp_path / "docs", "jsonl")
    with pytest.raises(HashIndexError, match="the model failed on n77"):
        build_index(config(source, tmp_path / "idx", "ray", tmp_path), train_config=FAST_TRAIN,
                    embedder=FailingEmbedder(" n77"))
    assert not (tmp_path / "idx").exists()
    report = build_index(config(source, tmp_path / "idx", "ray", tmp_path),
                         train_config=FAST_TRAIN, embedder=FakeEmbedder())
    assert report.documents == 100 and 25 <= report.embedded < 100  # the kept parts: not again
    build_index(config(source, tmp_path / "local", "local", tmp_path), train_config=FAST_TRAIN,
                embedder=FakeEmbedder())
    queries = [d["text"] for d in docs[::11]]
    assert answers(tmp_path / "idx", queries) == answers(tmp_path / "local", queries)
    assert not any((tmp_path / "cache" / "ray-parts").iterdir())  # published: nothing to resume


def test_a_killed_worker_is_retried_and_every_document_lands_once(tmp_path):
    docs = corpus(120)
    source = write_input(docs, tmp_path / "docs", "jsonl")
    pids = tmp_path / "pids"
    pids.mkdir()
    outcome: dict = {}

    def run():
        try:
            outcome["report"] = build_index(
                config(source, tmp_path / "idx", "ray", tmp_path, embed_workers=2,
                       batch_rows=20),
                train_config=FAST_TRAIN, embedder=PidEmbedder(str(pids), 0.5))
        except Exception as error:  # reported below
            outcome["error"] = error

    builder = threading.Thread(target=run)
    builder.start()
    deadline = time.monotonic() + 120
    while not any(pids.iterdir()):
        assert time.monotonic() < deadline, "no embedding worker started"
        time.sleep(0.05)
    victim = int(next(pids.iterdir()).name)
    os.kill(victim, signal.SIGKILL)
    builder.join(timeout=240)
    assert not builder.is_alive(), "the build hung after a worker was killed"
    assert "error" not in outcome, outcome.get("error")
    index = HashIndex.open(tmp_path / "idx")
    ids = index.shards.column_array("id").to_pylist()
    assert sorted(ids) == sorted(d["doc"] for d in docs)  # each exactly once


def test_bad_inputs_are_one_line_errors(tmp_path):
    docs = corpus(60)
    csv = write_input(docs, tmp_path / "docs", "csv")
    with pytest.raises(HashIndexError, match="reads Parquet and JSONL"):
        build_index(config(csv, tmp_path / "a", "ray", tmp_path), embedder=FakeEmbedder())
    broken = tmp_path / "broken.jsonl"
    lines = write_input(docs, tmp_path / "ok", "jsonl").read_text().splitlines()
    lines[47] = "{not json"
    broken.write_text("\n".join(lines) + "\n")
    with pytest.raises(HashIndexError, match="line 48 is not valid JSON"):
        build_index(config(broken, tmp_path / "b", "ray", tmp_path), embedder=FakeEmbedder())
    twice = write_input(docs + docs[40:41], tmp_path / "twice", "jsonl")
    with pytest.raises(HashIndexError, match="duplicate id 'd0040'"):
        build_index(config(twice, tmp_path / "c", "ray", tmp_path), embedder=FakeEmbedder())
    assert not any((tmp_path / p).exists() for p in "abc")


def test_an_unreachable_cluster_is_one_line_exit_2(tmp_path):
    source = write_input(vector_docs(10, "v", dim=16), tmp_path / "vectors", "parquet")
    ray.shutdown()  # this process must try to join, not reuse the module's Ray
    try:
        result = CliRunner().invoke(main, ["build", str(source), "--embedding-column", "vec",
                                           "--out", str(tmp_path / "x"), "--engine", "ray",
                                           "--ray-address", "127.0.0.1:9", "--quiet"])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines() == [
            "error: --ray-address 127.0.0.1:9: no Ray cluster answers there; start one (ray "
            "start --head) or fix the address"]
        refused = CliRunner().invoke(main, ["build", str(source), "--embedding-column", "vec",
                                            "--out", str(tmp_path / "y"), "--ray-address",
                                            "127.0.0.1:9"])
        assert refused.exit_code == 2 and "--ray-address is for --engine ray" in refused.stderr
    finally:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False,
                 runtime_env={"env_vars": {"PYTHONPATH": f"{ROOT}:{TESTS}"}})


def test_workers_without_hashindex_are_one_line():
    from indexer.build.ray_engine import ray_errors

    @ray.remote
    def import_what_is_missing():
        import hashindex_not_installed_here  # noqa: F401

    with pytest.raises(Exception) as caught:
        ray.get(import_what_is_missing.remote(), timeout=120)
    error = ray_errors(caught.value)
    assert isinstance(error, HashIndexError) and "install it on every node" in str(error)
    assert "cannot import hashindex_not_installed_here" in str(error)


def test_progress_counts_documents(tmp_path, capsys):
    source = write_input(corpus(60), tmp_path / "docs", "jsonl")
    build_index(config(source, tmp_path / "idx", "ray", tmp_path, show_progress=True),
                train_config=FAST_TRAIN, embedder=FakeEmbedder())
    err = capsys.readouterr().err
    assert "ray embed: 60doc" in err and "ray encode+write: 60doc" in err
    assert "doc/s" in err


def test_a_large_row_group_is_cut_into_parts(tmp_path):
    """pyarrow writes ~1M rows per row group by default: one group is cut into parts of
    batch_rows rows, not embedded by one actor."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from indexer.build.ray_engine import plan_parts
    from indexer.readers import open_reader

    docs = corpus(130)
    source = tmp_path / "one-group.parquet"
    pq.write_table(pa.Table.from_pylist(docs), source)
    assert len(plan_parts(open_reader(source), 25)) == 6
    build_index(config(source, tmp_path / "local", "local", tmp_path), train_config=FAST_TRAIN,
                embedder=FakeEmbedder())
    build_index(config(source, tmp_path / "ray", "ray", tmp_path, embed_workers=2),
                train_config=FAST_TRAIN, embedder=FakeEmbedder())
    a, b = HashIndex.open(tmp_path / "local"), HashIndex.open(tmp_path / "ray")
    assert (a.all_codes() == b.all_codes()).all() and len(b.manifest.shards) == 6


def test_jsonl_rows_count_as_the_local_reader_counts(tmp_path):
    """A line of only a non-breaking space is blank and a bare CR is JSON whitespace, as the
    local reader reads them: the row-number ids agree."""
    lines = [f'{{"text": "{d["text"]}"}}' for d in corpus(60)]
    lines[10] = "\u00a0"  # blank once decoded
    lines[20] = '{"text": "carriage\\treturn",\r "topic": "x"}'
    source = tmp_path / "odd.jsonl"
    source.write_bytes(("\n".join(lines) + "\n").encode())
    ids = {}
    for engine in ("local", "ray"):
        build_index(config(source, tmp_path / engine, engine, tmp_path,
                           columns=ColumnOptions(), batch_rows=7),
                    train_config=FAST_TRAIN, embedder=FakeEmbedder())
        ids[engine] = HashIndex.open(tmp_path / engine).shards.column_array("id").to_pylist()
    assert ids["ray"] == ids["local"] and len(ids["local"]) == 59
