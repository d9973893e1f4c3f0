"""Crash safety of a living index: add, upsert, delete, compact, upgrade and a rebuild over it,
each run in a real process killed with SIGKILL, at named fault points and at random moments.

After every kill: the index opens and passes `verify`; queries answer as the generation before
the change or the one after (never a mix); the next writer leaves no file the current
generation does not use; re-running the change succeeds or says it was already made; and then
the index answers as the change made once. A compact or an upgrade must change no document and
no answer: its index is held to the answers before it (so one that loses or alters a document
fails here, killed or not), and its manifest tells whether it was made."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import build, vector_docs, write_input
from workers import apply_change

from hashindex.codes import hamming_distance
from hashindex.engine import HashIndex
from hashindex.errors import HashIndexError
from hashindex.faults import KILL_AT
from hashindex.segments.writer import IndexWriter, NothingToDo
from hashindex.store.layout import LOCK_FILE, MANIFEST_FILE
from hashindex.store.manifest import read_manifest
from indexer.documents import ColumnOptions
from indexer.update import AddConfig, add_documents

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
FORMAT3 = TESTS / "data" / "format3" / "index"
DIM = 16
KILL_TIMEOUT = 120

# (operation, named fault point): every point each operation passes
NAMED = [("add", point) for point in ("embed", "shards", "table", "segment", "commit",
                                      "after-commit")] + \
        [("upsert", point) for point in ("segment", "commit", "after-commit")] + \
        [("delete", point) for point in ("commit", "after-commit")] + \
        [("compact", point) for point in ("shards", "table", "segment", "commit",
                                          "after-commit")] + \
        [("upgrade", point) for point in ("commit", "after-commit")] + \
        [("overwrite", point) for point in ("publish", "after-exchange")]
# changes that must leave every document and answer as they were: the index after them is
# checked against the answers before (the same code's uninterrupted run is no reference)
KEEP_ANSWERS = ("compact", "upgrade")
# random moments inside the change (after the process has imported everything): per operation,
# times HASHINDEX_CRASH_ROUNDS for a longer run (HASHINDEX_CRASH_LOG: a JSON line per kill)
ROUNDS = int(os.environ.get("HASHINDEX_CRASH_ROUNDS", "1"))
TIMED = {op: n * ROUNDS for op, n in
         {"add": 8, "upsert": 4, "delete": 6, "compact": 8, "upgrade": 2, "overwrite": 2}.items()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A base index of two segments with deletions, and the inputs each change uses."""
    folder = tmp_path_factory.mktemp("crash")
    source = write_input(vector_docs(400, "a", seed=1, dim=DIM), folder / "base-input",
                         "parquet")
    build(source, folder / "base", embedding_column="vec", bits=32, store_embeddings=True,
          shard_rows=150)
    more = write_input(vector_docs(150, "b", seed=2, dim=DIM), folder / "more", "parquet")
    add_documents(AddConfig(index=str(folder / "base"), input=str(more), show_progress=False,
                            columns=ColumnOptions(id_column="doc", embedding_column="vec")))
    with IndexWriter(folder / "base") as writer:
        writer.delete([f"a-{i}" for i in range(0, 400, 7)])
    inputs = {
        "add": write_input(vector_docs(300, "c", seed=3, dim=DIM), folder / "add", "parquet"),
        "upsert": write_input(vector_docs(120, "a", seed=4, dim=DIM), folder / "upsert",
                              "parquet"),
        "overwrite": write_input(vector_docs(200, "o", seed=5, dim=DIM), folder / "rebuild",
                                 "parquet"),
    }
    return folder, inputs


def spec_for(operation: str, index: Path, inputs: dict) -> dict:
    spec = {"operation": operation, "index": str(index)}
    if operation in inputs:
        spec["input"] = str(inputs[operation])
    if operation == "delete":
        spec["ids"] = [f"a-{i}" for i in range(1, 400, 3)] + ["b-5", "b-6"]
    return spec


def fresh(world, operation: str, name: str) -> Path:
    folder, _ = world
    target = folder / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(FORMAT3 if operation == "upgrade" else folder / "base", target)
    return target


def answers(index_path: Path) -> dict:
    """What the index holds and answers (no embedding: no text model needed): every live
    document by id (its code, stored vector, text and metadata), and the top-8 ids and
    distances of fixed code queries on two backends, each checked against a brute-force scan
    of the live documents' codes."""
    index = HashIndex.open(index_path, verify=True)
    rows = index.live_rows()
    codes = index.all_codes()[rows]
    ids, texts, metadata = index.documents.fetch(rows)
    vectors = index.vectors.rows(rows)
    documents = {doc: (code.tobytes(), vector.tobytes(), text, metadata)
                 for doc, code, vector, text, metadata in zip(ids, codes, vectors, texts,
                                                             metadata)}
    assert len(documents) == len(rows) == len(index) > 0, "duplicate ids or a wrong count"
    rng = np.random.default_rng(0)
    queries = rng.integers(0, 256, size=(5, index.bits // 8), dtype=np.uint8)
    searched = []
    for query in queries:
        nearest = np.sort(hamming_distance(query, codes))[:8].tolist()
        for backend in ("table", "flat"):
            hits = [(h.id, h.distance) for h in index.search(query, k=8, backend=backend).hits]
            assert [distance for _, distance in hits] == nearest, f"{backend}: not the nearest"
            assert [hamming_distance(query, np.frombuffer(documents[doc][0], np.uint8))[0]
                    for doc, _ in hits] == nearest, f"{backend}: a hit's distance is not its own"
            searched.append(hits)
    return {"documents": documents, "searched": searched}


def start(spec: dict, kill_at: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{TESTS}"}
    if kill_at:
        env[KILL_AT] = kill_at
    return subprocess.Popen([sys.executable, str(TESTS / "workers.py"), "change",
                             json.dumps(spec)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def rerun(spec: dict) -> str:
    """Run the change again in this process: 'done', or what says it was already made."""
    try:
        apply_change(spec)
    except NothingToDo:
        return "already"
    except HashIndexError as error:
        assert spec["operation"] == "add" and "already in index" in str(error), error
        return "already"
    return "done"


@pytest.fixture(scope="module")
def expected(world):
    """Per operation: answers before the change, after it, and how long the change itself
    takes (from `ready` to `done`: the window the timed kills fall in)."""
    folder, inputs = world
    out = {}
    for operation in TIMED:
        index = fresh(world, operation, f"reference-{operation}")
        before = answers(index)
        process = start(spec_for(operation, index, inputs))
        assert process.stdout.readline().strip() == "ready"
        began = time.monotonic()
        assert process.stdout.readline().strip() == "done", process.communicate()[1]
        took = time.monotonic() - began
        process.communicate(timeout=KILL_TIMEOUT)
        assert process.returncode == 0
        out[operation] = (before, answers(index), took)
    return out


def differences(seen: dict, wanted: dict) -> str:
    """What tells two answers apart, in a line: documents lost, gained or changed (a few ids
    of each), and how many searches answer otherwise."""
    have, want = seen["documents"], wanted["documents"]
    found = {"lost": sorted(set(want) - set(have)), "gained": sorted(set(have) - set(want)),
             "changed": sorted(i for i in set(have) & set(want) if have[i] != want[i])}
    searches = sum(a != b for a, b in zip(seen["searched"], wanted["searched"]))
    return ", ".join(f"{len(ids)} documents {what} {ids[:4]}" for what, ids in found.items()) + \
        f", {searches} of {len(wanted['searched'])} searches answered otherwise"


def made(operation: str, index: Path) -> bool:
    """Whether the generation on disk is the one after a compact (one segment, no deleted row)
    or an upgrade (format 4): the answers, the same before and after, cannot tell."""
    manifest = read_manifest(index)
    if operation == "compact":
        return len(manifest.segments) == 1 and not manifest.segments[0].deleted
    return not manifest.legacy


def check_after_kill(world, expected, operation: str, index: Path, how: str) -> None:
    before, after, _ = expected[operation]
    if operation in KEEP_ANSWERS:  # the generation after must hold and answer what it held
        after = before
    assert index.is_dir(), "the index path disappeared"
    seen = answers(index)  # opens, verifies every checksum, and answers
    assert seen in (before, after), \
        f"answers that are neither generation: {differences(seen, after)}"
    new = made(operation, index) if operation in KEEP_ANSWERS else seen == after
    if os.environ.get("HASHINDEX_CRASH_LOG"):
        with open(os.environ["HASHINDEX_CRASH_LOG"], "a") as log:
            log.write(json.dumps({"operation": operation, "kill": how, "found":
                                  "same" if before == after and operation not in KEEP_ANSWERS
                                  else "new" if new else "old"}) + "\n")
    if operation != "overwrite":  # a rebuild's staging leftovers go with the next build
        with IndexWriter(index, allow_legacy=True):
            pass
        manifest = read_manifest(index)
        on_disk = {p.relative_to(index).as_posix() for p in index.rglob("*") if p.is_file()}
        assert on_disk == set(manifest.files) | {MANIFEST_FILE, LOCK_FILE}
    result = rerun(spec_for(operation, index, world[1]))
    assert result == "done" or new, "said already made when it was not"
    final = answers(index)
    assert final == after, f"not as the change made once: {differences(final, after)}"
    assert operation not in KEEP_ANSWERS or made(operation, index), f"no {operation} was made"
    assert not [p for p in index.parent.iterdir() if p.name.startswith(f"{index.name}.tmp-")]


@pytest.mark.parametrize("operation,point", NAMED)
def test_kill_at_a_named_point(world, expected, operation, point):
    index = fresh(world, operation, f"{operation}-{point}")
    process = start(spec_for(operation, index, world[1]), kill_at=point)
    process.communicate(timeout=KILL_TIMEOUT)
    assert process.returncode == -signal.SIGKILL, f"{operation} never reached {point}"
    check_after_kill(world, expected, operation, index, point)


@pytest.mark.parametrize("operation,attempt",
                         [(op, n) for op, count in TIMED.items() for n in range(count)])
def test_kill_at_a_random_moment(world, expected, operation, attempt):
    index = fresh(world, operation, f"{operation}-timed-{attempt}")
    seed = [attempt, *operation.encode()]  # the change's window, and a little past its end
    delay = np.random.default_rng(seed).uniform(0, 1.2 * expected[operation][2])
    process = start(spec_for(operation, index, world[1]))
    assert process.stdout.readline().strip() == "ready"
    time.sleep(delay)
    process.kill()
    stdout, _ = process.communicate(timeout=KILL_TIMEOUT)
    check_after_kill(world, expected, operation, index,
                     f"after {delay:.3f} s" + (" (had finished)" if "done" in stdout else ""))
