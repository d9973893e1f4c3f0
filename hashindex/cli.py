"""The `hashindex` command: a thin shell over the library and the indexer.

Exit codes, for every command: 0 success; 2 anything the user can act on (bad input, flags,
paths, permissions), printed as one `error:` line; 1 an internal error (a bug), also one line
unless --debug asks for the traceback; 130/143 interrupted by SIGINT/SIGTERM, after cleaning up.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import traceback
from pathlib import Path

import click

from hashindex.backends import BACKENDS, DEFAULT_FAISS_BACKEND, FAISS_BACKENDS, check_backend
from hashindex.errors import HashIndexError
from hashindex.models import DEFAULT_VARIANT, VARIANTS

USER_ERROR, INTERNAL_ERROR = 2, 1


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every cleanup (staging folders, locks) runs."""


def raise_terminated(signum, frame):
    raise Terminated()


class CLIGroup(click.Group):
    """The one guard at the CLI's edge: every failure becomes one line and its exit code."""

    def invoke(self, ctx):
        signal.signal(signal.SIGTERM, raise_terminated)
        debug = bool(ctx.params.get("debug"))
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except HashIndexError as error:
            fail(str(error), USER_ERROR, debug)
        except OSError as error:
            from hashindex.store.publish import path_error

            fail(str(path_error(error)), USER_ERROR, debug)
        except Terminated:
            fail("terminated (SIGTERM); nothing was published", 143, debug)
        except KeyboardInterrupt:
            fail("interrupted; nothing was published", 130, debug)
        except Exception as error:
            first = (str(error).splitlines() or [""])[0]
            fail(f"internal error: {type(error).__name__}: {first} (a bug in hashindex: "
                 "re-run with --debug for the traceback and report it)", INTERNAL_ERROR, debug)


def fail(message: str, code: int, debug: bool):
    if debug:
        traceback.print_exc()
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class NoteHandler(logging.Handler):
    """Library notes (e.g. leftovers removed) as `note:` lines on stderr."""

    def emit(self, record):
        click.echo(f"note: {record.getMessage()}", err=True)


@click.group(cls=CLIGroup)
@click.version_option(package_name="hashindex")
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error.")
def main(debug):
    """Semantic hashing: binary-code indexes over documents, searched by Hamming ball."""
    logger = logging.getLogger("hashindex")
    if not any(isinstance(h, NoteHandler) for h in logger.handlers):
        logger.addHandler(NoteHandler())
    logger.setLevel(logging.INFO)


@main.command()
def variants():
    """List every autoencoder backbone, one line each."""
    width = max(len(name) for name in VARIANTS)
    for name, cls in VARIANTS.items():
        marker = " (default)" if name == DEFAULT_VARIANT else ""
        click.echo(f"{name:<{width}}  {cls.description}{marker}")


@main.command()
def backends():
    """List the search backends (exact or approximate)."""
    width = max(len(name) for name in BACKENDS)
    for name, cls in BACKENDS.items():
        kind = "exact" if cls.exact else "approximate"
        click.echo(f"{name:<{width}}  [{kind}] {cls.description}")


def positive(ctx, param, value):
    if value is not None and value < 1:
        raise HashIndexError(f"--{param.name.replace('_', '-')} {value} must be at least 1")
    return value


@main.command()
@click.argument("input_path", metavar="INPUT", required=False)
@click.option("--out", "out", required=True, help="Index directory to write.")
@click.option("--sample", is_flag=True, help="Index the bundled sample instead of INPUT.")
@click.option("--format", "input_format", default=None,
              help="Input format: parquet, jsonl, csv, textdir (default: by extension).")
@click.option("--text-column", default="text", show_default=True)
@click.option("--id-column", default=None, help="Column with document ids (default: row number).")
@click.option("--embedding-column", default=None,
              help="Column of precomputed embeddings; the text model is then not used.")
@click.option("--skip-empty", is_flag=True, help="Drop rows with null or empty text.")
@click.option("--model", default=None, help="sentence-transformers model name or path.")
@click.option("--variant", default=DEFAULT_VARIANT, show_default=True,
              help=f"Autoencoder backbone: {', '.join(VARIANTS)}.")
@click.option("--bits", default=64, show_default=True, type=int)
@click.option("--epochs", default=None, type=int, callback=positive)
@click.option("--seed", default=None, type=int)
@click.option("--backend", default=DEFAULT_FAISS_BACKEND, show_default=True,
              help=f"FAISS binary index to write: {', '.join(FAISS_BACKENDS)}.")
@click.option("--shard-rows", default=100_000, show_default=True, type=int, callback=positive)
@click.option("--store-embeddings", is_flag=True, help="Keep float16 embeddings for re-ranking.")
@click.option("--substring-index/--no-substring-index", default=True, show_default=True,
              help="Keep the multi-index over 16-bit substrings beside the table (built from "
                   "65 536 distinct codes up): fast k-NN at 64+ bits for 3·(bits/16 − 1) more "
                   "bytes per distinct code (4· above 16.7M documents).")
@click.option("--encoder", default=None, help="Reuse a trained encoder folder (skip training).")
@click.option("--cache-dir", default=None, help="Embedding cache folder.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the embedding cache.")
@click.option("--overwrite", is_flag=True, help="Replace an existing index.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Set a model field, e.g. noise=masking, sparse_k=16, hidden=512,256.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def build(input_path, out, sample, input_format, text_column, id_column, embedding_column,
          skip_empty, model, variant, bits, epochs, seed, backend, shard_rows, store_embeddings,
          substring_index, encoder, cache_dir, no_cache, overwrite, options, quiet):
    """Build an index from INPUT (Parquet, JSONL, CSV or a folder of .txt/.md files)."""
    from hashindex.config import ModelConfig, TrainConfig, parse_options, replace_fields
    from indexer.build import BuildConfig, build_index
    from indexer.documents import ColumnOptions
    from indexer.embedder import DEFAULT_MODEL
    from indexer.samples import SAMPLE_PATH

    if sample:
        if input_path:
            raise HashIndexError("pass either INPUT or --sample, not both")
        input_path, id_column, store_embeddings = str(SAMPLE_PATH), id_column or "id", True
    if not input_path:
        raise HashIndexError("missing INPUT: pass a file or folder to index, or --sample")
    if model and embedding_column:
        raise HashIndexError("--model and --embedding-column exclude each other")
    config = BuildConfig(
        input=input_path, out=out, format=input_format,
        columns=ColumnOptions(text_column, id_column, embedding_column, skip_empty),
        model=model or DEFAULT_MODEL, variant=variant, bits=bits, backend=backend,
        shard_rows=shard_rows, store_embeddings=store_embeddings,
        substring_index=substring_index, encoder=encoder,
        overwrite=overwrite, cache_dir=cache_dir, use_cache=not no_cache, show_progress=not quiet,
    )
    train_config = replace_fields(TrainConfig(show_progress=not quiet), epochs=epochs, seed=seed)
    model_config = ModelConfig(**parse_options(ModelConfig, list(options)))
    report = build_index(config, train_config, model_config)
    print_build_summary(report)


def print_build_summary(report) -> None:
    from hashindex.diagnostics import format_diagnostics

    click.echo(f"\nindex written to {report.out}")
    click.echo(f"input                {report.skipped} empty rows skipped, {report.embedded} "
               "texts embedded by the model (the rest came from the cache or the input)")
    click.echo(format_diagnostics(report.diagnostics))
    click.echo("stage       seconds    docs/s")
    for stage, seconds in report.stage_seconds.items():
        rate = report.documents / seconds if seconds > 0 else float("inf")
        click.echo(f"{stage:<10} {seconds:8.2f} {rate:9.0f}")


@main.command()
@click.argument("index")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest and diagnostics as JSON.")
def info(index, as_json):
    """Show an index's manifest and code diagnostics."""
    from hashindex.diagnostics import code_diagnostics, format_diagnostics
    from hashindex.engine import HashIndex

    opened = HashIndex.open(index)
    diagnostics = code_diagnostics(opened.all_codes())
    if as_json:
        click.echo(json.dumps({"manifest": opened.manifest, "diagnostics": diagnostics}, indent=2))
        return
    m = opened.manifest
    click.echo(f"index                {index}")
    click.echo(f"format version       {m['format_version']} (hashindex {m['hashindex_version']})")
    click.echo(f"created              {m['created']}")
    click.echo(f"embedding model      {m['embedding_model']['name']} "
               f"(dim {m['embedding_model']['dimension']})")
    click.echo(f"variant / bits       {m['variant']} / {m['bits']}")
    click.echo(f"FAISS backend        {m['backend']}")
    click.echo(f"shards               {len(m['shards'])} "
               f"({', '.join(str(s['rows']) for s in m['shards'][:5])} rows"
               f"{', …' if len(m['shards']) > 5 else ''})")
    click.echo(f"stored embeddings    {'yes' if m.get('store_embeddings') else 'no'}")
    click.echo(f"metadata columns     {', '.join(m.get('metadata_columns', [])) or '(none)'}")
    click.echo(f"hash table           {table_memory(m)}")
    click.echo(format_diagnostics(diagnostics))


def table_memory(manifest: dict) -> str:
    """The table's size on disk against the raw codes + row ids (of the table's width),
    substring index apart."""
    import numpy as np

    from hashindex.store.layout import TABLE_DIR, files_under
    from hashindex.store.publish import human_bytes
    from hashindex.store.table import row_dtype

    files = manifest.get("files", {})
    table = files_under(manifest, TABLE_DIR)
    substrings = sum(f["bytes"] for path, f in files.items()
                     if path.startswith(f"{TABLE_DIR}/substring_"))
    documents = manifest["documents"]
    raw = documents * (manifest["bits"] // 8 + np.dtype(row_dtype(documents)).itemsize)
    ratio = f"{table / raw:.2f}× the raw codes + row ids; " if raw else ""
    index = f"substring index {human_bytes(substrings)}" if substrings else "no substring index"
    return f"{human_bytes(table)} ({ratio}{index})"


def result_records(query, result) -> list[dict]:
    return [
        {"query": query, "rank": rank, "id": hit.id, "distance": hit.distance,
         "score": round(hit.score, 6), "text": hit.text, "metadata": hit.metadata,
         "radius": result.radius, "candidates": result.candidates,
         "buckets_touched": result.buckets_touched,
         "documents_touched": result.documents_touched, "scanned": result.scanned,
         "exact": result.exact}
        for rank, hit in enumerate(result.hits, start=1)
    ]


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
    return (f"radius reached {result.radius}: {result.candidates} candidates; {how} "
            f"{result.documents_touched} documents in {result.buckets_touched} buckets, "
            f"backend {result.backend}{approx}")


def read_queries(path: str) -> list[str]:
    file = Path(path)
    if not file.is_file():
        raise HashIndexError(f"--queries {path} does not exist")
    queries = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
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


@main.command()
@click.argument("index")
@click.argument("text", required=False)
@click.option("-k", "k", default=10, show_default=True, type=int)
@click.option("--radius", default=None, type=int, help="Largest Hamming radius to search.")
@click.option("--backend", default="table", show_default=True,
              help=f"Search backend: {', '.join(BACKENDS)}.")
@click.option("--rerank-candidates", default=None, type=int,
              help="Gather at least N candidates from the ball and rank them by cosine.")
@click.option("--no-rerank", is_flag=True, help="Break distance ties by id, not by cosine.")
@click.option("--queries", "queries_file", default=None,
              help="File with one query per line (or JSONL with a text field); writes JSONL.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per result line.")
def query(index, text, k, radius, backend, rerank_candidates, no_rerank, queries_file, as_json):
    """Search INDEX for TEXT (or every query in --queries FILE)."""
    from hashindex.engine import HashIndex

    if (text is None) == (queries_file is None):
        raise HashIndexError("pass either a query TEXT or --queries FILE")
    check_backend(backend)  # before anything is opened or loaded
    opened = HashIndex.open(index)
    options = dict(k=k, max_radius=radius, rerank=not no_rerank, backend=backend,
                   rerank_candidates=rerank_candidates)
    opened.check_query_options(k, radius, rerank_candidates, backend)
    if queries_file:
        queries = read_queries(queries_file)
        for query_text, result in zip(queries, opened.search_batch(queries, **options)):
            if not result.hits:
                click.echo(json.dumps({"query": query_text, "rank": None,
                                       "radius": result.radius, "notes": result.notes}))
            for record in result_records(query_text, result):
                click.echo(json.dumps(record, ensure_ascii=False))
        return
    result = opened.search(text, **options)
    if as_json:
        for record in result_records(text, result):
            click.echo(json.dumps(record, ensure_ascii=False))
        if not result.hits:
            click.echo(json.dumps({"query": text, "rank": None, "radius": result.radius,
                                   "notes": result.notes}))
    else:
        print_result_table(text, result)


@main.command()
@click.option("--dataset", required=True, help="bbc-news, stdlib-docs or synthetic.")
@click.option("--methods", default=None,
              help="Comma-separated methods (default: every baseline and ae:<variant>).")
@click.option("--bits", "bits_list", default="16,32,64,128", show_default=True,
              help="Comma-separated code lengths.")
@click.option("--seeds", default=3, show_default=True, type=int)
@click.option("--size", default=100_000, show_default=True, type=int,
              help="Documents for the synthetic dataset.")
@click.option("--out", required=True, help="Folder for report.md, CSVs and plots.")
@click.option("--cache-dir", default=None, help="Embedding cache folder.")
@click.option("--jobs", default=1, show_default=True, type=int,
              help="Parallel single-threaded jobs (method × bits × seed runs).")
@click.option("--tuning-split", is_flag=True,
              help="Evaluate on a re-split of the database part only (for choosing defaults "
                   "without touching the query documents).")
@click.option("--quiet", is_flag=True)
def bench(dataset, methods, bits_list, seeds, size, out, cache_dir, jobs, tuning_split, quiet):
    """Retrieval quality and speed of every method on a labelled dataset."""
    from indexer.bench.run import DEFAULT_METHODS, run_bench
    from indexer.cache import default_cache_dir

    try:
        bits = [int(b) for b in bits_list.split(",") if b.strip()]
    except ValueError:
        raise HashIndexError(f"--bits {bits_list!r} must be comma-separated integers") from None
    if not bits:
        raise HashIndexError("--bits lists no code length; pass e.g. --bits 32,64")
    if methods is None:
        chosen = list(DEFAULT_METHODS)
    else:
        chosen = [m.strip() for m in methods.split(",") if m.strip()]
        if not chosen:
            raise HashIndexError(f"--methods lists no method; name at least one of "
                                 f"{', '.join(DEFAULT_METHODS)}")
    folder = run_bench(dataset, chosen, bits, seeds, Path(out),
                       Path(cache_dir) if cache_dir else default_cache_dir() / "bench",
                       size=size, show_progress=not quiet, tuning=tuning_split, jobs=jobs)
    click.echo((folder / "report.md").read_text())


if __name__ == "__main__":
    main()
