"""`hashindex query`: one text, or a file of them, against an index; a table, one JSON document
per query (--json) or one JSON line per hit (--jsonl)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hashindex.app.cli.arguments import utf8_text, utf8_texts
from hashindex.backends import BACKENDS, check_backend
from hashindex.errors import HashIndexError

FILTER_HELP = ("Only documents whose metadata pass: COL=VALUE (repeat a column for one of "
               "several values), COL>=V, COL<=V, COL>V, COL<V.")
WHERE_NOTE = "--where is deprecated; use --filter"


@click.command()
@click.argument("index", required=False)
@click.argument("text", required=False)
@click.option("-k", "k", default=10, show_default=True, type=int, help="Hits per query.")
@click.option("--radius", default=None, type=int, help="Largest Hamming radius to search.")
@click.option("--backend", default=None,
              help=f"Search backend: {', '.join(BACKENDS)} (default: the fastest setting the "
                   "index was tuned to that meets --target-recall).")
@click.option("--target-recall", default=None, type=float,
              help="Recall@10 to aim for (default: the build's, 0.95): the fastest setting the "
                   "index measured at or above it runs. Knobs given here win over it.")
@click.option("--backend-option", "backend_options", multiple=True, metavar="KEY=VALUE",
              help="A query knob of --backend, e.g. nprobe=64 or ef_search=256.")
@click.option("--rerank-candidates", default=None, type=int,
              help="Gather at least N candidates from the ball and rank them by cosine.")
@click.option("--no-rerank", is_flag=True,
              help="Rank by code distance, not by cosine to the stored vectors.")
@click.option("--queries", "queries_file", default=None, metavar="FILE",
              help="File with one query per line (or JSONL with a text field); prints one "
                   "JSON document per query, one a line, as --json does (--jsonl: a line per "
                   "hit).")
@click.option("--filter", "filter_clauses", multiple=True, metavar="COL=VALUE",
              help=FILTER_HELP)
@click.option("--where", "where", multiple=True, metavar="COL=VALUE",
              help="Deprecated: the old name of --filter, kept for one release.")
@click.option("--like", "like", default=None, metavar="ID",
              help="Search with a stored document's own embedding (or code) instead of a "
                   "TEXT; the document itself is left out.")
@click.option("--server", default=None, metavar="URL",
              help="Send the query to a running `hashindex serve` at URL instead of opening "
                   "an index: `hashindex query --server URL TEXT`.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON document per query: {\"query\" (or \"like\"), \"hits\": [{id, "
                   "score, distance, text, metadata}, ...], and the search's figures once "
                   "(radius, candidates, backend, setting, ranking, notes, ...)}. Several "
                   "queries (--queries) give one document a line, each read by json.loads.")
@click.option("--jsonl", "as_jsonl", is_flag=True,
              help="One JSON object per hit, each with its query, rank and the search's "
                   "figures (the form --json had before); a query without hits gives one "
                   "line with rank null.")
def query(index, text, k, radius, backend, target_recall, backend_options, rerank_candidates,
          no_rerank, queries_file, filter_clauses, where, like, server, as_json, as_jsonl):
    """Search INDEX for TEXT (or every query in --queries FILE, or --like ID)."""
    if as_json and as_jsonl:
        raise HashIndexError("--json and --jsonl exclude each other: --json prints one "
                             "document per query, --jsonl one line per hit; pass one")
    if where and filter_clauses:
        raise HashIndexError("--where is the old name of --filter: pass every clause with "
                             "--filter")
    flag, clauses = ("--where", where) if where else ("--filter", filter_clauses)
    if server is not None and text is None:
        index, text = None, index  # `query --server URL TEXT`: no INDEX
    if server is None and index is None:
        raise HashIndexError("pass the INDEX to search (or --server URL)")
    if sum(x is not None for x in (text, queries_file, like)) != 1:
        raise HashIndexError("pass exactly one of a query TEXT, --queries FILE or --like ID")
    text, like = utf8_text(text, "the query TEXT"), utf8_text(like, "--like")
    clauses = utf8_texts(clauses, flag)
    if backend_options and backend is None:
        raise HashIndexError("--backend-option sets a knob of a backend: name it with --backend")
    knobs = {}
    if backend is not None:
        check_backend(backend)  # every flag before anything is opened or loaded
        knobs = BACKENDS[backend].parse(backend_options)
    if target_recall is not None:
        from hashindex.tuning import check_target

        check_target(target_recall, "--target-recall")
    spec = filter_spec(clauses, flag)
    form = "jsonl" if as_jsonl else "json" if as_json or queries_file else "table"
    queries = read_queries(queries_file) if queries_file else [text]
    asked = [Asked(like=like)] if like is not None else [Asked(text=q) for q in queries]
    if server is not None:
        from hashindex.app.cli.remote import remote_search

        fields = {"k": k, "radius": radius, "backend": backend, "backend_options": knobs,
                  "rerank": not no_rerank, "rerank_candidates": rerank_candidates,
                  "filter": spec or None, "target_recall": target_recall}
        results = remote_search(server, [{**a.body(), **fields} for a in asked])
    else:
        results = search_here(index, asked, queries_file is not None, k, spec, flag,
                              dict(radius=radius, rerank=not no_rerank, backend=backend,
                                   rerank_candidates=rerank_candidates, backend_options=knobs,
                                   target_recall=target_recall))
    show(asked, results, form)
    if where:  # after the answer, so that a refusal stays one line
        click.echo(f"note: {WHERE_NOTE}", err=True)


class Asked:
    """One query as the user gave it: a TEXT or --like ID, named the same way in the HTTP body
    and in the JSON printed back."""

    def __init__(self, text: str | None = None, like: str | None = None):
        self.text, self.like = text, like

    def body(self) -> dict:
        return {"like": self.like} if self.like is not None else {"text": self.text}

    def title(self) -> str:
        return f"like {self.like}" if self.like is not None else self.text


def filter_spec(clauses: list[str], flag: str) -> dict:
    """The filter dict of the clauses, their errors naming the flag the user wrote them with."""
    from hashindex.filters import parse_where  # numpy and pyarrow: not for --help

    return parse_where(clauses, flag)


def search_here(index: str, asked: list[Asked], batch: bool, k: int, spec: dict, flag: str,
                options: dict) -> list:
    """Open INDEX and run the queries; a filter the index refuses (unknown column, value of
    the wrong type) is reported as the flag it came from."""
    from hashindex.engine import HashIndex, Like

    opened = HashIndex.open(index)
    try:
        request = opened.request(k, filter=spec, **options)
    except HashIndexError as error:
        message = str(error)
        if spec and message.startswith("filter"):
            raise HashIndexError(f"{flag} " + message.removeprefix("filter").lstrip(".:")
                                 .lstrip()) from None
        raise
    if batch:
        return opened.run_batch([a.text for a in asked], request)
    one = asked[0]
    return [opened.run(Like(one.like) if one.like is not None else one.text, request)]


def show(asked: list[Asked], results: list, form: str) -> None:
    for one, result in zip(asked, results):
        if form == "json":
            click.echo(json.dumps(result_document(one, result), ensure_ascii=False))
        elif form == "jsonl":
            print_hit_lines(one.title(), result)
        else:
            print_result_table(one.title(), result)


def result_document(asked: Asked, result) -> dict:
    """One query's answer as one JSON document: the query, its hits in rank order, and what
    the search did, once (the fields of the service's /search answer, timings aside)."""
    asked_for = {"like": asked.like} if asked.like is not None else {"query": asked.text}
    return {**asked_for, **result.to_dict()}


def print_hit_lines(query_text: str, result) -> None:
    """--jsonl: the form --json had before, one line per hit, for scripts that read it."""
    if not result.hits:
        click.echo(json.dumps({"query": query_text, "rank": None, "radius": result.radius,
                               "notes": result.notes}, ensure_ascii=False))
    for record in result_records(query_text, result):
        click.echo(json.dumps(record, ensure_ascii=False))


def result_records(query, result) -> list[dict]:
    return [
        {"query": query, "rank": rank, "id": hit.id, "distance": hit.distance,
         "score": round(hit.score, 6), "text": hit.text, "metadata": hit.metadata,
         "radius": result.radius, "candidates": result.candidates,
         "buckets_touched": result.buckets_touched,
         "documents_touched": result.documents_touched, "scanned": result.scanned,
         "exact": result.exact, **filter_figures(result)}
        for rank, hit in enumerate(result.hits, start=1)
    ]


def filter_figures(result) -> dict:
    if result.filter_examined is None:
        return {}
    return {"filter_examined": result.filter_examined, "filter_passed": result.filter_passed}


def print_result_table(query: str, result) -> None:
    click.echo(f"query: {query}")
    click.echo(f"{'rank':>4} {'dist':>4} {'score':>7}  {'id':<32} text")
    for rank, hit in enumerate(result.hits, start=1):
        snippet = (hit.text or "").replace("\n", " ")
        snippet = snippet if len(snippet) <= 70 else snippet[:69] + "…"
        click.echo(f"{rank:>4} {hit.distance:>4} {hit.score:>7.3f}  {hit.id[:32]:<32} {snippet}")
    click.echo(search_figures(result))
    for note in result.notes:
        click.echo(f"note: {note}")


def search_figures(result) -> str:
    """What the search examined, in the words a user checks it by."""
    approx = "" if result.exact else " (approximate backend: may miss documents)"
    how = "a full scan of" if result.scanned else "examined"
    if result.scanned and result.filter_examined is not None and not result.buckets_touched:
        how = "a scan of the codes the filter admits:"
    line = (f"ranked by {result.ranking}; radius reached {result.radius}: {result.candidates} "
            f"candidates; {how} {result.documents_touched} documents in "
            f"{result.buckets_touched} buckets, backend {result.backend}{approx}")
    if result.setting:
        line += (f"; tuned setting {result.setting}, recall@10 {result.tuned_recall:.3f} on "
                 "the build's sample")
    if result.filter_examined is not None:
        line += (f"; filter passed {result.filter_passed} of {result.filter_examined} "
                 "examined")
    return line


def read_queries(path: str) -> list[str]:
    file = Path(path)
    if file.is_dir():
        raise HashIndexError(f"--queries {path} is a folder; give a file of queries, one per "
                             "line")
    if not file.is_file():
        raise HashIndexError(f"--queries {path} does not exist")
    raw = file.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise HashIndexError(f"--queries {path}: not UTF-8 text (invalid byte at offset "
                             f"{error.start}); give a file of queries, one per line, in "
                             "UTF-8") from None
    if "\0" in text:
        raise HashIndexError(f"--queries {path}: holds a NUL byte (offset "
                             f"{raw.index(0)}): a binary file, not queries one per line")
    queries = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise HashIndexError(f"--queries {path}: line {number} is not valid JSON") from None
            if not isinstance(record.get("text"), str):
                raise HashIndexError(f"--queries {path}: line {number} has no \"text\" field")
            line = record["text"]
        queries.append(line)
    if not queries:
        raise HashIndexError(f"--queries {path} holds no queries")
    return queries
