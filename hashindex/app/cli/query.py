"""`hashindex query`: one text, or a file of them, against an index; a table or JSON lines."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hashindex.app.cli.arguments import utf8_text, utf8_texts
from hashindex.backends import BACKENDS, check_backend
from hashindex.errors import HashIndexError


@click.command()
@click.argument("index", required=False)
@click.argument("text", required=False)
@click.option("-k", "k", default=10, show_default=True, type=int)
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
@click.option("--queries", "queries_file", default=None,
              help="File with one query per line (or JSONL with a text field); writes JSONL.")
@click.option("--where", "where", multiple=True, metavar="COL=VALUE",
              help="Only documents whose metadata pass: COL=VALUE (repeat a column for one "
                   "of several values), COL>=V, COL<=V, COL>V, COL<V.")
@click.option("--like", "like_id", default=None, metavar="ID",
              help="Search with a stored document's own embedding (or code) instead of a "
                   "TEXT; the document itself is left out.")
@click.option("--server", default=None, metavar="URL",
              help="Send the query to a running `hashindex serve` at URL instead of opening "
                   "an index: `hashindex query --server URL TEXT`.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per result line.")
def query(index, text, k, radius, backend, target_recall, backend_options, rerank_candidates,
          no_rerank, queries_file, where, like_id, server, as_json):
    """Search INDEX for TEXT (or every query in --queries FILE, or --like ID)."""
    if server is not None and text is None:
        index, text = None, index  # `query --server URL TEXT`: no INDEX
    if server is None and index is None:
        raise HashIndexError("pass the INDEX to search (or --server URL)")
    if sum(x is not None for x in (text, queries_file, like_id)) != 1:
        raise HashIndexError("pass exactly one of a query TEXT, --queries FILE or --like ID")
    text, like_id = utf8_text(text, "the query TEXT"), utf8_text(like_id, "--like")
    where = utf8_texts(where, "--where")
    if backend_options and backend is None:
        raise HashIndexError("--backend-option sets a knob of a backend: name it with --backend")
    knobs = {}
    if backend is not None:
        check_backend(backend)  # every flag before anything is opened or loaded
        knobs = BACKENDS[backend].parse(backend_options)
    if target_recall is not None:
        from hashindex.tuning import check_target

        check_target(target_recall, "--target-recall")
    from hashindex.filters import parse_where  # numpy and pyarrow: not for --help

    spec = parse_where(where)
    queries = read_queries(queries_file) if queries_file else [text]
    if server is not None:
        from hashindex.app.cli.remote import remote_search

        fields = {"k": k, "radius": radius, "backend": backend, "backend_options": knobs,
                  "rerank": not no_rerank, "rerank_candidates": rerank_candidates,
                  "filter": spec or None, "target_recall": target_recall}
        asked = ([{"like": like_id, **fields}] if like_id is not None
                 else [{"text": q, **fields} for q in queries])
        results = remote_search(server, asked)
        show(queries if like_id is None else [f"like {like_id}"], results,
             as_json or bool(queries_file))
        return
    from hashindex.engine import HashIndex, Like

    opened = HashIndex.open(index)
    try:
        request = opened.request(k, radius=radius, rerank=not no_rerank, backend=backend,
                                 rerank_candidates=rerank_candidates, backend_options=knobs,
                                 filter=spec, target_recall=target_recall)
    except HashIndexError as error:  # a filter's error, as the flag the user wrote it with
        message = str(error)
        if spec and message.startswith("filter"):
            raise HashIndexError("--where " + message.removeprefix("filter").lstrip(".:")
                                 .lstrip()) from None
        raise
    if queries_file:
        show(queries, opened.run_batch(queries, request), True)
        return
    result = opened.run(Like(like_id) if like_id is not None else text, request)
    show([f"like {like_id}" if like_id is not None else text], [result], as_json)


def show(queries: list[str], results: list, as_json: bool) -> None:
    for query_text, result in zip(queries, results):
        if as_json:
            print_json(query_text, result)
        else:
            print_result_table(query_text, result)


def print_json(query_text: str, result) -> None:
    if not result.hits:
        click.echo(json.dumps({"query": query_text, "rank": None, "radius": result.radius,
                               "notes": result.notes}))
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
