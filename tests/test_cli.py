"""The CLI: the happy path, and every bad input giving a one-line message and exit code 2."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import SEGMENT, FakeEmbedder, build, corpus, write_input

import hashindex.table.table
from hashindex.app.cli import main

# every text model the CLI makes is the fake bag-of-words one (conftest.py)
pytestmark = pytest.mark.usefixtures("fake_text_model")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_bad_input(result, *fragments):
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in result.output


@pytest.fixture()
def source(tmp_path):
    return write_input(corpus(60), tmp_path / "docs", "jsonl")


@pytest.fixture()
def built(tmp_path, source):
    build(source, tmp_path / "index", FakeEmbedder(), bits=16, store_embeddings=True)
    return tmp_path / "index"


def build_args(source, out, *extra):
    return ["build", source, "--out", out, "--bits", "16", "--epochs", "2", "--quiet",
            "--no-cache", *extra]


def test_build_query_info_happy_path(tmp_path, source):
    out = tmp_path / "idx"
    result = run(*build_args(source, out, "--id-column", "doc", "--store-embeddings"))
    assert result.exit_code == 0, result.output
    assert "distinct codes" in result.output and "docs/s" in result.output
    text = corpus(60)[5]["text"]
    result = run("query", out, text, "-k", "3")
    assert result.exit_code == 0, result.output
    assert "d0005" in result.output.splitlines()[2] and "radius reached" in result.output
    hits = json.loads(run("query", out, text, "-k", "3", "--json").output)["hits"]
    assert hits[0]["id"] == "d0005" and hits[0]["distance"] == 0 and len(hits) == 3
    info = json.loads(run("info", out, "--json").output)
    assert info["manifest"]["documents"] == 60
    assert info["manifest"]["embedding_model"]["name"] == FakeEmbedder.name  # the fake, injected
    assert "variant / bits" in run("info", out).output
    assert "the raw codes + row ids; no substring index" in run("info", out).output


def test_no_substring_index_gives_the_same_answers(tmp_path, source, monkeypatch):
    monkeypatch.setattr(hashindex.table.table, "MIN_SUBSTRING_CODES", 1)  # a 60-document index
    results = {}
    for flag in ("--substring-index", "--no-substring-index"):
        out = tmp_path / flag
        assert run(*build_args(source, out, "--id-column", "doc", "--bits", "64", "--seed", "1",
                               flag)).exit_code == 0
        kept = (out / SEGMENT / "table" / "substring_positions.npy").exists()
        assert kept == (flag == "--substring-index")
        assert ("no substring index" in run("info", out).output) == (not kept)
        query = run("query", out, corpus(60)[7]["text"], "-k", "12", "--json")
        results[flag] = [(r["id"], r["distance"]) for r in json.loads(query.output)["hits"]]
    assert results["--substring-index"] == results["--no-substring-index"]


def test_bad_model_option_fails_before_embedding(tmp_path, source, fake_text_model):
    result = run(*build_args(source, tmp_path / "o", "--variant", "denoising",
                             "--option", "noise=pink"))
    assert_bad_input(result, "noise='pink' is unknown")
    embedded = sum(model.texts for model in fake_text_model)  # by any model made (or none)
    assert embedded == 0 and not (tmp_path / "o").exists()


def test_model_options_reach_the_model(tmp_path, source):
    out = tmp_path / "idx"
    result = run(*build_args(source, out, "--variant", "denoising", "--option", "noise=masking",
                             "--option", "hidden=24,12"))
    assert result.exit_code == 0, result.output
    model = json.loads((out / "manifest.json").read_text())["model"]
    assert model["options"]["noise"] == "masking" and model["options"]["hidden"] == [24, 12]
    from hashindex.model_io import load_model

    assert load_model(out / "encoder").hidden_widths == (24, 12)


def test_queries_file_writes_a_json_document_per_query(tmp_path, built):
    docs = corpus(60)
    queries = tmp_path / "q.txt"
    queries.write_text(docs[1]["text"] + "\n" + json.dumps({"text": docs[2]["text"]}) + "\n")
    result = run("query", built, "--queries", queries, "-k", "2")
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.output.splitlines()]
    assert [a["query"] for a in answers] == [docs[1]["text"], docs[2]["text"]]
    assert [a["hits"][0]["id"] for a in answers] == ["d0001", "d0002"]
    assert run("query", built, "--queries", queries, "-k", "2", "--json").output == result.output


def test_variants_lists_every_backbone():
    from hashindex.models import VARIANTS

    output = run("variants").output
    for name in VARIANTS:
        assert any(line.startswith(name + " ") for line in output.splitlines())


def bad_file(tmp_path, name, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return path


BUILD_CASES = {
    "missing file": (lambda t, s: build_args(t / "nope.jsonl", t / "o"), ["nope.jsonl",
                                                                          "does not exist"]),
    "unknown extension": (lambda t, s: build_args(bad_file(t, "a.xyz", b"x"), t / "o"),
                          ["a.xyz", "unknown format"]),
    "unknown --format": (lambda t, s: build_args(s, t / "o", "--format", "xml"),
                         ["--format", "'xml'"]),
    "missing text column": (lambda t, s: build_args(s, t / "o", "--text-column", "body"),
                            ["'body'", "--text-column", "doc, text, topic, year"]),
    "missing id column": (lambda t, s: build_args(s, t / "o", "--id-column", "key"),
                          ["'key'", "--id-column"]),
    "missing embedding column": (lambda t, s: build_args(s, t / "o", "--embedding-column", "v"),
                                 ["'v'", "--embedding-column"]),
    "empty input": (lambda t, s: build_args(bad_file(t, "e.jsonl", b""), t / "o"),
                    ["e.jsonl", "no documents"]),
    "empty text": (lambda t, s: build_args(bad_file(
        t, "n.jsonl", b'{"text": "a b"}\n{"text": ""}\n{"text": null}\n'), t / "o"),
        ["n.jsonl", "row(s) 2, 3", "--skip-empty"]),
    "duplicate ids": (lambda t, s: build_args(bad_file(
        t, "d.jsonl", b'{"k": "x", "text": "a"}\n{"k": "x", "text": "b"}\n'), t / "o",
        "--id-column", "k"), ["d.jsonl", "duplicate id 'x'"]),
    "non-utf8 jsonl": (lambda t, s: build_args(bad_file(
        t, "u.jsonl", b'{"text": "ok"}\n{"text": "bad \xff"}\n'), t / "o"),
        ["u.jsonl", "invalid UTF-8 at byte offset 29"]),
    "non-utf8 csv": (lambda t, s: build_args(bad_file(t, "u.csv", b"text\nfine\nbad\xfe\n"),
                                             t / "o"), ["u.csv", "byte offset 13"]),
    "bad bits": (lambda t, s: build_args(s, t / "o") + ["--bits", "12"], ["bits=12"]),
    "unknown variant": (lambda t, s: build_args(s, t / "o", "--variant", "huge"),
                        ["unknown variant 'huge'"]),
    "unknown backend": (lambda t, s: build_args(s, t / "o", "--backend", "lsh"),
                        ["unknown backend 'lsh'"]),
    "unknown model option": (lambda t, s: build_args(s, t / "o", "--option", "nope=1"),
                             ["--option 'nope=1'", "variant vanilla has no option 'nope'",
                              "code_estimator"]),
    "badly typed option": (lambda t, s: build_args(s, t / "o", "--variant", "sparse-k",
                                                   "--option", "sparse_k=many"),
                           ["'many' is not a valid int"]),
    "output inside input": (lambda t, s: build_args(write_input(corpus(5), t / "tree", "textdir"),
                                                    t / "tree" / "idx"), ["inside the input"]),
}


@pytest.mark.parametrize("case", sorted(BUILD_CASES))
def test_build_bad_input(tmp_path, source, case):
    make_args, fragments = BUILD_CASES[case]
    args = make_args(tmp_path, source)
    before = set(tmp_path.rglob("*"))
    result = run(*args)
    assert_bad_input(result, *fragments)
    assert set(tmp_path.rglob("*")) == before, "a failed build must write nothing"


def embedding_input(tmp_path, dims, nan_row=None):
    docs = corpus(10)
    for i, d in enumerate(docs):
        d["vec"] = [0.1] * dims[i % len(dims)]
    if nan_row is not None:
        docs[nan_row]["vec"][0] = float("nan")
    return write_input(docs, tmp_path / "emb", "parquet")


def test_embedding_column_wrong_dimension(tmp_path):
    source = embedding_input(tmp_path, [8, 8, 8, 9])
    result = run(*build_args(source, tmp_path / "o", "--embedding-column", "vec"))
    assert_bad_input(result, "emb.parquet", "dimension 9 at data row 4", "expected 8")


def test_embedding_column_with_nan(tmp_path):
    source = embedding_input(tmp_path, [8], nan_row=6)
    result = run(*build_args(source, tmp_path / "o", "--embedding-column", "vec"))
    assert_bad_input(result, "NaN", "row(s) 7")


def test_encoder_of_other_dimension_or_model(tmp_path, source, built):
    wrong_dim = embedding_input(tmp_path, [8])
    result = run(*build_args(wrong_dim, tmp_path / "o", "--embedding-column", "vec",
                             "--encoder", built / "encoder"))
    assert_bad_input(result, "--encoder", "'fake-bow-32'", "'precomputed'")
    result = run(*build_args(source, tmp_path / "o2", "--model", "other/model",
                             "--encoder", built / "encoder"))
    assert_bad_input(result, "--encoder", "'fake-bow-32'", "'other/model'", "--model fake-bow-32")
    assert not (tmp_path / "o2").exists()
    config = built / "encoder" / "config.json"
    config.write_text(config.read_text().replace("fake-bow-32", "some/other-model"))
    result = run(*build_args(source, tmp_path / "o3", "--encoder", built / "encoder"))
    assert_bad_input(result, "--encoder", "'some/other-model'")


def test_existing_index_needs_overwrite(tmp_path, source, built):
    result = run(*build_args(source, built))
    assert_bad_input(result, "already exists", "--overwrite")
    assert run(*build_args(source, built, "--overwrite")).exit_code == 0


QUERY_CASES = {
    "k below 1": (["-k", "0"], ["k=0"]),
    "negative radius": (["--radius", "-1"], ["radius=-1"]),
    "radius above bits": (["--radius", "17"], ["radius=17", "0 to 16"]),
    "unknown backend": (["--backend", "annoy"], ["unknown backend 'annoy'"]),
}


@pytest.mark.parametrize("case", sorted(QUERY_CASES))
def test_query_bad_input(built, case):
    extra, fragments = QUERY_CASES[case]
    assert_bad_input(run("query", built, "rocket orbit", *extra), *fragments)


def test_query_empty_text_and_missing_index(tmp_path, built):
    assert_bad_input(run("query", built, "   "), "query text is empty")
    assert_bad_input(run("query", tmp_path / "nothing", "x"), "nothing", "does not exist")
    (built / "manifest.json").write_text("{broken")
    assert_bad_input(run("query", built, "x"), "manifest.json", "corrupted")


def test_query_missing_index_file(built):
    (built / SEGMENT / "table" / "keys.npy").unlink()
    assert_bad_input(run("query", built, "x"), "keys.npy", "missing")


def test_wrong_code_or_embedding_for_index(built):
    from hashindex.engine import HashIndex
    from hashindex.errors import HashIndexError

    index = HashIndex.open(built, embedder=FakeEmbedder())
    with pytest.raises(HashIndexError, match="16-bit code of 2 uint8 bytes"):
        index.search(np.zeros(4, dtype=np.uint8))
    with pytest.raises(HashIndexError, match="dimension 5"):
        index.search(np.zeros(5, dtype=np.float32))


def test_variants_options_lists_each_variants_own_options():
    output = run("variants", "--options").output
    vanilla = output.split("\ndeep ")[0]
    assert "code_estimator = ste" in vanilla and "hidden" not in vanilla
    denoising = output.split("\ndenoising ")[1].split("\ncontractive ")[0]
    assert "noise = gaussian" in denoising and "gaussian | masking | salt-pepper" in denoising
    assert "hidden = 512,256" in denoising and "[each at least 1]" in denoising


def test_backend_options_from_the_command_line(tmp_path, source):
    out = tmp_path / "idx"
    result = run(*build_args(source, out, "--backend", "hnsw", "--backend-option",
                             "ef_search=7", "--backend-option", "neighbours=8"))
    assert result.exit_code == 0, result.output
    assert "hnsw (neighbours=8, ef_construction=40, ef_search=7)" in run("info", out).output
    result = run("query", out, "rocket orbit", "--backend", "hnsw", "--backend-option",
                 "ef_search=50", "--json")
    assert result.exit_code == 0 and len(json.loads(result.output)["hits"]) == 10
    assert_bad_input(run("query", out, "x", "--backend", "hnsw", "--backend-option",
                         "ef_search=many"), "'many' is not a valid int")
    assert_bad_input(run("query", out, "x", "--backend", "hnsw", "--backend-option",
                         "neighbours=4"), "neighbours is set when the index is built")
    assert_bad_input(run(*build_args(source, tmp_path / "o", "--backend", "flat",
                                     "--backend-option", "nprobe=3")),
                     "backend flat has no option 'nprobe'")
    for backend, knob in (("hash", "prefix_bits"), ("multihash", "substring_bits")):
        assert_bad_input(run(*build_args(source, tmp_path / "o", "--backend", backend,
                                         "--backend-option", f"{knob}=20")),
                         f"{knob}=20 is more than the code's 16 bits", "use 1 to 16")


def test_graph_backend_end_to_end(tmp_path, source):
    """Built over the embeddings by `build --backend graph`, walked by a query with its beam
    width, re-ranked by the stored vectors: a document's own text finds it first."""
    out = tmp_path / "idx"
    result = run(*build_args(source, out, "--id-column", "doc", "--backend", "graph",
                             "--store-embeddings", "--backend-option", "neighbours=8"))
    assert result.exit_code == 0, result.output
    assert "graph (neighbours=8" in run("info", out).output
    text = corpus(60)[5]["text"]
    result = run("query", out, text, "--backend", "graph", "--backend-option", "ef_search=24",
                 "--rerank-candidates", "24", "--json", "-k", "3")
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)["hits"]
    assert len(hits) == 3 and hits[0]["id"] == "d0005", hits[0]


def test_train_options_reach_the_manifest(tmp_path, source):
    out = tmp_path / "idx"
    result = run(*build_args(source, out, "--train-option", "neighbourhood=2",
                             "--train-option", "mined_neighbours=4"))
    assert result.exit_code == 0, result.output
    train = json.loads(run("info", out, "--json").output)["manifest"]["train"]
    assert train["neighbourhood"] == 2 and train["mined_neighbours"] == 4
    assert_bad_input(run(*build_args(source, tmp_path / "o", "--train-option", "seed=3")),
                     "seed is not an option; pass --seed")
    assert_bad_input(run(*build_args(source, tmp_path / "o", "--train-option",
                                     "neighbourhood=0")), "neighbourhood")


def test_get_prints_one_document(built):
    result = run("get", built, "d0007", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["id"] == "d0007" and record["text"] == corpus(60)[7]["text"]
    assert record["metadata"]["topic"] == corpus(60)[7]["topic"]
    assert_bad_input(run("get", built, "nope"), "no document with id 'nope'")


def test_verify_rehashes_what_an_open_only_sizes(built):
    ok = run("verify", built)
    assert ok.exit_code == 0 and ok.stdout.startswith("ok: "), ok.output
    keys = built / SEGMENT / "table" / "keys.npy"
    data = bytearray(keys.read_bytes())
    data[-1] ^= 0xFF  # same size: the cheap open checks cannot see it
    keys.write_bytes(bytes(data))
    assert run("info", built).exit_code == 0
    assert_bad_input(run("verify", built), "keys.npy", "corrupted")
    assert_bad_input(run("info", built, "--verify"), "keys.npy", "corrupted")


@pytest.mark.parametrize("args, fragments", [
    (["query", "INDEX", "x", "-k", "2.5"], ["'-k'", "not a valid integer", "query --help"]),
    (["bogus"], ["No such command 'bogus'", "--help"]),
    (["--bogus"], ["No such option '--bogus'"]),
    (["build", "docs.jsonl"], ["Missing option '--out'", "build --help"]),
    (["delete"], ["Missing argument 'INDEX'"]),
])
def test_flags_click_refuses_are_one_line_too(built, args, fragments):
    assert_bad_input(run(*[built if a == "INDEX" else a for a in args]), *fragments)


def test_a_where_on_an_unknown_column_names_the_flag(built):
    assert_bad_input(run("query", built, "x", "--where", "colour=red"),
                     "--where", "no metadata column 'colour'")
    assert_bad_input(run("query", built, "x", "--where", "year>=soon"), "--where year",
                     "'soon'")


def test_a_filter_names_its_flag(built):
    assert_bad_input(run("query", built, "x", "--filter", "colour=red"),
                     "--filter", "no metadata column 'colour'")
    assert_bad_input(run("query", built, "x", "--filter", "year>>2"), "--filter 'year>>2'",
                     "starts with an operator")
    assert_bad_input(run("query", built, "x", "--filter", "topic=space", "--where", "year=2001"),
                     "--where is the old name of --filter")


def test_filter_gives_where_s_answer_and_where_notes_it_is_deprecated(built):
    """--filter is the name; --where, its old one, answers the same and says so on stderr."""
    cooking = corpus(60)[0]["text"]
    unfiltered = json.loads(run("query", built, cooking, "--json").output)
    assert unfiltered["hits"][0]["id"] == "d0000"  # a cooking document: the filter must act
    answers = {}
    for flag in ("--filter", "--where"):
        result = run("query", built, cooking, flag, "topic=space", flag, "year>=2002", "--json")
        assert result.exit_code == 0, result.output
        answers[flag] = result.stdout
        hits = json.loads(result.stdout)["hits"]
        assert hits and all(h["metadata"]["topic"] == "space" and h["metadata"]["year"] >= 2002
                            for h in hits), hits
    assert answers["--filter"] == answers["--where"]
    assert run("query", built, cooking, "--filter", "topic=space").stderr == ""
    where = run("query", built, cooking, "--where", "topic=space")
    assert where.stderr == "note: --where is deprecated; use --filter\n"


HIT_FIELDS = ["id", "score", "distance", "text", "metadata"]


def test_query_json_is_one_document_with_hits_and_the_figures_once(built):
    text = corpus(60)[5]["text"]
    result = run("query", built, text, "-k", "4", "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)  # the whole output: one document
    assert answer["query"] == text and isinstance(answer["hits"], list)
    assert [list(hit) for hit in answer["hits"]] == [HIT_FIELDS] * 4
    assert answer["hits"][0]["id"] == "d0005"
    scores = [hit["score"] for hit in answer["hits"]]
    assert scores == sorted(scores, reverse=True)
    for figure in ("radius", "candidates", "backend", "setting", "ranking", "notes", "exact",
                   "documents_touched", "buckets_touched", "tuned_recall"):
        assert figure in answer, figure
    assert answer["ranking"] == "cosine" and isinstance(answer["notes"], list)
    like = json.loads(run("query", built, "--like", "d0005", "-k", "3", "--json").stdout)
    assert like["like"] == "d0005" and "query" not in like and len(like["hits"]) == 3
    assert "d0005" not in [hit["id"] for hit in like["hits"]]


def test_query_json_with_queries_is_one_document_a_line(tmp_path, built):
    docs = corpus(60)
    queries = tmp_path / "q.txt"
    queries.write_text("".join(docs[i]["text"] + "\n" for i in (3, 9, 14)))
    result = run("query", built, "--queries", queries, "-k", "2", "--json")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    answers = [json.loads(line) for line in lines]
    assert [a["query"] for a in answers] == [docs[i]["text"] for i in (3, 9, 14)]
    assert [[h["id"] for h in a["hits"]][0] for a in answers] == ["d0003", "d0009", "d0014"]
    assert all(len(a["hits"]) == 2 and "radius" in a for a in answers)


def test_query_jsonl_is_a_line_per_hit(tmp_path, built):
    text = corpus(60)[5]["text"]
    lines = run("query", built, text, "-k", "4", "--jsonl").stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 4 and [r["rank"] for r in records] == [1, 2, 3, 4]
    assert all(r["query"] == text and "radius" in r for r in records)
    assert records[0]["id"] == "d0005"
    queries = tmp_path / "q.txt"
    queries.write_text(corpus(60)[1]["text"] + "\n" + corpus(60)[2]["text"] + "\n")
    result = run("query", built, "--queries", queries, "-k", "3", "--jsonl")
    assert len(result.stdout.splitlines()) == 6


def test_query_json_and_jsonl_together_are_refused(built):
    assert_bad_input(run("query", built, "rocket", "--json", "--jsonl"),
                     "--json and --jsonl exclude each other")


def test_query_server_prints_the_same_json_as_a_local_query(built, monkeypatch):
    """`query --server` turns the service's answer back into the same document: the service's
    own serializer answers here, in place of the HTTP round trip."""
    import httpx

    from hashindex.app.serve.schema import result_json
    from hashindex.engine import HashIndex, Like

    opened = HashIndex.open(built)

    class Answer:
        status_code = 200

        def __init__(self, body):
            self.body = body

        def json(self):
            return self.body

    def post(url, json, timeout):
        query = Like(json["like"]) if "like" in json else json["text"]
        result = opened.search(query, k=json["k"], filter=json["filter"])
        return Answer(result_json(result, {"search": 0.001}))

    monkeypatch.setattr(httpx, "post", post)
    text = corpus(60)[6]["text"]
    for asked in ([text, "--json"], ["--like", "d0006", "--json"], [text, "--jsonl"],
                  [text, "--filter", "topic=space", "--json"], [text]):
        local = run("query", built, *asked, "-k", "3")
        remote = run("query", "--server", "http://service", *asked, "-k", "3")
        assert local.exit_code == remote.exit_code == 0, local.output + remote.output
        assert remote.stdout == local.stdout, asked
