"""Never destroy what is not ours; every bad input one line; readers never see two builds.

The crash tests kill real processes (SIGKILL at named fault points, or by a timer) and the
permission tests run the CLI in a process without root's permission override.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import FakeEmbedder, build, corpus, vector_input, write_input

from hashindex.app.cli import main
from hashindex.engine import HashIndex
from hashindex.errors import HashIndexError
from hashindex.faults import KILL_AT
from hashindex.store.manifest import read_manifest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
TIMEOUT = 180


# every text model made, here or in a process a test starts, is the fake one (conftest.py)
pytestmark = pytest.mark.usefixtures("fake_text_model")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line(result_or_stderr, code, *fragments, exit_code=None):
    """One `error:` line on stderr holding every fragment, and the exit code."""
    if isinstance(result_or_stderr, subprocess.CompletedProcess):
        stderr, exit_code = result_or_stderr.stderr, result_or_stderr.returncode
    else:
        stderr, exit_code = result_or_stderr.stderr, result_or_stderr.exit_code
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("note:")]
    assert exit_code == code, (exit_code, stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def build_args(source, out, *extra):
    return ["build", source, "--out", out, "--bits", "16", "--epochs", "2", "--quiet",
            "--no-cache", *extra]


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


@pytest.fixture()
def source(tmp_path):
    return write_input(corpus(60), tmp_path / "docs", "jsonl")


@pytest.fixture()
def built(tmp_path, source):
    build(source, tmp_path / "index", FakeEmbedder(), store_embeddings=True)
    return tmp_path / "index"


# ---- 1. never destroy what is not ours ----
def test_overwrite_of_the_current_data_folder_deletes_nothing(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    write_input(corpus(30), data / "docs", "jsonl")
    (data / "notes.txt").write_text("mine")
    monkeypatch.chdir(data)
    before = snapshot(data)
    assert_one_line(run(*build_args("docs.jsonl", ".", "--overwrite")), 2, "--out .",
                    "current folder")
    assert snapshot(data) == before


def test_overwrite_replaces_only_an_index(tmp_path, source, built):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"jpeg")
    assert_one_line(run(*build_args(source, photos, "--overwrite")), 2, "not a hashindex index",
                    "no manifest.json")
    assert (photos / "a.jpg").read_bytes() == b"jpeg"
    (built / "mine.txt").write_text("a note of mine")
    before = snapshot(built)
    assert_one_line(run(*build_args(source, built, "--overwrite")), 2, "also holds mine.txt")
    assert snapshot(built) == before
    (built / "mine.txt").unlink()
    assert run(*build_args(source, built, "--overwrite")).exit_code == 0


def test_out_that_holds_the_input_or_is_home_is_refused(tmp_path, source, monkeypatch):
    before = snapshot(tmp_path)
    assert_one_line(run(*build_args(source, tmp_path, "--overwrite")), 2, "contains the input")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    assert_one_line(run(*build_args(source, home, "--overwrite")), 2, "your home folder")
    assert snapshot(tmp_path) == {**before, "home": None}


def test_overwrite_of_a_new_path_builds(tmp_path, source):
    result = run(*build_args(source, tmp_path / "new" / "idx", "--overwrite"))
    assert result.exit_code == 0, result.output
    assert len(HashIndex.open(tmp_path / "new" / "idx")) == 60


# ---- 2. tracebacks become one line ----
def without_root_override():
    """Run the child without the capabilities that let root ignore file permissions."""
    if os.geteuid() != 0:
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def drop():
        for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
            if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    return drop


def cli_process(*args, cwd=None, unprivileged=False, env=None):
    return subprocess.run(
        [sys.executable, "-m", "hashindex.app.cli", *map(str, args)], capture_output=True,
        text=True, cwd=cwd, timeout=TIMEOUT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        preexec_fn=without_root_override() if unprivileged else None)


@pytest.fixture()
def vectors(tmp_path):
    return vector_input(tmp_path / "vectors", 40, "v")


def test_out_under_a_read_only_folder(tmp_path, vectors):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    result = cli_process(*build_args(vectors, locked / "idx", "--embedding-column", "vec"),
                         unprivileged=True)
    assert_one_line(result, 2, "permission denied", str(locked))
    assert list(locked.iterdir()) == []


def test_out_whose_parent_is_a_file(tmp_path, vectors):
    (tmp_path / "afile").write_text("x")
    result = cli_process(*build_args(vectors, tmp_path / "afile" / "idx",
                                     "--embedding-column", "vec"))
    assert_one_line(result, 2, "afile", "is a file, not a folder")


def test_unreadable_input(tmp_path, vectors):
    vectors.chmod(0o000)
    result = cli_process(*build_args(vectors, tmp_path / "idx", "--embedding-column", "vec"),
                         unprivileged=True)
    assert_one_line(result, 2, "permission denied", vectors.name)
    assert not (tmp_path / "idx").exists()


def test_unwritable_cache_dir(tmp_path, source):
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o555)
    args = build_args(source, tmp_path / "idx", "--cache-dir", cache)
    args.remove("--no-cache")
    result = cli_process(*args, unprivileged=True)
    assert_one_line(result, 2, "--cache-dir", str(cache), "--no-cache")


def test_unexpected_error_is_one_line_exit_1(built, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug\nwith a second line")

    monkeypatch.setattr(HashIndex, "run", broken)
    result = run("query", built, "rocket")
    assert_one_line(result, 1, "internal error: RuntimeError: a bug", "--debug")
    result = run("--debug", "query", built, "rocket")
    assert result.exit_code == 1 and "Traceback" in result.stderr


def test_search_k_must_be_an_integer(built):
    index = HashIndex.open(built, embedder=FakeEmbedder())
    for k in (2.5, "3", True):
        with pytest.raises(HashIndexError, match="k must be an integer"):
            index.search("rocket orbit", k=k)
    with pytest.raises(HashIndexError, match="radius must be an integer"):
        index.search("rocket orbit", radius=1.5)


# ---- 3. accepted nonsense ----
@pytest.mark.parametrize("option, fragments", [
    (["--variant", "deep", "--option", "hidden=-5"], ["hidden=-5", "at least 1"]),
    (["--variant", "deep", "--option", "hidden=0"], ["hidden=0", "at least 1"]),
    (["--variant", "denoising", "--option", "noise=masking", "--option", "noise_level=5"],
     ["noise_level=5", "masking", "from 0 to 1"]),
    (["--option", "noise_level=5"], ["variant vanilla has no option 'noise_level'"]),
    (["--option", "bits=32"], ["bits", "--bits"]),
    (["--option", "variant=deep"], ["variant", "--variant"]),
    (["--option", "input_dim=10"], ["input_dim", "embedding model"]),
])
def test_model_options_out_of_range(tmp_path, source, option, fragments):
    assert_one_line(run(*build_args(source, tmp_path / "o", *option)), 2, *fragments)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, fragments", [
    (["--dataset", "synthetic", "--size", "0"], ["--size", "at least 256", "320 documents"]),
    (["--dataset", "synthetic", "--size", "5", "--bits", "32"], ["--size", "125 documents"]),
    (["--dataset", "synthetic", "--bits", ""], ["--bits lists no code length"]),
    (["--dataset", "synthetic", "--methods", ""], ["--methods lists no method"]),
])
def test_bench_bad_arguments(tmp_path, args, fragments):
    assert_one_line(run("bench", *args, "--out", tmp_path / "report"), 2, *fragments)


def test_bench_out_that_is_a_file(tmp_path):
    (tmp_path / "report").write_text("x")
    assert_one_line(run("bench", "--dataset", "synthetic", "--size", "200", "--out",
                        tmp_path / "report"), 2, "--out", "is a file")


# ---- 4. errors that name the place ----
def test_mixed_types_name_the_field_and_line(tmp_path):
    lines = [json.dumps({"text": f"doc {i}"}) for i in range(5)] + ['{"text": 7}']
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert_one_line(run(*build_args(path, tmp_path / "o")), 2, "mixed.jsonl", "'text'",
                    "a string on line 1", "a number on line 6")


def test_query_flags_are_checked_before_the_model_loads(built, fake_text_model):
    assert_one_line(run("query", built, "rocket", "--backend", "bogus"), 2,
                    "unknown backend 'bogus'")
    assert_one_line(run("query", built, "rocket", "-k", "0"), 2, "k=0")
    embedded = sum(model.calls for model in fake_text_model)  # by any model made (or none)
    assert embedded == 0, "the text model was used before the flags were checked"


# ---- 5. crash leftovers, kill -9 and SIGTERM ----
def worker(*args, env=None):
    return subprocess.Popen(
        [sys.executable, str(TESTS / "workers.py"), *map(str, args)], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": f"{ROOT}:{TESTS}", **(env or {})})


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


def answers(index_path: Path) -> list:
    index = HashIndex.open(index_path, embedder=FakeEmbedder())
    return [(h.id, h.distance) for h in index.search(corpus(60)[3]["text"], k=5).hits]


@pytest.mark.parametrize("point", ["embed", "train", "shards", "table", "publish"])
def test_kill_during_a_rebuild_keeps_the_old_index(tmp_path, source, point):
    index = tmp_path / "index"
    build(source, index, FakeEmbedder())
    manifest, before = read_manifest(index), answers(index)
    spec = {"input": str(source), "out": str(index),
            "options": {"overwrite": True, "bits": 32, "batch_rows": 20, "shard_rows": 20}}
    process = worker("build", json.dumps(spec), env={KILL_AT: point})
    process.communicate(timeout=TIMEOUT)
    assert process.returncode == -signal.SIGKILL
    assert leftovers(tmp_path), "the killed build left no staging folder"
    assert read_manifest(index) == manifest and answers(index) == before
    stale = leftovers(tmp_path)
    report = build(source, index, FakeEmbedder(), overwrite=True, bits=32)
    removed = {path.name for path, _ in report.removed_leftovers}
    assert removed and {name.removesuffix(".lock") for name in stale} == removed
    assert leftovers(tmp_path) == []
    assert read_manifest(index).bits == 32


def test_kill_after_the_exchange_publishes_the_new_index(tmp_path, source):
    index = tmp_path / "index"
    build(source, index, FakeEmbedder())
    spec = {"input": str(source), "out": str(index), "options": {"overwrite": True, "bits": 32}}
    process = worker("build", json.dumps(spec), env={KILL_AT: "after-exchange"})
    process.communicate(timeout=TIMEOUT)
    assert process.returncode == -signal.SIGKILL
    assert read_manifest(index).bits == 32 and answers(index)
    report = build(source, tmp_path / "other", FakeEmbedder())
    assert report.removed_leftovers == []  # leftovers of `index` are `index`'s builds' business
    stale = leftovers(tmp_path)
    rebuilt = run(*build_args(source, index, "--overwrite"))  # the command says what it removed
    assert rebuilt.exit_code == 0, rebuilt.output
    assert stale and all(f"note: removed {tmp_path / name.removesuffix('.lock')}" in
                         rebuilt.stderr for name in stale)
    assert leftovers(tmp_path) == []


def test_sigterm_cleans_up_like_sigint(tmp_path):
    vectors = vector_input(tmp_path / "vectors", 300, "v")
    out = tmp_path / "idx"
    process = subprocess.Popen(
        [sys.executable, "-m", "hashindex.app.cli", "build", vectors, "--out", out, "--bits", "16",
         "--quiet", "--embedding-column", "vec", "--variant", "concrete",
         "--option", "concrete_features=4", "--epochs", "100000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + TIMEOUT
    while not leftovers(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # well into training
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 143, stderr
    assert "error: terminated" in stderr and "Traceback" not in stderr
    assert leftovers(tmp_path) == [] and not out.exists()


# ---- 6. a kill loses seconds of embedding, not a batch ----
def test_kill_loses_seconds_of_embedding(tmp_path):
    docs = corpus(1200)
    source = write_input(docs, tmp_path / "docs", "jsonl")
    cache = tmp_path / "cache"
    spec = {"input": str(source), "out": str(tmp_path / "idx"), "delay": 0.008,
            "options": {"cache_dir": str(cache)}}
    process = worker("build", json.dumps(spec))
    deadline = time.monotonic() + TIMEOUT
    while not list(cache.glob("*.sqlite")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(4.5)  # 1 200 texts take ~10 s: killed about halfway through the one batch
    process.kill()
    process.communicate(timeout=TIMEOUT)
    database = next(cache.glob("*.sqlite"))
    cached = sqlite3.connect(database).execute("SELECT count(*) FROM embeddings").fetchone()[0]
    assert 256 <= cached < 1200, cached
    resumed = FakeEmbedder()
    build(source, tmp_path / "idx", resumed, cache_dir=cache)
    assert resumed.texts == 1200 - cached


# ---- 7. readers never see two builds ----
def test_queries_racing_rebuilds_never_mix_builds(tmp_path):
    index = tmp_path / "index"
    sizes = [40 if generation % 2 == 0 else 70 for generation in range(11)]
    inputs = [vector_input(tmp_path / f"gen{g}", n, f"b{n}", seed=g) for g, n in enumerate(sizes)]
    build(inputs[0], index, None, embedding_column="vec")
    stop = tmp_path / "stop"
    racer = worker("race", index, stop)
    time.sleep(2.0)  # the racer is querying
    for generation in range(1, 11):
        build(inputs[generation], index, None, embedding_column="vec", overwrite=True)
    stop.touch()
    out, err = racer.communicate(timeout=TIMEOUT)
    assert racer.returncode == 0, err[-3000:]
    assert out.startswith("ok") and int(out.split()[1]) > 0


# ---- 8. a tampered manifest is caught at open ----
def test_edited_manifest_is_caught_at_open(built):
    from hashindex.store.manifest import SELF_CHECKSUM, own_checksum

    path = built / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["segments"][0]["shards"][0]["rows"] += 1
    manifest["documents"] += 1
    path.write_text(json.dumps(manifest))
    assert_one_line(run("info", built), 2, "manifest.json", "edited or damaged")
    manifest[SELF_CHECKSUM] = own_checksum(manifest)  # a careful editor fixes the checksum too
    path.write_text(json.dumps(manifest))
    assert_one_line(run("query", built, "rocket"), 2, "part-00000.parquet", "holds 60 rows",
                    "manifest says 61")


# ---- 9. published with the user's umask ----
def test_published_index_is_readable_by_others(tmp_path, source):
    old = os.umask(0o022)
    try:
        build(source, tmp_path / "index", FakeEmbedder())
    finally:
        os.umask(old)
    for path in [tmp_path / "index", *(tmp_path / "index").rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o755 if path.is_dir() else 0o644), (path, oct(mode))


# ---- 10. honest figures ----
def test_figures_say_what_was_examined(built):
    index = HashIndex.open(built, embedder=FakeEmbedder())
    table = {"backend": "table", "rerank": False}  # the table's own figures
    scan = index.search(corpus(60)[2]["text"], k=5, **table)  # 16 bits, 60 codes: a scan
    assert scan.scanned and scan.documents_touched == 60
    exact = index.search(corpus(60)[2]["text"], k=1, radius=0, **table)
    assert not exact.scanned and exact.documents_touched == exact.candidates
    output = run("query", built, corpus(60)[2]["text"], "-k", "5").output
    assert "a full scan of 60 documents" in output
