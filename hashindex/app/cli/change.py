"""`hashindex add`, `delete`, `compact` and `upgrade`: changing a living index, each change
one committed generation (hashindex/segments/writer.py). A second writer at the same time gets
a one-line error (exit 2)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from hashindex.errors import HashIndexError


@click.command()
@click.argument("index_path", metavar="INDEX")
@click.argument("input_path", metavar="INPUT")
@click.option("--upsert", is_flag=True,
              help="Replace documents whose id is already in the index (else an error).")
@click.option("--format", "input_format", default=None,
              help="Input format: parquet, jsonl, csv, textdir (default: by extension).")
@click.option("--text-column", default=None, help="Default: the one the index was built with.")
@click.option("--id-column", default=None, help="Default: the one the index was built with.")
@click.option("--embedding-column", default=None,
              help="Precomputed embeddings (indexes built from them only).")
@click.option("--skip-empty", is_flag=True, default=None,
              help="Drop rows with null or empty text.")
@click.option("--cache-dir", default=None, help="Embedding cache folder.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the embedding cache.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def add(index_path, input_path, upsert, input_format, text_column, id_column, embedding_column,
        skip_empty, cache_dir, no_cache, quiet):
    """Add INPUT's documents to INDEX as a new segment: embedded with the index's text model,
    encoded with its trained encoder (no retraining)."""
    from indexer.update import AddConfig, add_documents

    flags = {"text_column": text_column, "id_column": id_column,
             "embedding_column": embedding_column, "skip_empty": skip_empty}
    changes = {k: v for k, v in flags.items() if v is not None} or None  # over the build's
    started = time.perf_counter()
    report = add_documents(AddConfig(index=index_path, input=input_path, format=input_format,
                                     upsert=upsert, cache_dir=cache_dir, use_cache=not no_cache,
                                     show_progress=not quiet, column_changes=changes))
    seconds = time.perf_counter() - started
    replaced = f", replacing {report.replaced}" if report.replaced else ""
    skipped = f"; {report.skipped} empty rows skipped" if report.skipped else ""
    merged = (f"; then merged the last {report.merged} small segments into one"
              if report.merged else "")
    click.echo(f"added {report.added} documents{replaced} to {index_path} as segment "
               f"{report.segment} in {seconds:.1f} s; {report.embedded} embedded{skipped}"
               f"{merged} (generation {report.generation})")


@click.command()
@click.argument("index_path", metavar="INDEX")
@click.argument("ids", nargs=-1)
@click.option("--ids", "ids_file", type=click.Path(dir_okay=False), default=None,
              help="A file of ids to delete, one per line.")
@click.option("--strict", is_flag=True,
              help="Fail (deleting nothing) when an id is not in the index.")
def delete(index_path, ids, ids_file, strict):
    """Delete documents from INDEX by ID (tombstones: `compact` reclaims their space)."""
    from hashindex.app.cli.arguments import utf8_texts
    from hashindex.model_io import read_index_encoder
    from hashindex.segments.writer import IndexWriter

    wanted = utf8_texts(ids, "ID")
    if any(not doc.strip() for doc in wanted):
        raise HashIndexError("ID: an empty id names no document; pass the ids to delete")
    if ids_file:
        try:
            text = Path(ids_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise HashIndexError(f"--ids {ids_file}: cannot read it ({error})") from None
        wanted += [line.strip() for line in text.splitlines() if line.strip()]
    if not wanted:
        raise HashIndexError("no ids to delete: pass IDs or --ids FILE")
    with IndexWriter(index_path) as writer:
        read_index_encoder(writer.root, writer.manifest.bits)  # as every other command does
        report = writer.delete(wanted, strict=strict)
    if report.unknown:
        shown = ", ".join(report.unknown[:5]) + (", …" if len(report.unknown) > 5 else "")
        click.echo(f"note: {len(report.unknown)} id(s) not in the index: {shown}", err=True)
    click.echo(f"deleted {report.deleted} documents from {index_path}"
               + (f" (generation {report.generation})" if report.deleted else
                  "; the index is unchanged"))


@click.command()
@click.argument("index_path", metavar="INDEX")
def compact(index_path):
    """Merge INDEX's segments into one, dropping deleted documents, and rebuild its table and
    second backend."""
    from indexer.compaction import compact_index

    click.echo(compact_index(index_path).message)


@click.command()
@click.argument("index_path", metavar="INDEX")
def upgrade(index_path):
    """Convert an index built before segments (format 3) in place, atomically."""
    from hashindex.segments.upgrade import upgrade_in_place
    from hashindex.segments.writer import IndexWriter, NothingToDo

    try:
        with IndexWriter(index_path, allow_legacy=True) as writer:
            upgrade_in_place(writer)
            generation = writer.manifest.generation
    except NothingToDo as note:
        click.echo(str(note))
        return
    click.echo(f"upgraded {index_path} to format {writer.manifest.format_version} "
               f"(generation {generation}): it now takes add, delete and compact")
