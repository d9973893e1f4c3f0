"""The bad-input matrix of issue 29: every command, the service and the Python API crossed with
every input class, one table each. Every case is refused in one line naming what is at fault
(the file, flag, column, field or argument), and nothing outside the index is created,
changed or removed:

- a command: exit 2, exactly one line on stderr (`note:` lines aside) that starts with
  `error:` and holds the case's words, no traceback; the case's folder (paths, kinds, sizes,
  sha256) the same before and after; for a command that writes an index, that index's own
  files are left out of the comparison but its manifest must be unchanged;
- the service (a real `hashindex serve --allow-writes` on loopback): a 4xx whose JSON `error`
  holds the words; its folder and the served index's manifest unchanged;
- the Python API: HashIndexError holding the words, no other exception type.

Click's runner calls `hashindex.app.cli.main` in this process (fast); a real process runs only
where the shell's bytes matter (arguments that are not UTF-8). Each case works on its own copy
of one small index of precomputed vectors, built once for the module. A case the code does not
yet meet is marked xfail(strict=True) with the reason and where its fix belongs.

Cases by command and input class (test_the_matrix_is_complete checks this table against the
cases; `-` marks a class that does not apply, with the reason in NOT_APPLICABLE):

command           missing empty binary  utf8  type range  name damaged outside  link  total
build                   3     3      3     4     6     8    13       2       3     2     47
add                     2     4      3     3     3     3     5       2       1     2     28
delete                  2     5      2     3     2     1     2       2       1     2     22
compact                 1     2      1     2     2     1     1       2       1     2     15
upgrade                 1     2      1     2     2     1     1       2       1     2     15
query                   4     6      3     4     6    10     5       2       1     1     42
get                     2     3      1     2     1     1     2       2       1     1     16
info                    1     2      1     2     1     1     1       3       1     1     14
verify                  1     2      1     2     1     1     1       3       1     1     14
serve                   1     2      1     2     3     7     2       2       1     1     22
bench                   2     1      2     2     4     4     4       -       -     -     19
variants                -     -      -     -     1     -     1       -       -     -      2
backends                -     -      -     -     1     -     1       -       -     -      2
service                 6    12      4    10    19    14    14       -       5     -     84
HashIndex.open          1     1      1     2     5     1     -       2       1     1     15
HashIndex.search        -     1      -     1     8     7     5       -       -     -     22
build_index             1     1      1     1     6     4     5       1       1     -     21
add_documents           2     2      2     1     5     2     1       1       1     2     19
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from click.testing import CliRunner
from helpers import (
    FakeEmbedder,
    build,
    corpus,
    serve_index,
    tree_snapshot,
    vector_docs,
    write_input,
)

import hashindex.embedding.embedder
import indexer.build.text_model
from hashindex.app.cli import main
from hashindex.engine import HashIndex, Like
from hashindex.errors import HashIndexError
from hashindex.store.manifest import manifest_bytes, own_checksum, read_manifest
from indexer.build import BuildConfig, build_index
from indexer.update import AddConfig, add_documents

ROOT = Path(__file__).resolve().parent.parent
DIM, BITS = 16, 16
SHARD = "segments/seg-000001/shards/part-00000.parquet"
BAD_BYTES = np.random.default_rng(29).bytes(2048)  # random, but the same on every run
LATIN1_JSONL = b'{"doc": "x1", "text": "caf\xe9 au lait", "vec": [1.0]}\n'

MISSING, EMPTY, BINARY, NON_UTF8 = "missing", "empty", "binary", "non-UTF-8"
WRONG_TYPE, OUT_OF_RANGE, UNKNOWN = "wrong type", "out of range", "unknown name"
DAMAGED, OUTSIDE, SYMLINK = "damaged index", "path outside", "symlink"
CLASSES = (MISSING, EMPTY, BINARY, NON_UTF8, WRONG_TYPE, OUT_OF_RANGE, UNKNOWN, DAMAGED,
           OUTSIDE, SYMLINK)
SHORT = dict(zip(CLASSES, ("missing", "empty", "binary", "utf8", "type", "range", "name",
                           "damaged", "outside", "link")))

NO_INPUT = "it takes no input but its flags: nothing to be missing, empty, binary or damaged"
NOT_APPLICABLE = {  # (command, class): why no case of that class exists
    **{(command, kind): NO_INPUT for command in ("variants", "backends")
       for kind in (MISSING, EMPTY, BINARY, NON_UTF8, OUT_OF_RANGE, DAMAGED, OUTSIDE, SYMLINK)},
    ("bench", DAMAGED): "it reads a labelled dataset, never an index",
    ("bench", OUTSIDE): "it reads no manifest that could name a path, and writes only its "
                        "--out report folder",
    ("bench", SYMLINK): "it opens no index, the only place where links are refused",
    ("service", DAMAGED): "a request body names no file; the served index is checked when "
                          "the service starts (the serve rows)",
    ("service", SYMLINK): "a request body names no file; links in the served index are the "
                          "serve rows'",
    ("HashIndex.open", UNKNOWN): "it takes a path and a flag: no name to look up",
    ("HashIndex.search", MISSING): "every argument but the query has a default, and a query "
                                   "is always given (None is its wrong-type case)",
    ("HashIndex.search", BINARY): "a query is an object, not a file (raw bytes are a code: "
                                  "its out-of-range case)",
    ("HashIndex.search", DAMAGED): "it runs on an index HashIndex.open has checked",
    ("HashIndex.search", OUTSIDE): "it names no path",
    ("HashIndex.search", SYMLINK): "it names no path",
    ("build_index", SYMLINK): "--out as a link is the build rows'; a link inside --encoder's "
                              "folder is a user's model folder, read as given",
}


# ---- helpers: a case's folder, its snapshot, its checks --------------------------------------
def manifest_of(index: Path | None) -> bytes | None:
    if index is None:
        return None
    path = index / "manifest.json"
    return path.read_bytes() if path.is_file() and not path.is_symlink() else None


def error_line(stderr: str, exit_code: int, words) -> str:
    """The one `error:` line (notes aside) of a refusal, checked."""
    assert exit_code == 2, (exit_code, stderr)
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("note:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def binary(name: str):
    return lambda w: write_bytes(w / name, BAD_BYTES)


def text(name: str, content: str | bytes):
    return lambda w: write_bytes(w / name, content if isinstance(content, bytes)
                                 else content.encode())


def folder(name: str):
    return lambda w: (w / name).mkdir(parents=True)


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def edit_manifest(w: Path) -> None:
    """One more document, its own checksum not redone."""
    path = w / "idx" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["documents"] += 1
    path.write_text(json.dumps(manifest, indent=2))


def non_utf8_manifest(w: Path) -> None:
    path = w / "idx" / "manifest.json"
    path.write_bytes(path.read_bytes().replace(b'"vanilla"', b'"van\xffilla"', 1))


def format_version(version: int):
    def change(w: Path) -> None:
        path = w / "idx" / "manifest.json"
        manifest = json.loads(path.read_text())
        manifest["format_version"] = version
        manifest["manifest_sha256"] = own_checksum(manifest)
        path.write_text(json.dumps(manifest))
    return change


def truncate(relative: str):
    def cut(w: Path) -> None:
        path = w / "idx" / relative
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return cut


def flip_byte(relative: str, offset: int):
    def flip(w: Path) -> None:
        path = w / "idx" / relative
        raw = bytearray(path.read_bytes())
        raw[offset] ^= 0x55
        path.write_bytes(bytes(raw))
    return flip


def point_outside(w: Path) -> None:
    """The manifest names ../outside.parquet (a copy of its shard), its checksum recomputed
    (as tests/test_index_boundaries.py's rewrite_manifest)."""
    index = w / "idx"
    manifest = read_manifest(index)
    shutil.copy(index / SHARD, w / "outside.parquet")
    manifest.files["../outside.parquet"] = manifest.files.pop(SHARD)
    manifest.segments[0].shards[0]["file"] = "../outside.parquet"
    (index / "manifest.json").write_bytes(manifest_bytes(manifest))


def link_inside(relative: str):
    """The index's file moved beside the index and linked from where it was."""
    def link(w: Path) -> None:
        path = w / "idx" / relative
        moved = w / f"moved-{path.name}"
        shutil.move(path, moved)
        path.symlink_to(moved)
    return link


def lock_link(w: Path) -> None:
    """`ln -s victim.txt IDX/write.lock` (a writer truncated the victim)."""
    (w / "victim.txt").write_text("precious")
    (w / "idx" / "write.lock").unlink(missing_ok=True)
    (w / "idx" / "write.lock").symlink_to(w / "victim.txt")


def vectors_file(name: str, rows: list[dict]):
    return lambda w: write_input(rows, w / name, "parquet")


def with_vectors(**changes) -> list[dict]:
    rows = vector_docs(3, "w", dim=DIM, start=300)
    return [{**row, **changes} for row in rows]


# ---- the command-line table ------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    command: str
    kind: str
    name: str
    argv: Callable[[Path], list]  # the arguments, from the case's folder
    words: tuple[str, ...]  # what the error line must hold
    prepare: Callable[[Path], object] | None = None
    writes: str | None = None  # the index folder the command writes, relative to the folder
    process: bool = False  # a real process: arguments that are not UTF-8 bytes
    bug: str | None = None  # xfail(strict): what is wrong and where its fix belongs
    needs: str | None = None  # a query flag this case needs (skipped where it is absent)

    @property
    def id(self) -> str:
        return f"{self.command}|{self.kind}|{self.name}"


def case(command, kind, name, argv, *words, prepare=None, writes=None, process=False, bug=None,
         needs=None) -> Case:
    return Case(command, kind, name, argv, words, prepare, writes, process, bug, needs)


FAST = ["--bits", "16", "--epochs", "1", "--quiet", "--no-cache"]
VEC = ["--embedding-column", "vec", "--id-column", "doc"]


def build_of(source: str, *flags, out: str = "out"):
    return lambda w: ["build", w / source, "--out", w / out, *FAST, *flags]


def vector_build(*flags, out: str = "out"):
    return build_of("docs.parquet", *VEC, *flags, out=out)


def encoder_build(encoder: str):
    return lambda w: [*vector_build()(w), "--encoder", w / encoder]


BUILD = [
    case("build", MISSING, "INPUT does not exist", build_of("nope.jsonl"),
         "nope.jsonl", "does not exist"),
    case("build", MISSING, "no INPUT", lambda w: ["build", "--out", w / "out", *FAST],
         "missing INPUT"),
    case("build", MISSING, "--encoder folder does not exist",
         encoder_build("noenc"), "noenc", "config.json is missing"),
    case("build", EMPTY, "empty JSONL", build_of("e.jsonl"), "e.jsonl", "no documents",
         prepare=text("e.jsonl", "")),
    case("build", EMPTY, "empty Parquet file", build_of("e.parquet"), "e.parquet",
         "not a readable Parquet file", prepare=text("e.parquet", "")),
    case("build", EMPTY, "empty folder", build_of("d"), "d: no documents", prepare=folder("d")),
    case("build", BINARY, "random bytes as JSONL", build_of("b.jsonl"), "b.jsonl",
         "invalid UTF-8", prepare=binary("b.jsonl")),
    case("build", BINARY, "random bytes as Parquet", build_of("b.parquet"), "b.parquet",
         "not a readable Parquet file", prepare=binary("b.parquet")),
    case("build", BINARY, "random bytes as CSV", build_of("b.csv"), "b.csv", "invalid UTF-8",
         prepare=binary("b.csv")),
    case("build", NON_UTF8, "JSONL with a Latin-1 byte", build_of("n.jsonl"), "n.jsonl",
         "invalid UTF-8 at byte offset 26", prepare=text("n.jsonl", LATIN1_JSONL)),
    case("build", NON_UTF8, "CSV with a Latin-1 byte", build_of("n.csv"), "n.csv",
         "invalid UTF-8 at byte offset 13",
         prepare=text("n.csv", b"id,text\na,caf\xe9 au lait\nb,more words\n")),
    case("build", NON_UTF8, "a Latin-1 .txt in a folder", build_of("d"), "a.txt",
         "invalid UTF-8", prepare=lambda w: (text("d/a.txt", b"caf\xe9 x")(w),
                                             text("d/b.txt", "fine words")(w))),
    case("build", NON_UTF8, "INPUT path with byte 0xff",
         lambda w: ["build", os.fsencode(w) + b"/no\xffpe.jsonl", "--out", w / "out", *FAST],
         "no", "pe.jsonl does not exist", process=True),
    case("build", WRONG_TYPE, "--out is a file", vector_build(out="more.parquet"), "--out",
         "more.parquet", "not a folder"),
    case("build", WRONG_TYPE, "--out under a file", vector_build(out="more.parquet/sub"),
         "--out", "more.parquet is a file, not a folder"),
    case("build", WRONG_TYPE, "--bits abc", vector_build("--bits", "abc"), "'--bits'",
         "'abc' is not a valid integer"),
    case("build", WRONG_TYPE, "--encoder is a file", encoder_build("more.parquet"),
         "more.parquet", "not a model folder"),
    case("build", WRONG_TYPE, "--embedding-column of strings",
         build_of("docs.parquet", "--embedding-column", "text"), "docs.parquet",
         "--embedding-column 'text' holds string"),
    case("build", WRONG_TYPE, "--format jsonl for a Parquet file",
         vector_build("--format", "jsonl"), "docs.parquet", "invalid UTF-8"),
    case("build", OUT_OF_RANGE, "--bits 7", vector_build("--bits", "7"), "bits=7",
         "multiple of 8"),
    case("build", OUT_OF_RANGE, "--shard-rows 0", vector_build("--shard-rows", "0"),
         "--shard-rows 0 must be at least 1"),
    case("build", OUT_OF_RANGE, "--epochs -1", vector_build("--epochs", "-1"),
         "--epochs -1 must be at least 1"),
    case("build", OUT_OF_RANGE, "--embed-workers 0", vector_build("--embed-workers", "0"),
         "--embed-workers 0 must be at least 1"),
    case("build", OUT_OF_RANGE, "--max-tokens -1", build_of("docs.parquet", "--max-tokens", "-1"),
         "--max-tokens -1"),
    case("build", OUT_OF_RANGE, "--option hidden=0",
         vector_build("--variant", "deep", "--option", "hidden=0"), "hidden=0", "out of range"),
    case("build", OUT_OF_RANGE, "--train-option learning_rate=-1",
         vector_build("--train-option", "learning_rate=-1"), "learning_rate", "out of range"),
    case("build", OUT_OF_RANGE, "--backend-option nlist=-1",
         vector_build("--backend", "ivf", "--backend-option", "nlist=-1"), "nlist=-1",
         "out of range"),
    case("build", UNKNOWN, "--variant", vector_build("--variant", "nope"),
         "unknown variant 'nope'", "vanilla"),
    case("build", UNKNOWN, "--backend", vector_build("--backend", "nope"),
         "unknown backend 'nope'"),
    case("build", UNKNOWN, "--text-column", build_of("docs.parquet", "--text-column", "nope"),
         "docs.parquet", "no column 'nope' for --text-column"),
    case("build", UNKNOWN, "--id-column",
         build_of("docs.parquet", "--embedding-column", "vec", "--id-column", "nope"),
         "no column 'nope' for --id-column"),
    case("build", UNKNOWN, "--embedding-column",
         build_of("docs.parquet", "--embedding-column", "nope"),
         "no column 'nope' for --embedding-column"),
    case("build", UNKNOWN, "--option key", vector_build("--option", "nope=1"),
         "--option 'nope=1'", "no option 'nope'"),
    case("build", UNKNOWN, "--train-option key", vector_build("--train-option", "nope=1"),
         "--train-option 'nope=1'", "no option 'nope'"),
    case("build", UNKNOWN, "--backend-option key",
         vector_build("--backend", "flat", "--backend-option", "nope=1"),
         "--backend-option 'nope=1'", "no option 'nope'"),
    case("build", UNKNOWN, "--format", vector_build("--format", "nope"),
         "unknown --format 'nope'"),
    case("build", UNKNOWN, "--embed-backend", build_of("docs.parquet", "--embed-backend", "nope"),
         "--embed-backend 'nope'"),
    case("build", UNKNOWN, "--device", build_of("docs.parquet", "--device", "nope"),
         "--device 'nope'"),
    case("build", UNKNOWN, "--engine", vector_build("--engine", "nope"), "--engine 'nope'"),
    case("build", UNKNOWN, "an unknown flag", vector_build("--bogus"), "'--bogus'"),
    case("build", DAMAGED, "--encoder's config.json is random bytes",
         encoder_build("idx/encoder"), "encoder/config.json", "corrupted",
         prepare=binary("idx/encoder/config.json")),
    case("build", DAMAGED, "--encoder's weights truncated",
         encoder_build("idx/encoder"), "encoder/model.safetensors",
         "could not be loaded", prepare=truncate("encoder/model.safetensors")),
    case("build", OUTSIDE, "--out inside the input folder", build_of("d", out="d/idx"),
         "--out", "inside the input folder", prepare=lambda w: write_input(corpus(8), w / "d",
                                                                            "textdir")),
    case("build", OUTSIDE, "--out is the input file", vector_build(out="docs.parquet"),
         "--out", "contains the input"),
    case("build", OUTSIDE, "--overwrite an index holding the input",
         lambda w: ["build", w / "idx" / "mine.parquet", "--out", w / "idx", "--overwrite",
                    *FAST, *VEC], "--out", "contains the input", writes="idx",
         prepare=lambda w: shutil.copy(w / "docs.parquet", w / "idx" / "mine.parquet")),
    case("build", SYMLINK, "--out is a link to an index (--overwrite)",
         lambda w: ["build", w / "docs.parquet", "--out", w / "live", "--overwrite", *FAST, *VEC],
         "--out", "live is a symbolic link", prepare=lambda w: (w / "live").symlink_to(w / "idx")),
    case("build", SYMLINK, "--out is a dangling link", vector_build(out="live"), "--out",
         "symbolic link", prepare=lambda w: (w / "live").symlink_to(w / "nowhere")),
]


# The index argument: every command that opens an index, crossed with each of these.
INDEX_INPUTS = [  # (class, name, prepare, the index path, words)
    (MISSING, "no such folder", None, "nope", ("nope", "does not exist")),
    (EMPTY, "an empty folder", folder("empty"), "empty", ("empty", "manifest.json is missing")),
    (EMPTY, "an empty manifest", text("idx/manifest.json", ""), "idx",
     ("manifest.json", "corrupted")),
    (BINARY, "random bytes as manifest", binary("idx/manifest.json"), "idx",
     ("manifest.json", "corrupted")),
    (NON_UTF8, "a manifest with byte 0xff", non_utf8_manifest, "idx",
     ("manifest.json", "corrupted", "0xff")),
    (WRONG_TYPE, "a file as the index", None, "more.parquet",
     ("more.parquet", "not a hashindex index")),
    (OUT_OF_RANGE, "format version 99", format_version(99), "idx",
     ("manifest.json", "format version 99")),
    (DAMAGED, "manifest edited without its checksum", edit_manifest, "idx",
     ("manifest.json", "edited or damaged")),
    (DAMAGED, "a truncated shard", truncate(SHARD), "idx",
     ("part-00000.parquet", "truncated")),
    (OUTSIDE, "manifest naming ../outside.parquet", point_outside, "idx",
     ("'../outside.parquet'", "not a path inside the index")),
    (SYMLINK, "a linked shard", link_inside(SHARD), "idx",
     ("part-00000.parquet", "symbolic link")),
]
INDEX_COMMANDS = {  # command: (its arguments around INDEX, whether it writes the index)
    "add": (lambda w, index: ["add", index, w / "more.parquet", "--quiet", "--no-cache"], True),
    "delete": (lambda w, index: ["delete", index, "v-1"], True),
    "compact": (lambda w, index: ["compact", index], True),
    "upgrade": (lambda w, index: ["upgrade", index], True),
    "query": (lambda w, index: ["query", index, "--like", "v-1"], False),
    "get": (lambda w, index: ["get", index, "v-1"], False),
    "info": (lambda w, index: ["info", index], False),
    "verify": (lambda w, index: ["verify", index], False),
    "serve": (lambda w, index: ["serve", index], False),
}


def index_case(command, kind, name, prepare, path, words) -> Case:
    arguments, writes = INDEX_COMMANDS[command]
    return case(command, kind, name, lambda w: arguments(w, w / path), *words, prepare=prepare,
                writes="idx" if writes else None)


def bad_bytes_path(command) -> Case:
    """INDEX as bytes that are not UTF-8 (a folder that does not exist), from a real shell."""
    arguments, writes = INDEX_COMMANDS[command]
    return case(command, NON_UTF8, "INDEX path with byte 0xff",
                lambda w: arguments(w, os.fsencode(w) + b"/id\xffx"), "does not exist",
                process=True, writes="idx" if writes else None)


INDEX_CASES = [index_case(command, *row) for command in INDEX_COMMANDS for row in INDEX_INPUTS]
WRITERS = [command for command, (_, writes) in INDEX_COMMANDS.items() if writes]


def add_of(source: str, *flags):
    return lambda w: ["add", w / "idx", w / source, "--quiet", "--no-cache", *flags]


def delete_of(*arguments):
    return lambda w: ["delete", w / "idx", *arguments]


def query_of(*arguments):
    return lambda w: ["query", w / "idx", *arguments]


def like(*flags):
    return query_of("--like", "v-1", *flags)


def serve_of(*flags):
    return lambda w: ["serve", w / "idx", *flags]


def bench_of(*flags, dataset: str = "synthetic", out: str = "report"):
    return lambda w: ["bench", "--dataset", w / dataset if "." in dataset else dataset,
                      "--out", w / out, "--methods", "lsh", "--bits", "16", "--seeds", "1",
                      "--size", "200", "--quiet", *flags]


def labelled(dataset: str, *flags):
    return bench_of("--label-column", "topic", *flags, dataset=dataset)


COMMAND_CASES = [
    # add: its INPUT, the columns it reads, and a linked lock
    case("add", MISSING, "INPUT does not exist", add_of("nope.parquet"), "nope.parquet",
         "does not exist", writes="idx"),
    case("add", EMPTY, "empty JSONL", add_of("e.jsonl"), "e.jsonl", "no documents",
         prepare=text("e.jsonl", ""), writes="idx"),
    case("add", EMPTY, "empty folder", add_of("d"), "d: no documents", prepare=folder("d"),
         writes="idx"),
    case("add", BINARY, "random bytes as Parquet", add_of("b.parquet"), "b.parquet",
         "not a readable Parquet file", prepare=binary("b.parquet"), writes="idx"),
    case("add", BINARY, "random bytes as JSONL", add_of("b.jsonl"), "b.jsonl",
         "invalid UTF-8", prepare=binary("b.jsonl"), writes="idx"),
    case("add", NON_UTF8, "JSONL with a Latin-1 byte", add_of("n.jsonl"), "n.jsonl",
         "invalid UTF-8 at byte offset 26", prepare=text("n.jsonl", LATIN1_JSONL), writes="idx"),
    case("add", NON_UTF8, "INPUT path with byte 0xff",
         lambda w: ["add", w / "idx", os.fsencode(w) + b"/mo\xffre.parquet", "--quiet"],
         "re.parquet does not exist", process=True, writes="idx"),
    case("add", WRONG_TYPE, "--embedding-column of strings", add_of("w.parquet"), "w.parquet",
         "--embedding-column 'vec' holds string",
         prepare=vectors_file("w", with_vectors(vec="not a vector")), writes="idx"),
    case("add", WRONG_TYPE, "strings for an integer column", add_of("w.parquet"), "'year'",
         "int64", prepare=vectors_file("w", with_vectors(year="two thousand")), writes="idx"),
    case("add", OUT_OF_RANGE, "embeddings of dimension 8", add_of("w.parquet"), "w.parquet",
         "dimension 8", "16-dimensional",
         prepare=vectors_file("w", vector_docs(3, "w", dim=8, start=300)), writes="idx"),
    case("add", OUT_OF_RANGE, "NaN embeddings", add_of("w.parquet"), "w.parquet", "NaN or inf",
         prepare=vectors_file("w", with_vectors(vec=[float("nan")] * DIM)), writes="idx"),
    case("add", UNKNOWN, "--format", add_of("more.parquet", "--format", "nope"),
         "unknown --format 'nope'", writes="idx"),
    case("add", UNKNOWN, "--id-column", add_of("more.parquet", "--id-column", "nope"),
         "more.parquet", "no column 'nope' for --id-column", writes="idx"),
    case("add", UNKNOWN, "--embedding-column", add_of("more.parquet", "--embedding-column",
                                                      "nope"),
         "no column 'nope' for --embedding-column", writes="idx"),
    case("add", UNKNOWN, "--text-column", add_of("more.parquet", "--text-column", "nope"),
         "no column 'nope'", "--text-column", writes="idx"),
    case("add", UNKNOWN, "an unknown flag", add_of("more.parquet", "--bits", "16"),
         "'--bits'", writes="idx"),

    # delete: its IDs and --ids FILE
    case("delete", MISSING, "--ids file does not exist", delete_of("--ids", "nope.txt"),
         "--ids", "nope.txt"),
    case("delete", EMPTY, "an empty --ids file",
         lambda w: ["delete", w / "idx", "--ids", w / "e.txt"], "no ids to delete",
         prepare=text("e.txt", ""), writes="idx"),
    case("delete", EMPTY, "no IDs at all", delete_of(), "no ids to delete", writes="idx"),
    case("delete", EMPTY, "an empty ID", delete_of("v-1", ""), "ID", "empty", writes="idx"),
    case("delete", BINARY, "random bytes as --ids",
         lambda w: ["delete", w / "idx", "--ids", w / "b.txt"], "--ids", "b.txt",
         "cannot read it", prepare=binary("b.txt"), writes="idx"),
    case("delete", NON_UTF8, "a Latin-1 --ids file",
         lambda w: ["delete", w / "idx", "--ids", w / "n.txt"], "--ids", "n.txt", "0xff",
         prepare=text("n.txt", b"v-1\nv-\xff2\n"), writes="idx"),
    case("delete", NON_UTF8, "ID with byte 0xfe",
         lambda w: ["delete", w / "idx", "v-1", b"v-\xfe2"], "ID", "byte 0xfe", process=True,
         writes="idx"),
    case("delete", WRONG_TYPE, "--ids is a folder",
         lambda w: ["delete", w / "idx", "--ids", w / "d"], "'--ids'", "is a directory",
         prepare=folder("d"), writes="idx"),
    case("delete", UNKNOWN, "an unknown id with --strict", delete_of("v-1", "nope", "--strict"),
         "'nope'", "nothing was deleted", writes="idx"),
    case("delete", UNKNOWN, "an unknown flag", delete_of("v-1", "--force"), "'--force'",
         writes="idx"),

    # compact, upgrade: INDEX alone
    *[case(command, WRONG_TYPE, "an extra argument", lambda w, c=command: [c, w / "idx", "x"],
           "unexpected extra argument (x)", writes="idx") for command in ("compact", "upgrade")],
    *[case(command, UNKNOWN, "an unknown flag", lambda w, c=command: [c, w / "idx", "--force"],
           "'--force'", writes="idx") for command in ("compact", "upgrade")],

    # every writer: a linked write.lock
    *[case(command, SYMLINK, "write.lock links outside",
           lambda w, c=command: INDEX_COMMANDS[c][0](w, w / "idx"), "write.lock",
           "symbolic link", prepare=lock_link, writes="idx") for command in WRITERS],

    # query: TEXT, --queries FILE and every knob
    case("query", MISSING, "--queries file does not exist", query_of("--queries", "nope.txt"),
         "--queries", "nope.txt", "does not exist"),
    case("query", MISSING, "no INDEX", lambda w: ["query"], "pass the INDEX"),
    case("query", MISSING, "no TEXT", query_of(), "pass exactly one of a query TEXT"),
    case("query", EMPTY, "an empty --queries file",
         lambda w: ["query", w / "idx", "--queries", w / "e.txt"], "e.txt", "holds no queries",
         prepare=text("e.txt", "")),
    case("query", EMPTY, "an empty TEXT", query_of(""), "query text is empty"),
    case("query", EMPTY, "a blank TEXT", query_of("   "), "query text is empty"),
    case("query", EMPTY, "an empty --like", query_of("--like", ""), "no document with id ''"),
    case("query", BINARY, "random bytes as --queries",
         lambda w: ["query", w / "idx", "--queries", w / "b.txt"], "--queries", "b.txt",
         "not UTF-8", prepare=binary("b.txt")),
    case("query", BINARY, "a NUL byte in --queries",
         lambda w: ["query", w / "idx", "--queries", w / "z.txt"], "z.txt", "NUL byte",
         prepare=text("z.txt", b"a query\x00\x01")),
    case("query", NON_UTF8, "a Latin-1 --queries file",
         lambda w: ["query", w / "idx", "--queries", w / "n.txt"], "--queries", "n.txt",
         "not UTF-8", "offset 3", prepare=text("n.txt", b"caf\xe9\n")),
    case("query", NON_UTF8, "TEXT with byte 0xff", query_of(b"bad \xff words"), "query TEXT",
         "byte 0xff", process=True),
    case("query", NON_UTF8, "--where with byte 0xff", like("--where", b"year=\xff"), "--where",
         "byte 0xff", process=True),
    case("query", WRONG_TYPE, "-k abc", like("-k", "abc"), "'-k'", "'abc' is not a valid integer"),
    case("query", WRONG_TYPE, "--radius abc", like("--radius", "abc"), "'--radius'",
         "not a valid integer"),
    case("query", WRONG_TYPE, "--queries is a folder",
         lambda w: ["query", w / "idx", "--queries", w / "d"], "--queries", "folder",
         prepare=folder("d")),
    case("query", WRONG_TYPE, "TEXT for an index without a text model", query_of("hello"),
         "precomputed embeddings", "no text model"),
    case("query", WRONG_TYPE, "a --where value not of the column's type",
         like("--where", "year>=abc"), "--where year", "'abc'", "int64"),
    case("query", OUT_OF_RANGE, "-k 0", like("-k", "0"), "k=0", "at least 1"),
    case("query", OUT_OF_RANGE, "-k -1", like("-k", "-1"), "k=-1", "at least 1"),
    case("query", OUT_OF_RANGE, "--radius beyond the bits", like("--radius", "17"), "radius=17",
         "0 to 16"),
    case("query", OUT_OF_RANGE, "--radius -1", like("--radius", "-1"), "radius=-1", "0 to 16"),
    case("query", OUT_OF_RANGE, "--rerank-candidates 0", like("--rerank-candidates", "0"),
         "rerank_candidates=0", "at least 1"),
    case("query", OUT_OF_RANGE, "--backend-option nprobe=0",
         like("--backend", "ivf", "--backend-option", "nprobe=0"), "nprobe=0", "out of range"),
    case("query", OUT_OF_RANGE, "--where beyond int64", like("--where", f"year>={2 ** 70}"),
         "--where year", str(2 ** 70), "int64"),
    case("query", OUT_OF_RANGE, "--where beyond int64, one of",
         like("--where", f"year={2 ** 64}"), "--where year", str(2 ** 64), "int64"),
    case("query", OUT_OF_RANGE, "--target-recall 2", like("--target-recall", "2"),
         "--target-recall", "2", needs="target_recall"),
    case("query", UNKNOWN, "--backend", like("--backend", "nope"), "unknown backend 'nope'"),
    case("query", UNKNOWN, "--backend-option key",
         like("--backend", "ivf", "--backend-option", "nope=1"), "--backend-option 'nope=1'",
         "no option 'nope'"),
    case("query", UNKNOWN, "--where column", like("--where", "nope=1"), "--where",
         "no metadata column 'nope'"),
    case("query", UNKNOWN, "--like id", query_of("--like", "nope"), "no document with id 'nope'"),
    case("query", UNKNOWN, "an unknown flag", like("--bogus"), "'--bogus'"),

    # get: its ID
    case("get", MISSING, "no ID", lambda w: ["get", w / "idx"], "Missing argument 'ID'"),
    case("get", EMPTY, "an empty ID", lambda w: ["get", w / "idx", ""],
         "no document with id ''"),
    case("get", NON_UTF8, "ID with byte 0xff", lambda w: ["get", w / "idx", b"v-\xff1"], "ID",
         "byte 0xff", process=True),
    case("get", UNKNOWN, "an unknown id", lambda w: ["get", w / "idx", "nope"],
         "no document with id 'nope'"),
    case("get", UNKNOWN, "an unknown flag", lambda w: ["get", w / "idx", "v-1", "--jsn"],
         "'--jsn'"),

    # info, verify: INDEX alone
    case("info", UNKNOWN, "an unknown flag", lambda w: ["info", w / "idx", "--jsn"], "'--jsn'"),
    case("verify", UNKNOWN, "an unknown flag", lambda w: ["verify", w / "idx", "--jsn"],
         "'--jsn'"),
    case("info", DAMAGED, "--verify: a shard's byte changed, same size",
         lambda w: ["info", w / "idx", "--verify"], "part-00000.parquet", "sha256",
         prepare=flip_byte(SHARD, 200)),
    case("verify", DAMAGED, "a shard's byte changed, same size",
         lambda w: ["verify", w / "idx"], "part-00000.parquet", "sha256",
         prepare=flip_byte(SHARD, 200)),

    # serve: its flags, each refused before it listens
    case("serve", WRONG_TYPE, "--port abc", serve_of("--port", "abc"), "'--port'",
         "not a valid integer"),
    case("serve", OUT_OF_RANGE, "--port 70000", serve_of("--port", "70000"),
         "--port 70000 is out of range"),
    case("serve", OUT_OF_RANGE, "--max-k 0", serve_of("--max-k", "0"), "'--max-k'", "x>=1"),
    case("serve", OUT_OF_RANGE, "--read-timeout 0", serve_of("--read-timeout", "0"),
         "'--read-timeout'", "0.1<=x<=3600"),
    case("serve", OUT_OF_RANGE, "--reload-interval nan", serve_of("--reload-interval", "nan"),
         "'--reload-interval'", "not a finite number"),
    case("serve", OUT_OF_RANGE, "--workers 0", serve_of("--workers", "0"), "'--workers'",
         "1<=x<=64"),
    case("serve", OUT_OF_RANGE, "--max-body-bytes 10", serve_of("--max-body-bytes", "10"),
         "'--max-body-bytes'", "x>=1024"),
    case("serve", UNKNOWN, "--host that is no address", serve_of("--host", "999.1.1.1"),
         "--host 999.1.1.1", "not an address"),
    case("serve", UNKNOWN, "an unknown flag", serve_of("--allow-write"), "'--allow-write'"),
    case("serve", WRONG_TYPE, "no INDEX", lambda w: ["serve"], "Missing argument 'INDEX'"),

    # bench: its dataset and flags
    case("bench", MISSING, "--dataset file does not exist", labelled("nope.jsonl"),
         "nope.jsonl", "does not exist"),
    case("bench", MISSING, "no --dataset", lambda w: ["bench", "--out", w / "report"],
         "Missing option '--dataset'"),
    case("bench", EMPTY, "an empty dataset file", labelled("e.jsonl"), "e.jsonl",
         "no documents", prepare=text("e.jsonl", "")),
    case("bench", BINARY, "random bytes as JSONL", labelled("b.jsonl"), "b.jsonl",
         "invalid UTF-8", prepare=binary("b.jsonl")),
    case("bench", BINARY, "random bytes as Parquet", labelled("b.parquet"), "b.parquet",
         "not a readable Parquet file", prepare=binary("b.parquet")),
    case("bench", NON_UTF8, "a Latin-1 dataset", labelled("n.jsonl"), "n.jsonl",
         "invalid UTF-8", prepare=text("n.jsonl", b'{"text": "caf\xe9", "topic": "a"}\n')),
    case("bench", NON_UTF8, "--dataset with byte 0xff",
         lambda w: ["bench", "--dataset", b"synth\xffetic", "--out", w / "report"],
         "--dataset", "is not one of", process=True),
    case("bench", WRONG_TYPE, "--bits abc", bench_of("--bits", "abc"), "--bits 'abc'",
         "integers"),
    case("bench", WRONG_TYPE, "--seeds abc", bench_of("--seeds", "abc"), "'--seeds'",
         "not a valid integer"),
    case("bench", WRONG_TYPE, "--out is a file", bench_of(out="more.parquet"), "--out",
         "more.parquet is a file"),
    case("bench", WRONG_TYPE, "--out under a file", bench_of(out="more.parquet/report"),
         "--out", "is a file, not a folder"),
    case("bench", OUT_OF_RANGE, "--bits 7", bench_of("--bits", "7"), "bits=7", "multiple of 8"),
    case("bench", OUT_OF_RANGE, "--seeds 0", bench_of("--seeds", "0"), "--seeds 0"),
    case("bench", OUT_OF_RANGE, "--size 0", bench_of("--size", "0"), "--size", "0 documents"),
    case("bench", OUT_OF_RANGE, "--jobs 0", bench_of("--jobs", "0"), "--jobs 0"),
    case("bench", UNKNOWN, "--dataset", bench_of(dataset="nope"), "--dataset 'nope'",
         "is not one of"),
    case("bench", UNKNOWN, "--methods", bench_of("--methods", "nope"), "unknown method 'nope'"),
    case("bench", UNKNOWN, "--label-column",
         bench_of("--label-column", "nope", "--embedding-column", "vec", dataset="docs.parquet"),
         "docs.parquet", "no column 'nope' for --label-column"),
    case("bench", UNKNOWN, "--format",
         labelled("docs.parquet", "--embedding-column", "vec", "--format", "nope"),
         "unknown --format 'nope'"),

    # variants, backends: flags only
    *[case(command, WRONG_TYPE, "an extra argument", lambda w, c=command: [c, "x"],
           "unexpected extra argument (x)") for command in ("variants", "backends")],
    *[case(command, UNKNOWN, "an unknown flag", lambda w, c=command: [c, "--bogus"],
           "'--bogus'") for command in ("variants", "backends")],
]
COMMAND_CASES += [bad_bytes_path(command) for command in INDEX_COMMANDS if command
                  not in ("add", "delete", "query", "get")]
CLI_CASES = BUILD + INDEX_CASES + COMMAND_CASES


def cli_params(cases):
    from hashindex.app.cli.query import query

    flags = {parameter.name for parameter in query.params}
    for item in cases:
        marks = []
        if item.bug:
            marks.append(pytest.mark.xfail(strict=True, raises=AssertionError, reason=item.bug))
        if item.needs and item.needs not in flags:
            marks.append(pytest.mark.skip(reason=f"query has no --{item.needs.replace('_', '-')}"))
        yield pytest.param(item, marks=marks, id=item.id)


# ---- fixtures --------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def fake_text_model(monkeypatch):
    monkeypatch.setattr(indexer.build.text_model, "Embedder", FakeEmbedder)
    monkeypatch.setattr(hashindex.embedding.embedder, "Embedder", FakeEmbedder)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """idx (40 precomputed vectors, 16 bits, stored embeddings), its input docs.parquet, and
    more.parquet (5 new documents to add)."""
    folder = tmp_path_factory.mktemp("matrix")
    write_input(vector_docs(40, "v", dim=DIM), folder / "docs", "parquet")
    build(folder / "docs.parquet", folder / "idx", None, bits=BITS, embedding_column="vec",
          store_embeddings=True)
    write_input(vector_docs(5, "n", dim=DIM, start=100), folder / "more", "parquet")
    return folder


@pytest.fixture()
def work(base, tmp_path) -> Path:
    """The case's own folder: a copy of the index and both inputs. (Embedding caches and
    exported models go to the run's private cache folder, conftest.py's: hashindex's own
    state, not the user's files.)"""
    shutil.copytree(base / "idx", tmp_path / "idx")
    for name in ("docs.parquet", "more.parquet"):
        shutil.copy(base / name, tmp_path / name)
    return tmp_path


def never_serve(*args, **kwargs):
    raise AssertionError("the command went on to serve instead of refusing")


def run_cli(item: Case, w: Path, monkeypatch) -> tuple[int, str]:
    argv = item.argv(w)
    if item.process:
        result = subprocess.run(
            [sys.executable, "-m", "hashindex.app.cli",
             *[a if isinstance(a, bytes) else os.fsencode(a) for a in argv]],
            capture_output=True, cwd=w, timeout=120,
            env={**os.environ, "LC_ALL": "C.UTF-8", "PYTHONPATH": str(ROOT),
                 "HF_HUB_OFFLINE": "1"})
        stderr = result.stderr.decode("utf-8", "replace")
        assert "Traceback" not in result.stdout.decode("utf-8", "replace")
        return result.returncode, stderr
    import uvicorn

    import hashindex.app.serve.workers

    monkeypatch.setattr(uvicorn, "run", never_serve)
    monkeypatch.setattr(hashindex.app.serve.workers, "run_workers", never_serve)
    result = CliRunner().invoke(main, [str(a) for a in argv])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.stderr


# ---- the commands ----------------------------------------------------------------------------
@pytest.mark.parametrize("item", list(cli_params(CLI_CASES)))
def test_command(item: Case, work: Path, monkeypatch):
    if item.prepare is not None:
        item.prepare(work)
    index = work / item.writes if item.writes else None
    before, manifest = tree_snapshot(work, skip=index), manifest_of(index)
    code, stderr = run_cli(item, work, monkeypatch)
    error_line(stderr, code, item.words)
    assert tree_snapshot(work, skip=index) == before
    assert manifest_of(index) == manifest


# ---- the service -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    endpoint: str
    kind: str
    name: str
    method: str
    path: str
    body: bytes | dict | None
    words: tuple[str, ...]
    bug: str | None = None

    @property
    def id(self) -> str:
        return f"{self.endpoint}|{self.kind}|{self.name}"


VEC16 = [0.25] * DIM
POSTS = {  # endpoint: a valid body (a row below changes it)
    "POST /search": {"like": "v-1"},
    "POST /search/batch": {"queries": [{"like": "v-1"}]},
    "POST /documents": {"documents": [{"id": "new-1", "embedding": VEC16}]},
    "POST /documents/delete": {"ids": ["v-1"]},
}
BODIES = [  # (class, name, body, words): every POST endpoint
    (EMPTY, "an empty body", b"", ("body", "Invalid JSON")),
    (BINARY, "random bytes", BAD_BYTES, ("body", "Invalid JSON")),
    (NON_UTF8, "a Latin-1 byte", b'{"text": "caf\xe9"}', ("body", "UTF-8")),
    (NON_UTF8, "a lone surrogate escape", b'{"text": "bad \\ud800"}', ("body", "surrogate")),
    (WRONG_TYPE, "an array, not an object", b"[1, 2]", ("body", "object")),
]


def request(endpoint, kind, name, body, *words, bug=None) -> Request:
    method, path = endpoint.split(" ", 1)
    return Request(endpoint, kind, name, method, path, body, words, bug)


def search(**fields):
    return request_body("POST /search", **fields)


def request_body(endpoint, **fields):
    return {**POSTS[endpoint], **fields}


def new_document(**fields) -> dict:
    return {"documents": [{"id": "new-1", "embedding": VEC16, **fields}]}


SERVICE_CASES = [
    *[request(endpoint, kind, name, body, *words) for endpoint in POSTS
      for kind, name, body, words in BODIES],
    *[request(endpoint, UNKNOWN, "an unknown field", {**body, "bogus": 1}, "bogus", "Extra")
      for endpoint, body in POSTS.items()],
    # POST /search
    request("POST /search", MISSING, "no query", {}, "give exactly one of text"),
    request("POST /search", EMPTY, "an empty text", {"text": ""}, "text", "empty"),
    request("POST /search", EMPTY, "an empty code", {"code": ""}, "code", "0 bits"),
    request("POST /search", WRONG_TYPE, "k as a string", search(k="10"), "k", '"10"'),
    request("POST /search", WRONG_TYPE, "k true", search(k=True), "k", "true"),
    request("POST /search", WRONG_TYPE, "an embedding as a string", {"embedding": "abc"},
            "embedding", "array"),
    request("POST /search", WRONG_TYPE, "rerank as a string", search(rerank="yes"), "rerank"),
    request("POST /search", WRONG_TYPE, "text for an index without a text model",
            {"text": "hello"}, "no text model"),
    request("POST /search", WRONG_TYPE, "a filter value not of the column's type",
            search(filter={"year": "abc"}), "filter.year", "int64"),
    request("POST /search", OUT_OF_RANGE, "k 0", search(k=0), "k: 0 is out of range"),
    request("POST /search", OUT_OF_RANGE, "k beyond int64", search(k=2 ** 70), "k"),
    request("POST /search", OUT_OF_RANGE, "radius beyond the bits", search(radius=17),
            "radius=17"),
    request("POST /search", OUT_OF_RANGE, "a filter beyond int64",
            search(filter={"year": {"gte": 2 ** 70}}), "filter.year.gte", "64-bit"),
    request("POST /search", OUT_OF_RANGE, "an embedding of dimension 8",
            {"embedding": [0.5] * 8}, "dimension 8"),
    request("POST /search", OUT_OF_RANGE, "an all-zero embedding", {"embedding": [0.0] * DIM},
            "all zeros"),
    request("POST /search", OUT_OF_RANGE, "a NaN in the embedding",
            b'{"embedding": [NaN, 1.0]}', "embedding.0", "finite"),
    request("POST /search", OUT_OF_RANGE, "a code of 32 bits", {"code": "00000000"}, "code",
            "32 bits"),
    request("POST /search", OUT_OF_RANGE, "nprobe 0",
            search(backend="ivf", backend_options={"nprobe": 0}), "nprobe=0", "out of range"),
    request("POST /search", UNKNOWN, "a backend", search(backend="nope"),
            "unknown backend 'nope'"),
    request("POST /search", UNKNOWN, "a backend option",
            search(backend="ivf", backend_options={"nope": 1}), "nope"),
    request("POST /search", UNKNOWN, "a filter column", search(filter={"nope": 1}), "filter",
            "'nope'"),
    request("POST /search", UNKNOWN, "a like", {"like": "nope"},
            "no document with id 'nope'"),
    request("POST /search", OUTSIDE, "a like_id naming the manifest",
            {"like": "../idx/manifest.json"}, "no document with id '../idx/manifest.json'"),
    # POST /search/batch
    request("POST /search/batch", MISSING, "no queries", {}, "queries", "Field required"),
    request("POST /search/batch", EMPTY, "an empty query", {"queries": [{}]}, "queries[0]",
            "give exactly one of"),
    request("POST /search/batch", WRONG_TYPE, "queries as an object", {"queries": {"a": 1}},
            "queries", "array"),
    request("POST /search/batch", WRONG_TYPE, "a query as a number", {"queries": [1]},
            "queries.0"),
    request("POST /search/batch", OUT_OF_RANGE, "k 0 in the second query",
            {"queries": [{"like": "v-1"}, {"like": "v-2", "k": 0}]}, "queries[1]", "k"),
    request("POST /search/batch", OUT_OF_RANGE, "more hits than --max-batch-hits",
            {"queries": [{"code": f"{i:04x}", "k": 1000} for i in range(101)]},
            "--max-batch-hits"),
    request("POST /search/batch", UNKNOWN, "a like", {"queries": [{"like": "nope"}]},
            "queries[0]", "'nope'"),
    request("POST /search/batch", UNKNOWN, "a backend",
            {"queries": [{"like": "v-1", "backend": "nope"}]}, "queries[0]",
            "unknown backend 'nope'"),
    # POST /documents
    request("POST /documents", MISSING, "no documents", {}, "documents", "Field required"),
    request("POST /documents", MISSING, "no id", {"documents": [{"embedding": VEC16}]},
            "documents.0.id", "Field required"),
    request("POST /documents", MISSING, "no embedding", {"documents": [{"id": "new-1"}]},
            "'new-1'", "no embedding"),
    request("POST /documents", EMPTY, "no document", {"documents": []}, "documents",
            "none given"),
    request("POST /documents", EMPTY, "an empty id", new_document(id=""), "id is empty"),
    request("POST /documents", WRONG_TYPE, "upsert as a string",
            {**new_document(), "upsert": "yes"}, "upsert", '"yes"'),
    request("POST /documents", WRONG_TYPE, "an embedding as a string",
            new_document(embedding="abc"), "documents.0.embedding"),
    request("POST /documents", WRONG_TYPE, "a string for an integer column",
            new_document(metadata={"year": "abc"}), "'year'", "int64"),
    request("POST /documents", WRONG_TYPE, "true for an integer column",
            new_document(metadata={"year": True}), "'year'"),
    request("POST /documents", OUT_OF_RANGE, "metadata beyond int64",
            new_document(metadata={"year": 2 ** 70}), "documents.0.metadata.year", "64-bit"),
    request("POST /documents", OUT_OF_RANGE, "an embedding of dimension 8",
            new_document(embedding=[0.5] * 8), "16-dimensional"),
    request("POST /documents", OUT_OF_RANGE, "an all-zero embedding",
            new_document(embedding=[0.0] * DIM), "all zeros"),
    request("POST /documents", UNKNOWN, "a metadata column", new_document(metadata={"nope": 1}),
            "nope", "metadata columns"),
    # POST /documents/delete
    request("POST /documents/delete", MISSING, "no ids", {}, "ids", "Field required"),
    request("POST /documents/delete", EMPTY, "an empty id", {"ids": [""]}, "ids", "empty"),
    request("POST /documents/delete", WRONG_TYPE, "ids as a string", {"ids": "v-1"}, "ids",
            "array"),
    request("POST /documents/delete", WRONG_TYPE, "an id as a number", {"ids": [1]}, "ids.0",
            "string"),
    request("POST /documents/delete", WRONG_TYPE, "strict as a string",
            {"ids": ["v-1"], "strict": "yes"}, "strict"),
    request("POST /documents/delete", UNKNOWN, "an unknown id, strict",
            {"ids": ["nope"], "strict": True}, "'nope'", "nothing was deleted"),
    # GET and DELETE /documents/ID: the id in the path
    *[request(f"{method} /documents/ID", kind, name, None, *words) for method in ("GET", "DELETE")
      for kind, name, words in (
          (EMPTY, "", ("''",)),
          (NON_UTF8, "%ff%fe", ("\ufffd",)),
          (UNKNOWN, "nope", ("'nope'",)),
          (OUTSIDE, "..%2F..%2Fmanifest.json", ("'../../manifest.json'",)),
          (OUTSIDE, "..%2Fidx%2Fmanifest.json", ("'../idx/manifest.json'",)))],
]


@pytest.fixture(scope="module")
def service(base, tmp_path_factory):
    """A writable service on a copy of the module's index: (url, its folder, the index)."""
    folder = tmp_path_factory.mktemp("service")
    shutil.copytree(base / "idx", folder / "idx")
    with serve_index(folder / "idx", folder / "serve.log", args=["--allow-writes"]) as url:
        yield url, folder, folder / "idx"


def send(url: str, item: Request) -> httpx.Response:
    path = item.path.replace("ID", item.name) if item.path.endswith("/ID") else item.path
    if isinstance(item.body, dict):
        content = json.dumps(item.body).encode()
    else:
        content = item.body
    return httpx.request(item.method, url + path, content=content, timeout=60,
                         headers={"content-type": "application/json"} if content is not None
                         else None)


@pytest.mark.parametrize("item", [
    pytest.param(item, id=item.id, marks=[pytest.mark.xfail(
        strict=True, raises=AssertionError, reason=item.bug)] if item.bug else [])
    for item in SERVICE_CASES])
def test_service(item: Request, service):
    url, folder, index = service
    before = tree_snapshot(folder, skip=index)
    before.pop("serve.log", None)
    manifest = manifest_of(index)
    answer = send(url, item)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
    error = answer.json()["error"]
    for word in item.words:
        assert word in error, (word, error)
    after = tree_snapshot(folder, skip=index)
    after.pop("serve.log", None)
    assert after == before
    assert manifest_of(index) == manifest


# ---- the Python API --------------------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    api: str
    kind: str
    name: str
    call: Callable  # (case folder, opened index or None) -> the call that must raise
    words: tuple[str, ...]
    prepare: Callable[[Path], object] | None = None
    writes: str | None = None
    bug: str | None = None
    needs: str | None = None  # a keyword of HashIndex.request this call needs
    text_index: bool = False  # works on a copy of a text index, text-idx
    raises: type = AssertionError  # what a case marked as a bug raises today

    @property
    def id(self) -> str:
        return f"{self.api}|{self.kind}|{self.name}"


def api(name, kind, label, call, *words, prepare=None, writes=None, bug=None, needs=None,
        text_index=False, raises=AssertionError):
    return Call(name, kind, label, call, words, prepare, writes, bug, needs, text_index, raises)


def open_(path: str, **options):
    return lambda w, index: HashIndex.open(w / path if path else path, **options)


def searching(query, **options):
    return lambda w, index: index.search(query, **options)


def building(source: str = "docs.parquet", out: str = "out", columns=None, **options):
    columns = {"embedding_column": "vec", "id_column": "doc"} if columns is None else columns
    return lambda w, index: build_index(BuildConfig(
        input=str(w / source), out=str(w / out), columns=columns, show_progress=False,
        use_cache=False, **options))


def adding(source: str = "more.parquet", index_path: str = "idx", **options):
    return lambda w, index: add_documents(AddConfig(
        index=str(w / index_path), input=str(w / source), show_progress=False, use_cache=False,
        **options))


ENGINE = "hashindex/engine.py"
API_CASES = [
    api("HashIndex.open", MISSING, "no such folder", open_("nope"), "nope", "does not exist"),
    api("HashIndex.open", EMPTY, "an empty folder", open_("empty"), "manifest.json is missing",
        prepare=folder("empty")),
    api("HashIndex.open", BINARY, "random bytes as manifest", open_("idx"), "manifest.json",
        "corrupted", prepare=binary("idx/manifest.json")),
    api("HashIndex.open", NON_UTF8, "a path with a lone surrogate",
        lambda w, index: HashIndex.open(f"{w}/id\udcffx"), "does not exist"),
    api("HashIndex.open", NON_UTF8, "a manifest with byte 0xff", open_("idx"), "manifest.json",
        "0xff", prepare=non_utf8_manifest),
    api("HashIndex.open", WRONG_TYPE, "None", open_(None), "path=None", "must be a path"),
    api("HashIndex.open", WRONG_TYPE, "a number", lambda w, index: HashIndex.open(5), "path=5"),
    api("HashIndex.open", WRONG_TYPE, "bytes", lambda w, index: HashIndex.open(os.fsencode(w)),
        "must be a path", "bytes"),
    api("HashIndex.open", WRONG_TYPE, "a file", open_("more.parquet"), "not a hashindex index"),
    api("HashIndex.open", WRONG_TYPE, "verify='yes'", open_("idx", verify="yes"),
        "verify='yes'", "True or False"),
    api("HashIndex.open", OUT_OF_RANGE, "format version 99", open_("idx"),
        "format version 99", prepare=format_version(99)),
    api("HashIndex.open", DAMAGED, "manifest edited without its checksum", open_("idx"),
        "edited or damaged", prepare=edit_manifest),
    api("HashIndex.open", DAMAGED, "a truncated shard", open_("idx"), "part-00000.parquet",
        "truncated", prepare=truncate(SHARD)),
    api("HashIndex.open", OUTSIDE, "manifest naming ../outside.parquet", open_("idx"),
        "'../outside.parquet'", "not a path inside", prepare=point_outside),
    api("HashIndex.open", SYMLINK, "a linked shard", open_("idx"), "part-00000.parquet",
        "symbolic link", prepare=link_inside(SHARD)),

    api("HashIndex.search", EMPTY, "an empty text", searching(""), "query text is empty"),
    api("HashIndex.search", NON_UTF8, "text with a lone surrogate (a text index)",
        lambda w, index: HashIndex.open(w / "text-idx").search("bad \udcff words"), "UTF-8",
        text_index=True),
    api("HashIndex.search", WRONG_TYPE, "k='10'", searching(VEC16, k="10"),
        "k must be an integer", "'10'"),
    api("HashIndex.search", WRONG_TYPE, "k=2.5", searching(VEC16, k=2.5), "k must be an integer"),
    api("HashIndex.search", WRONG_TYPE, "query None", searching(None), "query must be"),
    api("HashIndex.search", WRONG_TYPE, "a 2-d query", searching(np.ones((2, DIM), np.float32)),
        "query must be", "(2, 16)"),
    api("HashIndex.search", WRONG_TYPE, "radius='3'", searching(VEC16, radius="3"),
        "radius must be an integer"),
    api("HashIndex.search", WRONG_TYPE, "filter as a list", searching(VEC16, filter=["year"]),
        "filter must be an object"),
    api("HashIndex.search", WRONG_TYPE, "backend_options as a list",
        searching(VEC16, backend="ivf", backend_options=["nprobe"]), "backend_options"),
    api("HashIndex.search", OUT_OF_RANGE, "k=0", searching(VEC16, k=0), "k=0", "at least 1"),
    api("HashIndex.search", OUT_OF_RANGE, "radius beyond the bits",
        searching(VEC16, radius=17), "radius=17"),
    api("HashIndex.search", OUT_OF_RANGE, "rerank_candidates=0",
        searching(VEC16, rerank_candidates=0), "rerank_candidates=0"),
    api("HashIndex.search", OUT_OF_RANGE, "target_recall=2", searching(VEC16, target_recall=2),
        "target_recall=2", needs="target_recall"),
    api("HashIndex.search", OUT_OF_RANGE, "an embedding of dimension 8",
        searching(np.ones(8, np.float32)), "dimension 8"),
    api("HashIndex.search", OUT_OF_RANGE, "a filter beyond int64",
        searching(VEC16, filter={"year": {"gte": 2 ** 70}}), "filter.year", "int64"),
    api("HashIndex.search", OUT_OF_RANGE, "a code of 32 bits", searching(bytes(4)),
        "16-bit code"),
    api("HashIndex.search", UNKNOWN, "a backend", searching(VEC16, backend="nope"),
        "unknown backend 'nope'"),
    api("HashIndex.search", UNKNOWN, "a backend option",
        searching(VEC16, backend="ivf", backend_options={"nope": 1}), "no option(s) nope"),
    api("HashIndex.search", UNKNOWN, "a filter column", searching(VEC16, filter={"nope": 1}),
        "no metadata column 'nope'"),
    api("HashIndex.search", UNKNOWN, "a Like id", searching(Like("nope")),
        "no document with id 'nope'"),
    api("HashIndex.search", WRONG_TYPE, "search_batch(None)",
        lambda w, index: index.search_batch(None), "queries"),
    api("HashIndex.search", UNKNOWN, "document('nope')",
        lambda w, index: index.document("nope"), "no document with id 'nope'"),

    api("build_index", MISSING, "input does not exist", building("nope.jsonl"), "nope.jsonl",
        "does not exist"),
    api("build_index", EMPTY, "an empty input", building("e.jsonl"), "no documents",
        prepare=text("e.jsonl", "")),
    api("build_index", BINARY, "random bytes as input", building("b.jsonl"), "invalid UTF-8",
        prepare=binary("b.jsonl")),
    api("build_index", NON_UTF8, "a Latin-1 input", building("n.jsonl"), "n.jsonl",
        "invalid UTF-8", prepare=text("n.jsonl", LATIN1_JSONL)),
    api("build_index", WRONG_TYPE, "input=None",
        lambda w, index: BuildConfig(input=None, out=str(w / "out")), "input=None"),
    api("build_index", WRONG_TYPE, "shard_rows=2.5", building(shard_rows=2.5), "shard_rows=2.5",
        "integer"),
    api("build_index", WRONG_TYPE, "bits='16'", building(bits="16"), "bits='16'", "integer"),
    api("build_index", WRONG_TYPE, "columns as a set", building(columns={"text"}),
        "columns={'text'}"),
    api("build_index", WRONG_TYPE, "a str for the config",
        lambda w, index: build_index(str(w / "docs.parquet")), "config"),
    api("build_index", WRONG_TYPE, "train_config=5",
        lambda w, index: build_index(BuildConfig(
            input=str(w / "docs.parquet"), out=str(w / "out"), show_progress=False,
            columns={"embedding_column": "vec", "id_column": "doc"}), train_config=5),
        "train_config"),
    api("build_index", OUT_OF_RANGE, "bits=7", building(bits=7), "bits=7"),
    api("build_index", OUT_OF_RANGE, "shard_rows=0", building(shard_rows=0), "shard-rows 0"),
    api("build_index", OUT_OF_RANGE, "embed_workers=0", building(embed_workers=0),
        "embed-workers 0"),
    api("build_index", OUT_OF_RANGE, "max_tokens=-1", building(max_tokens=-1), "max-tokens -1"),
    api("build_index", UNKNOWN, "a variant", building(variant="nope"), "unknown variant 'nope'"),
    api("build_index", UNKNOWN, "a backend", building(backend="nope"), "unknown backend 'nope'"),
    api("build_index", UNKNOWN, "a format", building(format="nope"), "'nope'", "format"),
    api("build_index", UNKNOWN, "an engine", building(engine="nope"), "'nope'", "engine"),
    api("build_index", UNKNOWN, "a column", building(columns={"embedding_column": "nope"}),
        "no column 'nope'"),
    api("build_index", DAMAGED, "an encoder's config.json of random bytes",
        lambda w, index: building(encoder=str(w / "idx" / "encoder"))(w, index),
        "config.json", "corrupted", prepare=binary("idx/encoder/config.json")),
    api("build_index", OUTSIDE, "out inside the input folder", building("d", out="d/idx",
                                                                         columns={}),
        "inside the input folder", prepare=lambda w: write_input(corpus(8), w / "d", "textdir")),

    api("add_documents", MISSING, "index does not exist", adding(index_path="nope"), "nope",
        "does not exist"),
    api("add_documents", MISSING, "input does not exist", adding("nope.parquet"),
        "nope.parquet", "does not exist", writes="idx"),
    api("add_documents", EMPTY, "an empty folder as index", adding(index_path="empty"),
        "manifest.json is missing", prepare=folder("empty")),
    api("add_documents", EMPTY, "an empty input", adding("e.jsonl"), "no documents",
        prepare=text("e.jsonl", ""), writes="idx"),
    api("add_documents", BINARY, "random bytes as input", adding("b.parquet"),
        "not a readable Parquet file", prepare=binary("b.parquet"), writes="idx"),
    api("add_documents", BINARY, "random bytes as manifest", adding(), "manifest.json",
        "corrupted", prepare=binary("idx/manifest.json"), writes="idx"),
    api("add_documents", NON_UTF8, "a Latin-1 input", adding("n.jsonl"), "invalid UTF-8",
        prepare=text("n.jsonl", LATIN1_JSONL), writes="idx"),
    api("add_documents", WRONG_TYPE, "index=5",
        lambda w, index: AddConfig(index=5, input="x.jsonl"), "index=5"),
    api("add_documents", WRONG_TYPE, "input=None",
        lambda w, index: AddConfig(index=str(w / "idx"), input=None), "input=None"),
    api("add_documents", WRONG_TYPE, "batch_rows=0.5", adding(batch_rows=0.5), "batch_rows=0.5"),
    api("add_documents", WRONG_TYPE, "upsert='yes'", adding(upsert="yes"), "upsert='yes'"),
    api("add_documents", WRONG_TYPE, "a str for the config",
        lambda w, index: add_documents(str(w / "more.parquet")), "add_documents",
        "config=", "an AddConfig"),
    api("add_documents", OUT_OF_RANGE, "batch_rows=0", adding(batch_rows=0), "batch_rows=0"),
    api("add_documents", OUT_OF_RANGE, "embeddings of dimension 8", adding("w.parquet"),
        "dimension 8", prepare=vectors_file("w", vector_docs(3, "w", dim=8, start=300)),
        writes="idx"),
    api("add_documents", UNKNOWN, "a format", adding(format="nope"), "unknown --format 'nope'",
        writes="idx"),
    api("add_documents", DAMAGED, "manifest edited without its checksum", adding(),
        "edited or damaged", prepare=edit_manifest, writes="idx"),
    api("add_documents", OUTSIDE, "manifest naming ../outside.parquet", adding(),
        "not a path inside", prepare=point_outside, writes="idx"),
    api("add_documents", SYMLINK, "a linked shard", adding(), "symbolic link",
        prepare=link_inside(SHARD), writes="idx"),
    api("add_documents", SYMLINK, "write.lock links outside", adding(), "write.lock",
        "symbolic link", prepare=lock_link, writes="idx"),
]


def api_params(cases):
    keywords = set(inspect.signature(HashIndex.request).parameters)
    for item in cases:
        marks = []
        if item.bug:
            marks.append(pytest.mark.xfail(strict=True, raises=item.raises, reason=item.bug))
        if item.needs and item.needs not in keywords:
            marks.append(pytest.mark.skip(reason=f"HashIndex.request has no {item.needs}"))
        yield pytest.param(item, marks=marks, id=item.id)


@pytest.fixture(scope="module")
def text_index(base) -> Path:
    """A small index with a (fake) text model, for text queries: base/text-idx."""
    source = write_input(corpus(16), base / "text-docs", "jsonl")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(indexer.build.text_model, "Embedder", FakeEmbedder)
        build(source, base / "text-idx", FakeEmbedder(), bits=BITS)
    return base / "text-idx"


@pytest.mark.parametrize("item", list(api_params(API_CASES)))
def test_python_api(item: Call, work: Path, request):
    if item.text_index:
        shutil.copytree(request.getfixturevalue("text_index"), work / "text-idx")
    if item.prepare is not None:
        item.prepare(work)
    index = HashIndex.open(work / "idx") if item.api == "HashIndex.search" else None
    target = work / item.writes if item.writes else None
    before, manifest = tree_snapshot(work, skip=target), manifest_of(target)
    with pytest.raises(HashIndexError) as raised:
        item.call(work, index)
    for word in item.words:
        assert word in str(raised.value), (word, str(raised.value))
    assert tree_snapshot(work, skip=target) == before
    assert manifest_of(target) == manifest


# ---- the matrix, counted -----------------------------------------------------------------------
def all_rows() -> list[tuple[str, str]]:
    return ([(c.command, c.kind) for c in CLI_CASES]
            + [("service", r.kind) for r in SERVICE_CASES]
            + [(a.api, a.kind) for a in API_CASES])


def count_table() -> str:
    """The docstring's table: cases by command and class."""
    counts = Counter(all_rows())
    commands = list(dict.fromkeys(command for command, _ in all_rows()))
    lines = [f"{'command':<17}" + "".join(f"{SHORT[k]:>{max(len(SHORT[k]), 5) + 1}}"
                                          for k in CLASSES) + "  total"]
    for command in commands:
        cells = "".join(f"{counts[command, k] or '-':>{max(len(SHORT[k]), 5) + 1}}"
                        for k in CLASSES)
        total = sum(counts[command, k] for k in CLASSES)
        lines.append(f"{command:<17}{cells}{total:>7}")
    return "\n".join(lines)


def test_the_matrix_is_complete():
    """Every command, the service and each API entry point crossed with every class: a case,
    or a reason in NOT_APPLICABLE; the docstring's table is this count."""
    counts = Counter(all_rows())
    commands = {command for command, _ in all_rows()}
    assert set(main.commands) <= commands, set(main.commands) - commands
    for command in commands:
        assert sum(counts[command, k] for k in CLASSES) > 0, command
        for kind in CLASSES:
            assert (counts[command, kind] > 0) != ((command, kind) in NOT_APPLICABLE), (
                command, kind)
    ids = [c.id for c in CLI_CASES] + [r.id for r in SERVICE_CASES] + [a.id for a in API_CASES]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    table = count_table()
    print("\n" + table + f"\n{len(ids)} cases")
    assert table in __doc__, "update the docstring's table:\n" + table
