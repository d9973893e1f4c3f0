"""Bad input, command by command and input class by input class (issue 29): each case is one
`error:` line naming the thing, exit 2, no traceback, and nothing outside the index created,
changed or removed. Written against the public entry points: the `hashindex` command (click's
runner, or a real process where the shell's bytes matter) and the Python API.

Two small indexes are built once per module (text with a fake model, and precomputed
vectors); a case that damages or changes one works on its own copy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import FakeEmbedder, build, corpus, vector_docs, write_input

import hashindex.embedding.embedder
import hashindex.training
import indexer.build.text_model
from hashindex.app.cli import main
from hashindex.engine import HashIndex
from hashindex.errors import HashIndexError
from indexer.build import BuildConfig, build_index
from indexer.update import AddConfig

ROOT = Path(__file__).resolve().parent.parent
SEGMENT = "segments/seg-000001"
DIM = 16


@pytest.fixture(autouse=True)
def fake_text_model(monkeypatch):
    monkeypatch.setattr(indexer.build.text_model, "Embedder", FakeEmbedder)
    monkeypatch.setattr(hashindex.embedding.embedder, "Embedder", FakeEmbedder)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(text index, vector index), each built once; tests copy one before changing it."""
    folder = tmp_path_factory.mktemp("bad-input")
    text = write_input(corpus(40), folder / "docs", "jsonl")
    build(text, folder / "text-index", FakeEmbedder(), bits=16, store_embeddings=True)
    vectors = write_input(vector_docs(40, "v", dim=DIM), folder / "vectors", "parquet")
    build(vectors, folder / "vector-index", None, bits=16, embedding_column="vec",
          store_embeddings=True)
    return folder / "text-index", folder / "vector-index"


@pytest.fixture()
def text_index(built, tmp_path):
    return copy_index(built[0], tmp_path / "idx")


@pytest.fixture()
def vector_index(built, tmp_path):
    return copy_index(built[1], tmp_path / "vidx")


def copy_index(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def snapshot(folder: Path, skip: Path | None = None) -> dict:
    """Every path under folder (but those under `skip`) with its size and mtime."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if skip is not None and (path == skip or skip in path.parents):
            continue
        stat = path.lstat()
        out[path.relative_to(folder).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return out


def assert_one_error(stderr: str, exit_code: int, *fragments: str) -> None:
    assert exit_code == 2, (exit_code, stderr)
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def refused(workdir: Path, args: list, *fragments: str, index: Path | None = None) -> str:
    """Run the command; one error line holding every fragment, exit 2, and nothing changed
    under workdir (inside `index` a writer's lock may be left)."""
    before = snapshot(workdir, skip=index)
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert_one_error(result.stderr, result.exit_code, *fragments)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert snapshot(workdir, skip=index) == before
    return result.stderr


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def build_args(source, out, *extra) -> list:
    return ["build", source, "--out", out, "--bits", "16", "--epochs", "2", "--quiet",
            "--no-cache", *extra]


def vector_rows(rows: list[list[float]], prefix: str = "w") -> list[dict]:
    return [{"doc": f"{prefix}-{i}", "text": f"doc {i}", "year": 2001, "vec": vector}
            for i, vector in enumerate(rows)]


SURROGATE = '{"doc": "s1", "text": "bad \\ud800 text"}\n{"doc": "s2", "text": "ok text"}\n'
HUGE_INT = '{"doc": "h1", "text": "a b", "year": 99999999999999999999}\n'


# ---- build ----------------------------------------------------------------------------------
BUILD_CASES = {
    "lone surrogate in JSONL text": (
        lambda t: build_args(write(t / "s.jsonl", SURROGATE), t / "out", "--id-column", "doc"),
        ["s.jsonl", "line 1", "'text'", "surrogate", "\\ud800"]),
    "metadata integer beyond int64": (
        lambda t: build_args(write(t / "n.jsonl", HUGE_INT + '{"doc": "h2", "text": "c d", '
                                   '"year": 1}\n'), t / "out", "--id-column", "doc"),
        ["n.jsonl", "line 1", "'year'", "99999999999999999999", "64-bit"]),
    "empty embedding lists": (
        lambda t: build_args(write(t / "e.jsonl", '{"doc": "a", "vec": []}\n'
                                   '{"doc": "b", "vec": []}\n'), t / "out",
                             "--embedding-column", "vec", "--id-column", "doc"),
        ["e.jsonl", "--embedding-column 'vec'", "empty list", "row(s) 1, 2"]),
    "all-zero embedding": (
        lambda t: build_args(write(t / "z.jsonl", '{"doc": "a", "vec": [1.0, 2.0]}\n'
                                   '{"doc": "b", "vec": [0.0, 0.0]}\n'), t / "out",
                             "--embedding-column", "vec", "--id-column", "doc"),
        ["z.jsonl", "all zeros", "row(s) 2"]),
    "CSV with an unterminated quote": (
        lambda t: build_args(write(t / "q.csv", 'doc,text\na,fine text\nb,"never closed\n'
                                   'c,third doc\nd,fourth doc\n'), t / "out",
                             "--id-column", "doc"),
        ["q.csv", "line 3", "never closed"]),
    "CSV with text after a closing quote": (
        lambda t: build_args(write(t / "t.tsv", 'doc\ttext\na\tfine\nb\t"Hello," she said\n'),
                             t / "out", "--id-column", "doc"),
        ["t.tsv", "line 3", "text follows the closing quote"]),
    "empty id": (
        lambda t: build_args(write(t / "i.jsonl", '{"doc": "a", "text": "x y"}\n'
                                   '{"doc": " ", "text": "z w"}\n'), t / "out",
                             "--id-column", "doc"),
        ["i.jsonl", "empty id", "'doc'", "row(s) 2"]),
    "--device cuda with precomputed embeddings": (
        lambda t: build_args(write_input(vector_docs(8, "c", dim=DIM), t / "v", "parquet"),
                             t / "out", "--embedding-column", "vec", "--device", "cuda",
                             "--embed-backend", "torch"),
        ["--device cuda", "--embedding-column", "drop --device"]),
}


@pytest.mark.parametrize("case", BUILD_CASES, ids=list(BUILD_CASES))
def test_build_refuses(tmp_path, case):
    make_args, fragments = BUILD_CASES[case]
    refused(tmp_path, make_args(tmp_path), *fragments)


ENCODER_CASES = {
    "--bits": (["--bits", "32"], ["--bits 32", "16 bits", "--encoder"]),
    "--variant": (["--variant", "deep"], ["--variant deep", "variant vanilla"]),
    "--option": (["--option", "code_noise_std=2.0"], ["--option code_noise_std=2.0",
                                                       "code_noise_std=4.0"]),
}


@pytest.mark.parametrize("case", ENCODER_CASES, ids=list(ENCODER_CASES))
def test_build_refuses_flags_its_encoder_would_ignore(built, tmp_path, case):
    flags, fragments = ENCODER_CASES[case]
    source = write_input(corpus(20), tmp_path / "docs", "jsonl")
    args = ["build", source, "--out", tmp_path / "out", "--quiet", "--no-cache",
            "--encoder", built[0] / "encoder", *flags]
    refused(tmp_path, args, *fragments)


def test_build_takes_flags_that_agree_with_its_encoder(built, tmp_path):
    source = write_input(corpus(20), tmp_path / "docs", "jsonl")
    for out, flags in (("a", ["--bits", "16", "--variant", "vanilla",
                              "--option", "code_noise_std=4.0"]), ("b", [])):
        result = CliRunner().invoke(main, [str(a) for a in [
            "build", source, "--out", tmp_path / out, "--quiet", "--no-cache",
            "--encoder", built[0] / "encoder", *flags]])
        assert result.exit_code == 0, result.output
        manifest = json.loads((tmp_path / out / "manifest.json").read_text())
        assert manifest["bits"] == manifest["build"]["bits"] == 16  # not the flag's default 64


# ---- add ------------------------------------------------------------------------------------
ADD_CASES = {
    "lone surrogate in JSONL text": (
        "text", lambda t: write(t / "s.jsonl", SURROGATE), [],
        ["s.jsonl", "line 1", "'text'", "surrogate"]),
    "metadata integer beyond int64": (
        "text", lambda t: write(t / "n.jsonl", HUGE_INT.replace('"a b"', '"a b", "topic": "x"')),
        [], ["n.jsonl", "line 1", "'year'", "64-bit"]),
    "empty id": (
        "text", lambda t: write(t / "i.jsonl", '{"doc": "", "text": "x y"}\n'), [],
        ["i.jsonl", "empty id", "row(s) 1"]),
    "--text-column missing from the input": (
        "vector", lambda t: write_input(vector_docs(3, "n", dim=DIM, start=100), t / "more",
                                        "parquet"), ["--text-column", "nope"],
        ["more.parquet", "no column 'nope'", "--text-column", "columns are: doc, text, year, "
         "vec"]),
    "empty embedding lists": (
        "vector", lambda t: write_input(vector_rows([[], []]), t / "e", "parquet"), [],
        ["e.parquet", "empty list", "row(s) 1, 2"]),
    "all-zero embedding": (
        "vector", lambda t: write_input(vector_rows([[0.5] * DIM, [0.0] * DIM]), t / "z",
                                        "parquet"), [],
        ["z.parquet", "all zeros", "row(s) 2"]),
}


@pytest.mark.parametrize("case", ADD_CASES, ids=list(ADD_CASES))
def test_add_refuses(built, tmp_path, case):
    kind, make_input, flags, fragments = ADD_CASES[case]
    index = copy_index(built[0] if kind == "text" else built[1], tmp_path / "idx")
    source = make_input(tmp_path)
    manifest = (index / "manifest.json").read_bytes()
    refused(tmp_path, ["add", index, source, "--quiet", "--no-cache", *flags], *fragments,
            index=index)
    assert (index / "manifest.json").read_bytes() == manifest


# ---- query, get, info: words the shell passes, files given, damaged indexes -----------------
def test_query_text_that_is_not_utf8_from_a_real_shell(built, tmp_path):
    """The shell's bytes reach Python as lone surrogates: only a real process shows it."""
    before = snapshot(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "hashindex.app.cli", "query", os.fsencode(built[0]),
         b"bad \xff words"], capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={**os.environ, "LC_ALL": "C.UTF-8", "PYTHONPATH": str(ROOT)})
    assert_one_error(result.stderr, result.returncode, "query TEXT", "UTF-8", "byte 0xff",
                     "character 5")
    assert snapshot(tmp_path) == before


def test_query_queries_file_that_is_binary(text_index, tmp_path):
    binary = tmp_path / "queries.bin"
    binary.write_bytes(bytes(range(256)) * 8)
    refused(tmp_path, ["query", text_index, "--queries", binary], "--queries", "queries.bin",
            "not UTF-8", "offset 128")
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"a query\x00\x01\x02")
    refused(tmp_path, ["query", text_index, "--queries", nul], "nul.txt", "NUL byte")


@pytest.mark.parametrize("clause", ["topic>>2", "year==2001", "topic=<x"])
def test_query_where_with_a_doubled_operator(text_index, tmp_path, clause):
    refused(tmp_path, ["query", text_index, "oven", "--where", clause], "--where",
            repr(clause), "starts with an operator")


def test_query_where_value_that_starts_with_an_operator_in_json_quotes(text_index):
    result = CliRunner().invoke(main, ["query", str(text_index), "oven", "--where",
                                       'topic=">2"'])
    assert result.exit_code == 0, result.output  # a real value: it just matches nothing


def test_get_and_delete_ids_that_are_not_utf8(text_index, tmp_path):
    refused(tmp_path, ["get", text_index, "d\udcff"], "ID", "byte 0xff")
    refused(tmp_path, ["delete", text_index, "d0001", "d\udcfe"], "ID", "byte 0xfe",
            index=text_index)


def flip(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x55
    path.write_bytes(bytes(raw))


def row_id_out_of_range(index: Path) -> None:
    rows = index / SEGMENT / "table" / "rows.npy"
    values = np.load(rows)
    values[3] = 10_000  # same dtype, same size: the open's size check passes
    np.save(rows, values)


def vectors_header_byte(index: Path) -> None:
    flip(index / SEGMENT / "vectors" / "vectors.npy", 10)  # inside the header's dict


def vectors_header_shape(index: Path) -> None:
    path = index / SEGMENT / "vectors" / "vectors.npy"
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b"(40, 32)", b"(40, 22)", 1))  # parses, but wrong


def faiss_header_byte(index: Path) -> None:
    flip(index / SEGMENT / "faiss" / "index.faissb", 14)  # ntotal


def faiss_body_byte(index: Path) -> None:
    flip(index / SEGMENT / "faiss" / "index.faissb", 30)  # the code array's length


DAMAGE = {
    "row id out of range": (row_id_out_of_range, ["table/rows.npy", "row id 10000",
                                                  "outside 0..39"]),
    "vectors header byte": (vectors_header_byte, ["vectors/vectors.npy", "header"]),
    "vectors header shape": (vectors_header_shape, ["vectors/vectors.npy", "dimension 22"]),
    "faiss header byte": (faiss_header_byte, ["faiss/index.faissb", "header says"]),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
@pytest.mark.parametrize("command", [["query", "{index}", "oven bake"],
                                     ["get", "{index}", "d0001"], ["info", "{index}"]],
                         ids=["query", "get", "info"])
def test_damaged_index_is_named_at_open(text_index, tmp_path, damage, command):
    damage_index, fragments = DAMAGE[damage]
    damage_index(text_index)
    args = [text_index if part == "{index}" else part for part in command]
    refused(tmp_path, args, "is damaged", *fragments, "hashindex verify")


def test_faiss_file_damaged_past_its_header(text_index, tmp_path):
    faiss_body_byte(text_index)
    refused(tmp_path, ["query", text_index, "oven bake", "--backend", "flat"],
            "faiss/index.faissb", "FAISS cannot read it", "hashindex verify")


def encoder_disagrees(index: Path) -> None:
    """The manifest says 32 bits (its own checksum redone), the encoder makes 16."""
    from hashindex.store.manifest import own_checksum

    manifest = json.loads((index / "manifest.json").read_text())
    manifest["bits"] = 32
    manifest["manifest_sha256"] = own_checksum(manifest)
    (index / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("command", [["delete", "{index}", "d0001"], ["compact", "{index}"],
                                     ["query", "{index}", "oven"], ["get", "{index}", "d0001"]],
                         ids=["delete", "compact", "query", "get"])
def test_bits_that_disagree_with_the_encoder(text_index, tmp_path, command):
    encoder_disagrees(text_index)
    manifest = (text_index / "manifest.json").read_bytes()
    args = [text_index if part == "{index}" else part for part in command]
    refused(tmp_path, args, "encoder makes 16-bit codes", "manifest says 32", index=text_index)
    assert (text_index / "manifest.json").read_bytes() == manifest


# ---- bench ----------------------------------------------------------------------------------
@pytest.mark.parametrize("bits, fragments", [("16,16,", ["'16,16,'", "empty item"]),
                                             ("16,,32", ["empty item"]),
                                             ("16,32,16", ["16 more than once"])])
def test_bench_bits_list(tmp_path, bits, fragments):
    refused(tmp_path, ["bench", "--dataset", "synthetic", "--bits", bits, "--out",
                       tmp_path / "report", "--methods", "lsh", "--seeds", "1"],
            "--bits", *fragments)


# ---- errors start on a line of their own ----------------------------------------------------
def test_an_error_mid_progress_bar_starts_its_own_line(tmp_path, monkeypatch):
    """The write pass's bar is still open when its writer fails (a full disk, say): the
    error must not run on from the bar's line."""
    from hashindex.segments.writing import SegmentWriter

    def full_disk(*args, **kwargs):
        raise HashIndexError("stopped mid-write")

    monkeypatch.setattr(SegmentWriter, "write", full_disk)
    source = write_input(corpus(30), tmp_path / "docs", "jsonl")
    result = CliRunner().invoke(main, ["build", str(source), "--out", str(tmp_path / "out"),
                                       "--bits", "16", "--epochs", "2", "--no-cache"])
    assert result.exit_code == 2
    lines = result.stderr.split("\n")  # a bar redraws with \r: only \n ends a line
    assert any("write:" in line for line in lines), result.stderr  # the bar was shown
    assert [line for line in lines if "error:" in line] == ["error: stopped mid-write"]
    assert result.stderr.endswith("error: stopped mid-write\n")


# ---- the Python API: arguments checked where they enter -------------------------------------
def test_api_hashindex_open_takes_a_path():
    for value, shown in ((None, "path=None"), (5, "path=5")):
        with pytest.raises(HashIndexError, match=f"HashIndex.open: {shown} must be a path"):
            HashIndex.open(value)
    with pytest.raises(HashIndexError, match="verify='yes' must be True or False"):
        HashIndex.open("somewhere", verify="yes")


@pytest.mark.parametrize("changes, fragment", [
    ({"input": None}, "BuildConfig: input=None must be a path"),
    ({"out": 3}, "BuildConfig: out=3 must be a path"),
    ({"columns": {"text"}}, "BuildConfig: columns={'text'} must be a ColumnOptions or a "
                            "mapping"),
    ({"columns": {"body": "x"}}, "columns has no field(s) body"),
    ({"columns": {"text_column": 5}}, "ColumnOptions: text_column=5 must be a column name"),
    ({"shard_rows": 2.5}, "BuildConfig: shard_rows=2.5 must be an integer"),
    ({"bits": "16"}, "BuildConfig: bits='16' must be an integer"),
    ({"store_embeddings": "no"}, "store_embeddings='no' must be True or False"),
])
def test_api_build_config_checks_its_arguments(tmp_path, changes, fragment):
    arguments = {"input": str(tmp_path / "in.jsonl"), "out": str(tmp_path / "out"), **changes}
    with pytest.raises(HashIndexError) as raised:
        BuildConfig(**arguments)
    assert fragment in str(raised.value)
    assert not (tmp_path / "out").exists()


def test_api_build_config_takes_columns_as_a_mapping(tmp_path):
    source = write_input(corpus(20), tmp_path / "docs", "jsonl")
    config = BuildConfig(input=str(source), out=str(tmp_path / "out"), bits=16,
                         columns={"id_column": "doc"}, show_progress=False)
    build_index(config, embedder=FakeEmbedder(), train_config=hashindex.training.TrainConfig(
        epochs=1, show_progress=False))
    assert HashIndex.open(tmp_path / "out").document("d0003").id == "d0003"


@pytest.mark.parametrize("changes, fragment", [
    ({"index": None}, "AddConfig: index=None must be a path"),
    ({"columns": ["text"]}, "AddConfig: columns=['text'] must be a ColumnOptions"),
    ({"batch_rows": 0.5}, "AddConfig: batch_rows=0.5 must be an integer"),
    ({"batch_rows": 0}, "batch_rows=0 must be at least 1"),
])
def test_api_add_config_checks_its_arguments(changes, fragment):
    with pytest.raises(HashIndexError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        AddConfig(**{"index": "idx", "input": "in.jsonl", **changes})


# ---- scores are cosines, whatever the query vector's length ---------------------------------
def test_scores_are_cosines_for_any_query_length(built):
    index = HashIndex.open(built[1])
    query = np.random.default_rng(3).normal(size=DIM).astype(np.float32) * 7
    unit = [(h.id, round(h.score, 4)) for h in index.search(query / np.linalg.norm(query),
                                                            k=5).hits]
    assert len(unit) == 5
    for scale in (1.0, 1e-20, 1e30):
        hits = index.search(query * np.float32(scale), k=5).hits
        assert [(h.id, round(h.score, 4)) for h in hits] == unit
        assert all(-1.01 <= h.score <= 1.01 for h in hits)
    stored = index.vectors.rows(np.arange(len(index)))
    assert np.allclose(np.linalg.norm(stored, axis=1), 1.0, atol=0.02)  # input normalised
    like = index.search(stored[0] * 5, k=1).hits[0]
    assert like.id == "v-0" and like.score == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("vector, fragment", [
    (np.zeros(DIM, np.float32), "all zeros"),
    (np.full(DIM, np.nan, np.float32), "NaN or inf"),
    (np.r_[np.inf, np.ones(DIM - 1)].astype(np.float32), "NaN or inf"),
])
def test_query_vectors_without_a_direction_are_refused(built, vector, fragment):
    index = HashIndex.open(built[1])
    with pytest.raises(HashIndexError, match=fragment):
        index.search(vector, k=3)
    with pytest.raises(HashIndexError, match=fragment):
        index.search_batch([vector], k=3)
