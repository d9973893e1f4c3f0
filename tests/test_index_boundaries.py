"""Nothing outside the index is ever touched (hashindex/store: paths.py, pending.py, owner.py,
publish.py's staging, lock.py): every case runs the real `hashindex` command in its own process
against real files, real symbolic links and really killed writers.

- a writer removes only what a writer of this index made and named (writer.json), and says
  exactly what it removed; a user's files in or beside the index stay, and `info`/`verify`
  report them;
- a build removes only the staging folders of builds of this host that died;
- no writer or reader follows a link inside an index; a manifest names only paths inside it;
- a full disk, a read-only index and Ctrl-C leave the previous generation intact, one line.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import build, tree_snapshot, vector_docs, write_input

from hashindex.faults import KILL_AT
from hashindex.store.layout import PENDING_FILE
from hashindex.store.manifest import manifest_bytes, read_manifest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
TIMEOUT = 120
DIM = 16


def hashindex(*args, env=None, check_one_line=None) -> subprocess.CompletedProcess:
    """The command in its own process."""
    result = subprocess.run([sys.executable, "-m", "hashindex.app.cli", *map(str, args)],
                            cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})
    if check_one_line is not None:
        one_line(result, *check_one_line)
    return result


def one_line(result: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    lines = [x for x in result.stderr.strip().splitlines() if not x.startswith("note:")]
    assert result.returncode == code, (result.returncode, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("boundaries")
    source = write_input(vector_docs(200, "a", seed=1, dim=DIM), folder / "base", "parquet")
    build(source, folder / "index", embedding_column="vec", bits=32, store_embeddings=True)
    write_input(vector_docs(30, "n", seed=2, dim=DIM), folder / "add", "parquet")
    return folder


@pytest.fixture
def index(built, tmp_path) -> Path:
    target = tmp_path / "index"
    shutil.copytree(built / "index", target, symlinks=True)
    return target


@pytest.fixture
def additions(built) -> Path:
    return built / "add.parquet"


def add(index: Path, source: Path, *more, env=None) -> subprocess.CompletedProcess:
    return hashindex("add", index, source, "--id-column", "doc", "--embedding-column", "vec",
                     "--quiet", *more, env=env)


# ---- 1. a writer's clean-up removes only what a writer made -------------------------------
def test_an_add_keeps_the_users_files_in_the_index(index, additions):
    """cp add.parquet IDX/new.parquet; hashindex add IDX IDX/new.parquet deleted the input,
    said "removed 1 files … left by a writer that died" and failed; notes.txt and a folder of
    the user's under segments/ went with the next add."""
    shutil.copy(additions, index / "new.parquet")
    (index / "notes.txt").write_text("mine")
    (index / "segments" / "mine").mkdir()
    (index / "segments" / "mine" / "f").write_text("also mine")
    (index / "segments" / "seg-000001" / "README").write_text("a note in a segment")
    users = {p: p.read_bytes() for p in (index / "new.parquet", index / "notes.txt",
                                         index / "segments" / "mine" / "f",
                                         index / "segments" / "seg-000001" / "README")}
    result = add(index, index / "new.parquet")
    assert result.returncode == 0, result.stderr
    assert "removed" not in result.stderr
    assert {p: p.read_bytes() for p in users} == users
    assert read_manifest(index).documents == 230
    for command in ("info", "verify"):
        shown = hashindex(command, index)
        assert shown.returncode == 0, shown.stderr
        for name in ("new.parquet", "notes.txt", "segments/mine/", "segments/seg-000001/README"):
            assert name in shown.stdout, (command, shown.stdout)
    as_json = json.loads(hashindex("info", index, "--json").stdout)
    assert as_json["other_files"] == ["new.parquet", "notes.txt", "segments/mine/",
                                      "segments/seg-000001/README"]


def test_a_dead_writers_leftovers_go_and_nothing_else(index, additions):
    """A writer killed with -9 mid-add leaves the segment it named in writer.json: the next
    writer removes exactly that, says so, and leaves a user's file beside it."""
    result = add(index, additions, env={KILL_AT: "segment"})
    assert result.returncode == -signal.SIGKILL
    record = json.loads((index / PENDING_FILE).read_text())
    made = [p for p in record["created"] if p.startswith("segments/seg-")]
    assert made and (index / made[0]).is_dir()
    (index / "segments" / "seg-000099").mkdir()  # the user's, named like ours: never named
    (index / "segments" / "seg-000099" / "keep").write_text("x")
    deleted = hashindex("delete", index, "a-1")
    assert deleted.returncode == 0, deleted.stderr
    note = [x for x in deleted.stderr.splitlines() if "left in" in x]
    assert len(note) == 1 and made[0] in note[0] and "writer that died" in note[0]
    assert not (index / made[0]).exists() and not (index / PENDING_FILE).exists()
    assert (index / "segments" / "seg-000099" / "keep").read_text() == "x"
    again = add(index, additions)  # the next segment skips the user's name, never reuses it
    assert again.returncode == 0, again.stderr
    assert (index / "segments" / "seg-000099" / "keep").read_text() == "x"
    assert all(s.folder != "segments/seg-000099" for s in read_manifest(index).segments)


def test_a_live_or_foreign_writers_record_is_left_alone(index, additions):
    """writer.json naming a process still running, or another host: its files stay, one line."""
    leftover = index / "segments" / "seg-000005"
    leftover.mkdir()
    (leftover / "data").write_text("maybe still being written")
    for owner in ({"host": socket.gethostname(), "pid": os.getpid(), "process_start": None,
                   "started": "now"},
                  {"host": "another-host", "pid": 1, "process_start": None, "started": "now"}):
        (index / PENDING_FILE).write_text(json.dumps(
            {"owner": owner, "created": ["segments/seg-000005"], "retired": []}))
        hashindex("delete", index, "a-1", check_one_line=(2, "unfinished change", str(
            owner["pid"]), owner["host"]))
        assert (leftover / "data").exists()
    assert read_manifest(index).documents == 200


# ---- 2. a build removes only the staging folders of builds that died ----------------------
def test_a_build_keeps_folders_that_look_like_staging(built, tmp_path):
    """`mkdir myidx.tmp-backup` with a file in it was gone after `build --out myidx`, which
    also reported removing `myidx.tmp-notes.txt` (that survived)."""
    backup = tmp_path / "myidx.tmp-backup"
    backup.mkdir()
    (backup / "precious").write_text("x")
    (tmp_path / "myidx.tmp-notes.txt").write_text("y")
    lookalike = tmp_path / "myidx.tmp-abcd1234"  # mkstemp's shape, with a lock of no build
    lookalike.mkdir()
    (lookalike / "data").write_text("z")
    (tmp_path / "myidx.tmp-abcd1234.lock").write_text("1234\n")
    before = tree_snapshot(tmp_path)
    for extra in ((), ("--overwrite",)):
        result = hashindex("build", built / "base.parquet", "--out", tmp_path / "myidx",
                           "--embedding-column", "vec", "--id-column", "doc", "--bits", "16",
                           "--epochs", "1", "--quiet", *extra)
        assert result.returncode == 0, result.stderr
        assert "removed" not in result.stderr
    after = tree_snapshot(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("myidx/") and k != "myidx"} \
        == before


def test_a_dead_builds_staging_folder_goes(built, tmp_path):
    """The staging folder of a build killed with -9 (its lock names a process now gone) is
    removed by the next build of the same --out, and said so."""
    args = ("build", built / "base.parquet", "--out", tmp_path / "myidx", "--embedding-column",
            "vec", "--id-column", "doc", "--bits", "16", "--epochs", "1", "--quiet")
    killed = hashindex(*args, env={KILL_AT: "publish"})
    assert killed.returncode == -signal.SIGKILL
    stale = sorted(p.name for p in tmp_path.iterdir() if ".tmp-" in p.name)
    assert len(stale) == 2  # the folder and its lock
    result = hashindex(*args)
    assert result.returncode == 0, result.stderr
    folder = stale[0] if not stale[0].endswith(".lock") else stale[1]
    assert f"note: removed {tmp_path / folder}" in result.stderr
    assert "left by a build that died (pid" in result.stderr
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


# ---- 3. no link inside an index is followed ------------------------------------------------
def test_a_linked_lock_file_is_refused(index, tmp_path):
    """ln -s /tmp/victim.txt IDX/write.lock; hashindex delete IDX d1 truncated the victim."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (index / "write.lock").unlink(missing_ok=True)
    (index / "write.lock").symlink_to(victim)
    hashindex("delete", index, "a-1", check_one_line=(2, "write.lock", "symbolic link"))
    assert victim.read_text() == "precious"
    assert read_manifest(index).documents == 200


def test_a_linked_next_segment_folder_is_never_written_through(index, additions, tmp_path):
    """A symlinked segments/seg-000002 made `add` write its shards, table and vectors into
    the link's target."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (index / "segments" / "seg-000002").symlink_to(elsewhere)
    result = add(index, additions)
    assert result.returncode == 0, result.stderr
    assert list(elsewhere.iterdir()) == []
    assert [s.folder for s in read_manifest(index).segments] == ["segments/seg-000001",
                                                                 "segments/seg-000003"]
    assert (index / "segments" / "seg-000002").is_symlink()  # not ours: left as it was
    assert "segments/seg-000002" in hashindex("info", index).stdout


@pytest.mark.parametrize("command", ["query", "get", "verify", "info", "delete", "add"])
def test_a_linked_segment_is_refused_by_readers_and_writers(index, additions, tmp_path,
                                                            command):
    moved = tmp_path / "moved-segment"
    shutil.move(index / "segments" / "seg-000001", moved)
    (index / "segments" / "seg-000001").symlink_to(moved)
    before = tree_snapshot(moved)
    args = {"query": ("query", index, "--like", "a-5"), "get": ("get", index, "a-1"),
            "verify": ("verify", index), "info": ("info", index),
            "delete": ("delete", index, "a-1")}.get(command)
    result = (add(index, additions) if command == "add" else hashindex(*args))
    one_line(result, 2, "seg-000001", "symbolic link")
    assert tree_snapshot(moved) == before


# ---- 4. a manifest names only paths inside its index ---------------------------------------
def rewrite_manifest(index: Path, edit) -> None:
    manifest = read_manifest(index)
    edit(manifest)
    (index / "manifest.json").write_bytes(manifest_bytes(manifest))


@pytest.mark.parametrize("where", ["relative", "absolute"])
def test_a_manifest_naming_files_outside_is_refused(index, tmp_path, where):
    """With its checksum recomputed, `verify` said ok and `get`/`query` served the outside
    file's rows."""
    segment = read_manifest(index).segments[0]
    shard = segment.shards[0]["file"]
    outside = tmp_path / "outside.parquet"
    shutil.copy(index / shard, outside)
    name = (os.path.relpath(outside, index) if where == "relative" else str(outside))

    def point_outside(manifest):
        manifest.files[name] = manifest.files.pop(shard)
        record = manifest.segments[0]
        record.shards[0]["file"] = name

    rewrite_manifest(index, point_outside)
    for args in (("verify", index), ("get", index, "a-1"), ("query", index, "--like", "a-5"),
                 ("info", index), ("delete", index, "a-1")):
        hashindex(*args, check_one_line=(2, "not a path inside the index"))
    assert outside.read_bytes() == (index.parent / "outside.parquet").read_bytes()


def test_the_index_path_itself_may_be_a_link(index, additions, tmp_path):
    """Blue/green deploys swap a link to the live index: it opens, and writers work through it."""
    live = tmp_path / "live"
    live.symlink_to(index)
    assert hashindex("verify", live).returncode == 0
    result = add(live, additions)
    assert result.returncode == 0, result.stderr
    assert read_manifest(index).documents == 230


# ---- a full disk, a read-only index and Ctrl-C keep the previous generation -----------------
def in_namespace(script: str) -> subprocess.CompletedProcess:
    """`script` (sh) in a private mount namespace, where it may mount a small tmpfs or a
    read-only bind; skipped where the kernel does not allow one."""
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no private mount namespace here (unshare -rm)")
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=TIMEOUT * 2,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


def cli() -> str:
    return f"{sys.executable} -m hashindex.app.cli"


def test_a_full_disk_mid_commit_keeps_the_previous_generation(index, additions, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    big = write_input(vector_docs(3000, "big", seed=3, dim=DIM), tmp_path / "big", "parquet")
    size = sum(p.stat().st_size for p in index.rglob("*") if p.is_file())
    script = f"""
        set -u
        mount -t tmpfs -o size={size + 200_000} tmpfs {disk} || exit 77
        cp -r {index} {disk}/index
        {cli()} add {disk}/index {big} --id-column doc --embedding-column vec --quiet \
            2>{tmp_path}/add.err
        echo "add=$?"
        {cli()} verify {disk}/index > /dev/null 2>{tmp_path}/verify.err; echo "verify=$?"
        {cli()} info {disk}/index --json > {tmp_path}/info.json 2>/dev/null
        find {disk}/index | sort > {tmp_path}/files.txt
    """
    result = in_namespace(script)
    if result.returncode == 77:
        pytest.skip("cannot mount a tmpfs here")
    assert "add=2" in result.stdout and "verify=0" in result.stdout, (
        result.stdout, (tmp_path / "add.err").read_text(), result.stderr)
    one_line(subprocess.CompletedProcess([], 2, "", (tmp_path / "add.err").read_text()), 2,
             "no space left")
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["manifest"]["documents"] == 200 and info["manifest"]["generation"] == 1
    assert "seg-000002" not in (tmp_path / "files.txt").read_text()  # cleaned up
    assert PENDING_FILE not in (tmp_path / "files.txt").read_text()


def test_a_read_only_index_is_one_line(index, additions, tmp_path):
    before = tree_snapshot(index)
    script = f"""
        mount --bind {index} {index} && mount -o remount,bind,ro {index} {index} || exit 77
        {cli()} add {index} {additions} --id-column doc --embedding-column vec --quiet \
            2>{tmp_path}/add.err; echo "add=$?"
        {cli()} delete {index} a-1 2>{tmp_path}/delete.err; echo "delete=$?"
        {cli()} get {index} a-1 > /dev/null 2>&1; echo "get=$?"
    """
    result = in_namespace(script)
    if result.returncode == 77:
        pytest.skip("cannot mount read-only here")
    assert "add=2" in result.stdout and "delete=2" in result.stdout, result
    assert "get=0" in result.stdout, result  # reading a read-only index works
    for name in ("add", "delete"):
        stderr = (tmp_path / f"{name}.err").read_text()
        one_line(subprocess.CompletedProcess([], 2, "", stderr), 2, "permission denied",
                 str(index))
    assert tree_snapshot(index) == before


def test_ctrl_c_mid_add_keeps_the_previous_generation(index, tmp_path):
    big = write_input(vector_docs(20000, "big", seed=4, dim=DIM), tmp_path / "big", "parquet")
    before = tree_snapshot(index)
    process = subprocess.Popen(
        [sys.executable, "-m", "hashindex.app.cli", "add", index, big, "--id-column", "doc",
         "--embedding-column", "vec"], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + TIMEOUT
    while not (index / PENDING_FILE).exists() and time.monotonic() < deadline:
        time.sleep(0.02)  # the add has begun making its segment
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 130, stderr
    lines = [x for x in stderr.splitlines() if x.startswith("error:")]
    assert lines == ["error: interrupted; nothing was published"], stderr
    after = tree_snapshot(index)
    after.pop("write.lock", None), before.pop("write.lock", None)
    assert after == before
