"""`hashindex bench`: retrieval quality and speed of every method on a labelled dataset."""

from __future__ import annotations

from pathlib import Path

import click

from hashindex.errors import HashIndexError


@click.command()
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
    from hashindex.embedding.cache import default_cache_dir
    from indexer.bench.run import DEFAULT_METHODS, BenchConfig, run_bench

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
    config = BenchConfig(dataset, tuple(chosen), tuple(bits), Path(out),
                         Path(cache_dir) if cache_dir else default_cache_dir() / "bench",
                         seeds=seeds, size=size, jobs=jobs, tuning=tuning_split,
                         show_progress=not quiet)
    folder = run_bench(config)
    click.echo((folder / "report.md").read_text())
